"""The generated demo shop: ``python -m crawlkit.demo --port 8080`` serves it on loopback.

The demo (``scripts/demo``), the tests and the benchmark all use this one generator. It has two
page shapes: the bookshop (``generate``) that the demo and the tests crawl, and the benchmark's
homewares shop that ``write_bench_site`` writes to a folder for ``bench/site.py``.
"""

from ._bench_catalogue import N_RELATED as BENCH_N_RELATED
from ._bench_catalogue import PER_PAGE as BENCH_PER_PAGE
from ._bench_files import write_bench_site
from ._bookshop import DemoSite, expected_items_for, generate
from ._bookshop_catalogue import BOOKS_PER_PAGE, CATALOGUE_REDIRECT, MISSING_BOOK
from ._page import Page
from ._server import LOCAL_HOST, ServedSite, main, make_app, running, serve

__all__ = [
    "BENCH_N_RELATED",
    "BENCH_PER_PAGE",
    "BOOKS_PER_PAGE",
    "CATALOGUE_REDIRECT",
    "LOCAL_HOST",
    "MISSING_BOOK",
    "DemoSite",
    "Page",
    "ServedSite",
    "expected_items_for",
    "generate",
    "main",
    "make_app",
    "running",
    "serve",
    "write_bench_site",
]
