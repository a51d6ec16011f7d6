"""Everything between a leased request and its response: politeness, the client, retries.

The politeness gate (robots.txt, per-host policy and adaptive throttling), the aiohttp client
(``Fetcher``: timeouts, size limits, redirects hop by hop, the cookie jar), the retry policy and
the byte budget of bodies in flight; rendering in headless Chromium (``BrowserFetcher``, with
the optional Playwright: ``crawlkit[browser]``) and the plain-data ``RenderPlan`` a render follows.
``Fetcher`` is imported on first use: it pulls in aiohttp, which the engine imports in a thread
while the parser workers start; the browser's parts load Playwright only when a browser starts.
"""

from typing import TYPE_CHECKING, Any

from ._budget import ByteBudget, Hold
from ._hostpolicy import CrawlHostPolicy, parse_host_rules
from ._politeness import DEFER, Politeness
from ._render_plan import RenderPlan
from ._retry import RetryPolicy, parse_retry_after

if TYPE_CHECKING:
    from ._browser import BrowserConfig, BrowserFetcher, BrowserStats, Rendered
    from ._browser_launch import BrowserLauncher
    from ._client import Fetched, Fetcher

__all__ = [
    "DEFER",
    "BrowserConfig",
    "BrowserFetcher",
    "BrowserLauncher",
    "BrowserStats",
    "ByteBudget",
    "CrawlHostPolicy",
    "Fetched",
    "Fetcher",
    "Hold",
    "Politeness",
    "RenderPlan",
    "Rendered",
    "RetryPolicy",
    "parse_host_rules",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in ("Fetcher", "Fetched"):
        from . import _client

        return getattr(_client, name)
    if name in ("BrowserConfig", "BrowserFetcher", "BrowserStats", "Rendered"):
        from . import _browser

        return getattr(_browser, name)
    if name == "BrowserLauncher":
        from . import _browser_launch

        return _browser_launch.BrowserLauncher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
