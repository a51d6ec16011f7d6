"""The spider a user writes, and what finds, loads and checks it.

``Spider`` is the base class; sitemaps are parsed as a stream in the worker; ``SpiderRef`` says
how a parser worker imports the same spider class; item validation (``item_type``) runs in the
worker, beside the callback.
"""

from ._items import ItemValidator, unknown_callback
from ._loader import SpiderRef, discover_spiders, import_object, load_spider_file, ref_for_class
from ._sitemaps import SITEMAP_CALLBACK
from ._spider import Spider, detach_state

__all__ = [
    "SITEMAP_CALLBACK",
    "ItemValidator",
    "Spider",
    "SpiderRef",
    "detach_state",
    "discover_spiders",
    "import_object",
    "load_spider_file",
    "ref_for_class",
    "unknown_callback",
]
