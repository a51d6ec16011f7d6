"""Everything between a leased request and its response: politeness, the client, retries.

``Downloader`` is the one call the engine makes per attempt (``download(request)``), composing
the rest: middlewares, the politeness gate, the fetcher with its cookie jars, the classifier and
the retry policy; it answers with a response or a ``Verdict`` (``Ended``, ``Failed``,
``Replaced``). The politeness gate (robots.txt, per-host policy and adaptive throttling), the aiohttp client
(``Fetcher``: timeouts, size limits, redirects hop by hop, the cookie jar), the retry policy and
the byte budget of bodies in flight. ``Fetcher`` is imported on first use: it pulls in aiohttp,
which the engine imports in a thread while the parser workers start.
"""

from typing import TYPE_CHECKING, Any

from ._budget import ByteBudget, Hold
from ._downloader import DEFERRED, PAUSED, Downloader, Ended, Failed, Replaced, Verdict
from ._hostpolicy import CrawlHostPolicy, parse_host_rules
from ._middlewares import MiddlewareChain
from ._politeness import DEFER, Politeness
from ._retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from ._client import Fetched, Fetcher

__all__ = [
    "DEFER",
    "DEFERRED",
    "PAUSED",
    "ByteBudget",
    "CrawlHostPolicy",
    "Downloader",
    "Ended",
    "Failed",
    "Fetched",
    "Fetcher",
    "Hold",
    "MiddlewareChain",
    "Politeness",
    "Replaced",
    "RetryPolicy",
    "Verdict",
    "load_client",
    "parse_host_rules",
    "parse_retry_after",
]


def load_client() -> None:
    """Import the HTTP client (aiohttp) now: the engine does it in a thread while workers start."""
    from . import _client  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in ("Fetcher", "Fetched"):
        from . import _client

        return getattr(_client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
