"""crawlkit: a concurrent web-crawling framework.

The event loop does I/O only (fetching, the frontier, output); spider callbacks run in a pool
of parser worker processes. See docs/architecture.md for the data flow.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    Blocked,
    CloseSpider,
    ConfigError,
    ConnectError,
    CrawlControl,
    CrawlkitError,
    DropItem,
    ExportError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    IgnoreRequest,
    MiddlewareError,
    ParseError,
    ParserCrashed,
    PipelineError,
    RedirectError,
    ResponseTooLarge,
    RetriesExhausted,
    SpiderError,
    StorageError,
    TransportError,
)
from .http import Failure, FormRequest, JsonRequest, Request, Response
from .spider import Spider

__all__ = [
    "Blocked",
    "CloseSpider",
    "ConfigError",
    "ConnectError",
    "CrawlControl",
    "CrawlStats",
    "CrawlkitError",
    "DropItem",
    "ExportError",
    "Failure",
    "FetchError",
    "FetchTimeout",
    "FormRequest",
    "HTTPStatusError",
    "IgnoreRequest",
    "JsonRequest",
    "MiddlewareError",
    "ParseError",
    "ParserCrashed",
    "PipelineError",
    "RedirectError",
    "Request",
    "Response",
    "ResponseTooLarge",
    "RetriesExhausted",
    "Settings",
    "Spider",
    "SpiderError",
    "StorageError",
    "TransportError",
    "__version__",
    "crawl",
]

if TYPE_CHECKING:
    from .core import CrawlStats, crawl
    from .settings import Settings


def __getattr__(name: str) -> Any:
    # crawl() pulls in aiohttp and the engine; parser worker processes import crawlkit for the
    # spider API alone and should not pay for them.
    if name == "crawl":
        from .core import crawl

        return crawl
    if name == "CrawlStats":
        from .core import CrawlStats

        return CrawlStats
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(f"module 'crawlkit' has no attribute {name!r}")
