"""The downloader: the one call the engine makes per fetch attempt, and the outcome it acts on.

``Downloader.download(request)`` runs everything between a leased request and a response a
callback may see, and answers with one value:

* a ``Fetched`` response, for the parser;
* ``Ended(reason)``: the request ends with no callback and is no failure (robots.txt forbids
  it, a redirect was filtered, an unrequested binary file, a middleware's ``IgnoreRequest``);
  ``DEFERRED``: it goes back to the frontier unstarted;
* ``Failed(error, retry_in, response)``: the attempt failed; ``retry_in`` seconds until the next
  attempt, or ``None`` when the request has failed for good with ``error`` (``response``: the
  error response, if there was one);
* ``Replaced(request)``: a middleware asked for another request instead, to be scheduled;
* ``PAUSED``: it timed out while the process was stopped, and goes again at once, for free.

What composes an attempt, in order (each a place to plug in more):

1. ``process_request`` of the middlewares (``_middlewares.py``);
2. the politeness gate: robots.txt, a ``Crawl-delay`` (``_politeness.py``);
3. [an HTTP cache would answer here, before the network];
4. the fetcher (``_client.py``: aiohttp, the cookie jars; a session with a proxy, or another
   fetcher such as a browser, goes in its place, with the same ``fetch(request, hop_check)``);
5. throttle feedback to the host policy, and the host's slot given back (``frontier.fetched``);
6. ``process_response`` / ``process_exception`` of the middlewares;
7. the classifier: a status the spider does not handle is an error; the retry policy
   (``_retry.py``) says whether and when to try again.

The path with no middleware makes no allocation beyond today's loop: a page is the ``Fetched``
the fetcher returned, and the verdicts that need no data are shared constants.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import FetchError, FetchTimeout, IgnoreRequest, MiddlewareError, RedirectFiltered
from ..guards import PAUSES
from ..http import Request, Response
from ._budget import ByteBudget
from ._hostpolicy import CrawlHostPolicy
from ._middlewares import MiddlewareChain
from ._politeness import DEFER, Politeness
from ._retry import RetryPolicy

if TYPE_CHECKING:
    from ..core import CrawlStats
    from ..frontier import Frontier
    from ..settings import Settings
    from ._client import Fetched, Fetcher, HopCheck

__all__ = ["DEFERRED", "PAUSED", "Downloader", "Ended", "Failed", "Replaced", "Verdict"]

log = logging.getLogger("crawlkit.fetch")


class Verdict:
    """An attempt that produced no page for the parser; the engine acts on its kind."""

    __slots__ = ()


class Ended(Verdict):
    """The request ends with no callback, and is no failure; ``reason`` is counted as filtered
    (``None``: counted by the downloader already, as a binary file is)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str | None) -> None:
        self.reason = reason


class Failed(Verdict):
    """A failed attempt: retry in ``retry_in`` seconds, or (``None``) fail for good with ``error``."""

    __slots__ = ("error", "response", "retry_in")

    def __init__(self, error: FetchError, retry_in: float | None, response: Fetched | None = None) -> None:
        self.error = error
        self.retry_in = retry_in
        self.response = response


class Replaced(Verdict):
    """A middleware returned ``request``: it is scheduled instead, and this one ends."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request


DEFERRED = Ended(DEFER)  # handed back to the frontier unstarted
# Timed out while the process was stopped (SIGSTOP, a debugger): no fault of the host's or the
# request's, so it goes again at once, using none of its retries (``guards/_pauses.py``).
PAUSED = Ended("paused")
_BINARY = Ended(None)
_IGNORED = Ended("ignored")


class Downloader:
    """One crawl's way from a leased request to a response; use as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        *,
        frontier: Frontier,
        stats: CrawlStats,
        host_policy: CrawlHostPolicy,
        budget: ByteBudget,
        allowed_domains: Iterable[str] | str = (),
        handled_statuses: Iterable[int] = (),
        middlewares: list[Any] | None = None,
        resolver: Any = None,
        hop_check: HopCheck | None = None,
    ) -> None:
        self.settings = settings
        self._resolver = resolver  # for the Fetcher's connections (see Fetcher)
        self.frontier = frontier
        self.stats = stats
        self.budget = budget
        self.politeness = Politeness(settings, host_policy, frontier, stats, allowed_domains)
        # Each redirect hop passes the politeness check, and then ``hop_check`` if one was given
        # (the fetch API refuses private addresses at every hop).
        self._check_hop: HopCheck = self.politeness.check_hop
        if hop_check is not None:
            self._check_hop = _both(hop_check, self.politeness.check_hop)
        self.retry_policy = RetryPolicy(settings)
        self.middlewares = MiddlewareChain(middlewares or [], settings.max_response_size)
        self._handled = frozenset(handled_statuses)
        self._cookie_jars: list[tuple[Any, list[dict[str, Any]]]] = []
        self.fetcher: Fetcher | None = None

    def restore_cookie_jars(self, jars: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """Cookie jars a checkpoint saved (``cookie_jars()``); before the context is entered."""
        self._cookie_jars = jars

    def cookie_jars(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every cookie jar's cookies, JSON-ready, for a checkpoint to save."""
        return self.fetcher.cookie_jars() if self.fetcher is not None else self._cookie_jars

    async def __aenter__(self) -> Downloader:
        from ._client import Fetcher  # aiohttp: the engine imports it in a thread beforehand

        fetcher = Fetcher(self.settings, self.budget, self._resolver)
        fetcher.restore_cookie_jars(self._cookie_jars)
        await fetcher.__aenter__()
        self.fetcher = fetcher
        self.politeness.attach(fetcher)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.politeness.close()
        if self.fetcher is not None:
            self._cookie_jars = self.fetcher.cookie_jars()  # the final checkpoint comes after
            await self.fetcher.__aexit__(exc_type, exc, tb)
            self.fetcher = None

    def response_of(self, request: Request, fetched: Fetched) -> Response:
        """``fetched`` as the ``Response`` that event handlers see (its body decoded here)."""
        return self.middlewares.as_response(request, fetched)

    async def close_politeness(self) -> None:
        """Cancel robots.txt fetches still running (the crawl is stopping)."""
        await self.politeness.close()

    # -- one attempt ------------------------------------------------------------------------

    async def download(self, request: Request) -> Fetched | Verdict:
        """One attempt at ``request``: a response for the parser, or a verdict to act on."""
        if self.middlewares:
            return await self._download_through_middlewares(request)
        politeness = self.politeness
        verdict = await politeness.gate(request)
        if verdict is not None:
            return DEFERRED if verdict == DEFER else Ended(verdict)
        fetcher = self.fetcher
        assert fetcher is not None, "Downloader used outside 'async with'"
        started = time.monotonic()
        try:
            fetched = await fetcher.fetch(request, self._check_hop)
        except RedirectFiltered as exc:
            log.info("%s: %s", request.url, exc)
            return Ended(exc.reason)
        except FetchError as exc:
            if isinstance(exc, FetchTimeout):
                if PAUSES.spanned(started):
                    return PAUSED
                politeness.observe(request, started, time.monotonic() - started, None)
            return self._failed(request, exc, None)
        self._received(request, fetched, started)
        return self._classify(request, fetched)

    def _received(self, request: Request, fetched: Fetched, started: float) -> None:
        # The host's slot is free for its next request; this one stays leased until it is
        # acked, retried or failed.
        self.frontier.fetched(request)
        self.politeness.observe(request, started, fetched.latency, fetched.status, fetched.headers)
        stats = self.stats
        stats.pages += 1
        stats.bytes += len(fetched.body)
        stats.statuses[fetched.status] += 1

    def _classify(self, request: Request, fetched: Fetched) -> Fetched | Verdict:
        status = fetched.status
        if (
            not 200 <= status < 300
            and status not in self._handled
            and not request.meta.get("handle_httpstatus_all")
        ):
            if fetched.hold is not None:
                fetched.hold.release()
            return self._failed(request, fetched.status_error(), fetched)
        if fetched.binary:
            self.stats.not_parsed["binary"] += 1
            return _BINARY
        return fetched

    def _failed(self, request: Request, error: FetchError, response: Fetched | None) -> Failed:
        policy = self.retry_policy
        delay = policy.delay_for(request, error)
        if delay is not None:
            return Failed(error, delay)
        return Failed(policy.final_error(request, error), None, response)

    async def _download_through_middlewares(self, request: Request) -> Fetched | Verdict:
        chain = self.middlewares
        fetched: Fetched | None = None
        try:
            early = await chain.process_request(request)
            if isinstance(early, Request):
                return Replaced(early)
            if isinstance(early, Response):
                fetched = chain.as_fetched(early)
            else:
                got = await self._fetch_once(request)
                if isinstance(got, Verdict):
                    return got
                if isinstance(got, FetchError):
                    answer = await chain.process_exception(request, got)
                    if answer is None:
                        return self._failed(request, got, None)
                    if isinstance(answer, Request):
                        return Replaced(answer)
                    got = chain.as_fetched(answer)
                fetched = got
            result = await chain.process_response(request, fetched)
        except (IgnoreRequest, MiddlewareError) as exc:
            if fetched is not None and fetched.hold is not None:
                fetched.hold.release()
            if isinstance(exc, MiddlewareError):
                return Failed(exc, None)
            log.info("%s ignored by a middleware: %s", request.url, exc)
            return _IGNORED
        if isinstance(result, Request):
            if fetched.hold is not None:
                fetched.hold.release()
            return Replaced(result)
        return self._classify(request, result)

    async def _fetch_once(self, request: Request) -> Fetched | Verdict | FetchError:
        """The politeness gate and the fetch, with a fetch error as a value (for the middlewares)."""
        politeness = self.politeness
        verdict = await politeness.gate(request)
        if verdict is not None:
            return DEFERRED if verdict == DEFER else Ended(verdict)
        assert self.fetcher is not None, "Downloader used outside 'async with'"
        started = time.monotonic()
        try:
            fetched = await self.fetcher.fetch(request, self._check_hop)
        except RedirectFiltered as exc:
            log.info("%s: %s", request.url, exc)
            return Ended(exc.reason)
        except FetchError as exc:
            if isinstance(exc, FetchTimeout):
                if PAUSES.spanned(started):
                    return PAUSED
                politeness.observe(request, started, time.monotonic() - started, None)
            return exc
        self._received(request, fetched, started)
        return fetched


def _both(first: HopCheck, then: HopCheck) -> HopCheck:
    async def check(url: str) -> str | None:
        return await first(url) or await then(url)

    return check
