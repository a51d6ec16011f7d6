"""Everything between a leased request and its response: politeness, the client, retries.

``Downloader`` is the one call the engine makes per attempt (``download(request)``), composing
the rest: middlewares, the politeness gate, the fetcher with its cookie jars, the classifier and
the retry policy; it answers with a response or a ``Verdict`` (``Ended``, ``Failed``,
``Replaced``). The politeness gate (robots.txt, per-host policy and adaptive throttling), the aiohttp client
(``Fetcher``: timeouts, size limits, redirects hop by hop, the cookie jar), the retry policy and
the byte budget of bodies in flight; the job's page store (``PageStore``) and the cache step
that answers from it or asks conditionally (``HttpCache``); rendering in headless Chromium
(``BrowserFetcher``, with the optional Playwright: ``crawlkit[browser]``) and the plain-data
``RenderPlan`` a render follows; the identity step (``IdentityStep``): the block classifier
(``Classifier``), proxies (``ProxyPool``, ``EnvProxies``), sessions (``SessionPool``; in a
shared crawl, synced with the shared pool by ``SharedSessions``) and their header profiles,
wired into every attempt.
``Fetcher`` is imported on first use: it pulls in aiohttp, which the engine imports in a thread
while the parser workers start; the browser's parts load Playwright only when a browser starts.
"""

from typing import TYPE_CHECKING, Any

from ..http import RenderPlan
from ._budget import ByteBudget, Hold
from ._cache import CacheEntry, CrawlRecord, PageStore, body_digest
from ._cachestep import HttpCache, request_from_record, request_record
from ._classify import CHALLENGE_MAX_BYTES, Attempt, Classification, Classifier, Label, Rule
from ._downloader import CaptchaSolver, Downloader
from ._hostpolicy import CrawlHostPolicy, parse_host_rules
from ._identities import BrowserIdentities, HeaderProfile, honest_profile
from ._identity import CAPTCHA_VENDORS, ROTATIONS_KEY, IdentityStep, Route, is_captcha, parse_block_rules
from ._middlewares import MiddlewareChain
from ._politeness import DEFER, Politeness
from ._proxies import (
    EnvProxies,
    NoProxyAvailable,
    NoProxyRules,
    Proxy,
    ProxyArgs,
    ProxyPool,
    ProxyState,
    parse_proxies,
    parse_proxy,
    usable_proxies,
)
from ._retry import RetryPolicy, parse_retry_after
from ._sessions import NoSessionAvailable, Pick, Session, SessionPool, dump_cookies, load_cookies
from ._sharedsessions import SessionStore, SharedSessions
from ._verdicts import DEFERRED, PAUSED, Ended, Failed, Halt, Replaced, Rotated, Verdict

if TYPE_CHECKING:
    from ._browser import BrowserConfig, BrowserFetcher, BrowserStats, Rendered
    from ._browser_launch import BrowserLauncher
    from ._client import Fetched, Fetcher

__all__ = [
    "CAPTCHA_VENDORS",
    "CHALLENGE_MAX_BYTES",
    "DEFER",
    "DEFERRED",
    "PAUSED",
    "ROTATIONS_KEY",
    "Attempt",
    "BrowserConfig",
    "BrowserFetcher",
    "BrowserIdentities",
    "BrowserLauncher",
    "BrowserStats",
    "ByteBudget",
    "CacheEntry",
    "CaptchaSolver",
    "Classification",
    "Classifier",
    "CrawlHostPolicy",
    "CrawlRecord",
    "Downloader",
    "Ended",
    "EnvProxies",
    "Failed",
    "Fetched",
    "Fetcher",
    "Halt",
    "HeaderProfile",
    "Hold",
    "HttpCache",
    "IdentityStep",
    "Label",
    "MiddlewareChain",
    "NoProxyAvailable",
    "NoProxyRules",
    "NoSessionAvailable",
    "PageStore",
    "Pick",
    "Politeness",
    "Proxy",
    "ProxyArgs",
    "ProxyPool",
    "ProxyState",
    "RenderPlan",
    "Rendered",
    "Replaced",
    "RetryPolicy",
    "Rotated",
    "Route",
    "Rule",
    "Session",
    "SessionPool",
    "SessionStore",
    "SharedSessions",
    "Verdict",
    "body_digest",
    "dump_cookies",
    "honest_profile",
    "is_captcha",
    "load_client",
    "load_cookies",
    "parse_block_rules",
    "parse_host_rules",
    "parse_proxies",
    "parse_proxy",
    "parse_retry_after",
    "request_from_record",
    "request_record",
    "usable_proxies",
]


def load_client() -> None:
    """Import the HTTP client (aiohttp) now: the engine does it in a thread while workers start."""
    from . import _client  # noqa: F401


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
