"""The identity step's part of an attempt: its route or a verdict, and a proxy's failure.

The downloader asks :func:`route_or_verdict` for an attempt's :class:`Route` (a proxy, a
session): when every proxy rests the request waits for the first one back (``Rotated``), or the
crawl stops (``on_no_proxy = "stop"``: ``Halt``), and a worker of a shared crawl that holds no
session waits a little. A proxy's own failure (no answer through it, its 407 or 502) sends the
request again through another proxy at once, using none of its retries (:func:`proxy_failed`).
Behind proxies, or as sessions, robots.txt goes out as the pages do (:class:`RobotsThroughProxies`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..errors import FetchError, ProxyError
from ..http import Request
from ._classify import Label
from ._identity import IdentityStep, Route
from ._proxies import NoProxyAvailable
from ._sessions import NoSessionAvailable
from ._verdicts import NO_PROXY_STOP, Halt, Rotated, Verdict

if TYPE_CHECKING:
    from ..core import CrawlStats
    from ._client import Fetched, Fetcher
    from ._impersonate import ImpersonateFetcher

__all__ = [
    "NO_PROXY_HALT",
    "RobotsThroughProxies",
    "proxy_failed",
    "rotated_if_proxy_failed",
    "route_or_verdict",
]

log = logging.getLogger("crawlkit.fetch")

NO_PROXY_HALT = Halt(NO_PROXY_STOP)
_NO_SESSION_WAIT = 0.5  # seconds a request waits when this worker holds no shared session


async def route_or_verdict(identities: IdentityStep, request: Request) -> Route | Verdict:
    """The request's proxy and session; when every proxy rests, wait or stop."""
    try:
        route = await identities.route(request)
    except NoSessionAvailable as exc:
        return Rotated(exc, _NO_SESSION_WAIT)
    except NoProxyAvailable as exc:
        if identities.stop_when_none:
            log.error("every proxy is resting after errors; stopping (on_no_proxy = 'stop')")
            return NO_PROXY_HALT
        return Rotated(exc, max(identities.next_ready_in(), 0.1))
    if route.proxy is not None:
        identities.proxy_served()
    return route


def rotated_if_proxy_failed(
    identities: IdentityStep, stats: CrawlStats, request: Request, exc: FetchError, route: Route
) -> Rotated | None:
    """An attempt with no answer, labelled and counted: a proxy's failure goes again elsewhere,
    for free (None: the failure is not the proxy's)."""
    verdict = identities.classifier.error(exc)
    identities.record(route, verdict)
    if verdict.label is not Label.PROXY_ERROR:
        return None
    error = exc if isinstance(exc, ProxyError) else ProxyError(str(exc), request.url)
    return proxy_failed(stats, request, error)


def proxy_failed(stats: CrawlStats, request: Request, error: ProxyError) -> Rotated:
    stats.proxy_errors += 1
    log.info("%s: %s; going again through another proxy", request.url, error)
    return Rotated(error, 0.0)


class RobotsThroughProxies:
    """Fetches a robots.txt through the crawl's proxies, as the site's pages go (never directly)."""

    def __init__(
        self, identities: IdentityStep, fetcher: Fetcher | ImpersonateFetcher, stats: CrawlStats
    ) -> None:
        self._identities = identities
        self._fetcher = fetcher
        self._stats = stats

    async def fetch(self, request: Request) -> Fetched:
        """A proxy's failure is tried again at once through another (waiting while all rest), a
        few times; then it raises ``ProxyError``, which the politeness gate retries later."""
        identities = self._identities
        tries = 3 + (len(identities.pool.proxies) if identities.pool is not None else 0)
        for _ in range(tries):
            try:
                route = await identities.route(request)
            except NoSessionAvailable:
                await asyncio.sleep(_NO_SESSION_WAIT)
                continue
            except NoProxyAvailable:
                if identities.stop_when_none:
                    raise
                await asyncio.sleep(max(identities.next_ready_in(), 0.1))
                continue
            try:
                fetched = await self._fetcher.fetch(request, None, route)
            except FetchError as exc:
                verdict = identities.classifier.error(exc)
                identities.record(route, verdict)
                if verdict.label is not Label.PROXY_ERROR:
                    raise
                self._stats.proxy_errors += 1
                continue
            verdict = identities.classify(fetched, route)
            identities.record(route, verdict)
            if verdict.label is not Label.PROXY_ERROR:
                return fetched
            if fetched.hold is not None:
                fetched.hold.release()
            self._stats.proxy_errors += 1
        raise ProxyError(f"no proxy could fetch it in {tries} tries", request.url)
