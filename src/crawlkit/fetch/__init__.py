"""Everything between a leased request and its response: politeness, the client, retries.

``Downloader`` is the one call the engine makes per attempt (``download(request)``), composing
the rest: middlewares, the politeness gate, the fetcher with its cookie jars, the classifier and
the retry policy; it answers with a response or a ``Verdict`` (``Ended``, ``Failed``,
``Replaced``). The politeness gate (robots.txt, per-host policy and adaptive throttling), the aiohttp client
(``Fetcher``: timeouts, size limits, redirects hop by hop, the cookie jar), the retry policy and
the byte budget of bodies in flight; the impersonating client (``ImpersonateFetcher``, with the
optional curl_cffi: ``crawlkit[impersonate]``), whose TLS and HTTP/2 handshake is a browser's;
the job's page store (``PageStore``) and the cache step that answers from it or asks
conditionally (``HttpCache``); rendering in headless Chromium
(``BrowserFetcher``, with the optional Playwright: ``crawlkit[browser]``) and the plain-data
``RenderPlan`` a render follows; the identity step (``IdentityStep``): the block classifier
(``Classifier``), proxies (``ProxyPool``, ``EnvProxies``; SOCKS ones through aiohttp-socks,
``crawlkit[socks]``, loaded on the first SOCKS request), sessions (``SessionPool``; in a shared
crawl, synced with the shared pool by ``SharedSessions``) and their header profiles, wired into
every attempt.
``Fetcher`` is imported on first use: it pulls in aiohttp, which the engine imports in a thread
while the parser workers start; the browser's parts load Playwright only when a browser starts.
"""

from typing import TYPE_CHECKING, Any

from ..http import RenderPlan
from ._budget import ByteBudget, Hold
from ._cache import CacheEntry, CrawlRecord, PageStore, body_digest
from ._cacheitems import PageItems, record_crawl_options, refresh_unchanged
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
from ._recrawlrules import LASTMOD_KEY, RecrawlRules, url_patterns
from ._rendering import RenderSetup
from ._retry import RetryPolicy, parse_retry_after
from ._sessions import NoSessionAvailable, Pick, Session, SessionPool, dump_cookies, load_cookies
from ._sharedsessions import SessionStore, SharedSessions
from ._targets import check_target, target_for
from ._verdicts import DEFERRED, PAUSED, Ended, Failed, Halt, Replaced, Rotated, Unchanged, Verdict

if TYPE_CHECKING:
    from ._browser import BrowserConfig, BrowserFetcher, BrowserStats, Rendered, RequestCheck
    from ._browser_launch import BrowserLauncher
    from ._client import Fetched, Fetcher
    from ._impersonate import ImpersonateFetcher

__all__ = [
    "CAPTCHA_VENDORS",
    "CHALLENGE_MAX_BYTES",
    "DEFER",
    "DEFERRED",
    "LASTMOD_KEY",
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
    "ImpersonateFetcher",
    "Label",
    "MiddlewareChain",
    "NoProxyAvailable",
    "NoProxyRules",
    "NoSessionAvailable",
    "PageItems",
    "PageStore",
    "Pick",
    "Politeness",
    "Proxy",
    "ProxyArgs",
    "ProxyPool",
    "ProxyState",
    "RecrawlRules",
    "RenderPlan",
    "RenderSetup",
    "Rendered",
    "Replaced",
    "RequestCheck",
    "RetryPolicy",
    "Rotated",
    "Route",
    "Rule",
    "Session",
    "SessionPool",
    "SessionStore",
    "SharedSessions",
    "Unchanged",
    "Verdict",
    "body_digest",
    "check_target",
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
    "record_crawl_options",
    "refresh_unchanged",
    "request_from_record",
    "request_record",
    "target_for",
    "url_patterns",
    "usable_proxies",
]


def load_client() -> None:
    """Import the HTTP client (aiohttp) now: the engine does it in a thread while workers start."""
    from . import _client  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in ("Fetcher", "Fetched"):
        from . import _client

        return getattr(_client, name)
    if name in ("BrowserConfig", "BrowserFetcher", "BrowserStats", "Rendered", "RequestCheck"):
        from . import _browser

        return getattr(_browser, name)
    if name == "ImpersonateFetcher":
        from . import _impersonate  # curl_cffi: imported only by crawls that use it

        return _impersonate.ImpersonateFetcher
    if name == "BrowserLauncher":
        from . import _browser_launch

        return _browser_launch.BrowserLauncher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
