"""crawlkit: a concurrent web-crawling framework.

The event loop does I/O only (fetching, the frontier, output); spider callbacks run in a pool
of parser worker processes. See docs/architecture.md for the data flow.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .errors import (
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
    ParseError,
    ParserCrashed,
    PipelineError,
    RedirectError,
    ResponseTooLarge,
    RetriesExhausted,
    SpiderError,
    TransportError,
)
from .http import Request, Response
from .settings import Settings
from .spider import Spider
from .stats import CrawlStats

__all__ = [
    "CloseSpider",
    "ConfigError",
    "ConnectError",
    "CrawlControl",
    "CrawlStats",
    "CrawlkitError",
    "DropItem",
    "ExportError",
    "FetchError",
    "FetchTimeout",
    "HTTPStatusError",
    "IgnoreRequest",
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
    "TransportError",
    "__version__",
    "crawl",
]

if TYPE_CHECKING:
    from .runner import crawl


def __getattr__(name: str) -> Any:
    # crawl() pulls in aiohttp and the engine; parser worker processes import crawlkit for the
    # spider API alone and should not pay for them.
    if name == "crawl":
        from .runner import crawl

        return crawl
    raise AttributeError(f"module 'crawlkit' has no attribute {name!r}")
