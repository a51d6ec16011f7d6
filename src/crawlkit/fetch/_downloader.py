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
* ``Replaced(request)``: a middleware (or a CAPTCHA solver) asked for another request instead;
* ``PAUSED``: it timed out while the process was stopped, and goes again at once, for free;
* ``Rotated(error, delay)``: it goes again in ``delay`` seconds as someone else (a blocked
  answer: a fresh session; a proxy's failure: another proxy; every proxy resting: when the first
  is back), using none of its retries;
* ``Halt(reason)``: it goes back to the frontier unstarted and the crawl stops
  (``on_no_proxy = "stop"``).

What composes an attempt, in order (each a place to plug in more):

1. ``process_request`` of the middlewares (``_middlewares.py``; with middlewares an attempt takes
   the way of ``_middlewarepath.py``, made of the same steps);
2. the politeness gate: robots.txt, a ``Crawl-delay`` (``_politeness.py``);
3. the HTTP cache (``_cachestep.py``): a stored answer ends the attempt here, before the
   network; offline, a miss fails as ``not_cached``; a re-crawl's rules end a stored page here
   as unchanged; a re-crawl turns the request into a conditional one, and a 304 or an
   unchanged body ends it unparsed (``HttpCache.judge``), or with ``Unchanged(lines)``: its
   stored items, for ``recrawl_output = "all"``;
4. the identity step (``_identity.py``, ``_routing.py``): the request's proxy and session
   (``Route``), or a wait when every proxy rests; then the
   fetcher (``_client.py``: aiohttp, the cookie jars or the session's, the proxy per hop), or for
   a rendered request (``request.render``, else the spider's ``render``) the browser
   (``_rendering.py``: headless Chromium, started on the first such request, with the same jars),
   each answering a ``Fetched`` or a ``FetchError``;
5. the classifier labels the answer (``_classify.py``); unless the proxy failed: throttle
   feedback to the host policy, and the host's slot given back (``frontier.fetched``);
6. ``process_response`` / ``process_exception`` of the middlewares;
7. what the label does: ``proxy_error`` rests the proxy and rotates; ``blocked`` retires the
   session and rotates (the CAPTCHA solver asked first), within ``max_session_rotations``, then
   fails as ``blocked``; a status the spider does not handle is an error, and the retry policy
   (``_retry.py``) says whether and when to try again. A response that passed is kept by the
   cache (``HttpCache.keep``), if the crawl has one; a blocked one never is.

The path with no middleware makes no allocation beyond today's loop: a page is the ``Fetched``
the fetcher returned, and the verdicts that need no data are shared constants.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import (
    Blocked,
    ConfigError,
    FetchError,
    FetchTimeout,
    NotCached,
    ProxyError,
    RedirectFiltered,
    RenderError,
)
from ..guards import PAUSES
from ..http import Request, Response
from ._budget import ByteBudget
from ._cachestep import HttpCache, RobotsThroughCache
from ._classify import Classification, Label, Rule
from ._hostpolicy import CrawlHostPolicy
from ._identity import ROTATIONS_KEY, IdentityStep, Route, is_captcha
from ._middlewarepath import download_through_middlewares
from ._middlewares import MiddlewareChain
from ._politeness import DEFER, NO_PROXY, Politeness
from ._retry import RetryPolicy
from ._routing import (
    NO_PROXY_HALT,
    RobotsThroughProxies,
    proxy_failed,
    rotated_if_proxy_failed,
    route_or_verdict,
)
from ._sharedsessions import SessionStore
from ._verdicts import DEFERRED, PAUSED, Ended, Failed, Replaced, Rotated, Verdict

if TYPE_CHECKING:
    from ..core import CrawlStats
    from ..frontier import Frontier
    from ..settings import Settings
    from ._client import Fetched, Fetcher, HopCheck
    from ._impersonate import ImpersonateFetcher
    from ._rendering import RenderRoute, RenderSetup

__all__ = ["CaptchaSolver", "Downloader"]

log = logging.getLogger("crawlkit.fetch")


# Asked about each CAPTCHA page seen: a request to send instead (with the answer), or None.
CaptchaSolver = Callable[[Request, Response, Classification], Awaitable[Request | None]]

_BINARY = Ended(None)


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
        render: bool = False,
        render_files: Path | None = None,
        block_rules: Iterable[Rule | Mapping[str, Any]] = (),
        handle_blocked: bool = False,
        captcha_solver: CaptchaSolver | None = None,
        resolver: Any = None,
        hop_check: HopCheck | None = None,
        render_setup: RenderSetup | None = None,
        parser_checks_challenges: bool = False,
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
        self.identities = IdentityStep(settings, block_rules)
        self._handle_blocked = handle_blocked
        self._solver = captcha_solver
        # The caller parses every Fetched through ParseTask(challenge=...) and acts on what
        # blocked_in_parser() says (the engine): it may leave rule 7 of a direct 200 to the parser.
        self._parser_checks = parser_checks_challenges and captcha_solver is None
        self._sessions_state: dict[str, Any] | None = None
        self._cookie_jars: list[tuple[Any, list[dict[str, Any]]]] = []
        self.fetcher: Fetcher | ImpersonateFetcher | None = None
        self._render_default = render  # the spider's ``render``: for requests that do not say
        self._render_files = render_files  # where screenshots and PDFs go
        self._render_setup = render_setup
        self.rendering: RenderRoute | None = None  # made on the first rendered request
        self.cache: HttpCache | None = None  # set by the crawl's set-up, before the context

    def restore_cookie_jars(self, jars: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """Cookie jars a checkpoint saved (``cookie_jars()``); before the context is entered."""
        self._cookie_jars = jars

    def cookie_jars(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every cookie jar's cookies, JSON-ready, for a checkpoint to save."""
        return self.fetcher.cookie_jars() if self.fetcher is not None else self._cookie_jars

    def restore_sessions(self, state: Mapping[str, Any]) -> None:
        """Sessions a checkpoint saved (``sessions_state()``)."""
        self.identities.restore(state)

    def share_sessions(self, store: SessionStore) -> bool:
        """Use a shared crawl's pool of sessions (whether sessions are on at all). Its syncs
        start with the downloader's context; :meth:`sync_sessions` before each checkpoint,
        :meth:`release_sessions` after the last."""
        return self.identities.share_sessions(store) is not None

    async def sync_sessions(self) -> None:
        if self.identities.shared is not None:
            await self.identities.shared.sync()

    async def release_sessions(self) -> None:
        if self.identities.shared is not None:
            await self.identities.shared.close()

    def sessions_state(self) -> dict[str, Any] | None:
        """The live sessions, cookies included, JSON-ready, for a checkpoint (None: none)."""
        return self.identities.state()

    def proxy_table(self) -> list[dict[str, object]]:
        """Per proxy, for the summary: redacted URL, requests, successes, blocks, errors, state."""
        return self.identities.proxy_table()

    async def __aenter__(self) -> Downloader:
        if self._render_default and importlib.util.find_spec("playwright") is None:
            # Found, not imported: Playwright loads with the first render.
            raise ConfigError(
                "this spider renders its pages (render = True): pip install 'crawlkit[browser]'"
            )

        pool = self.identities.pool
        unusable = [p for p in pool.proxies if p.for_browser is None] if pool is not None else []
        if self._render_default and unusable:
            raise ConfigError(
                f"this spider renders its pages, and Chromium cannot authenticate to a SOCKS proxy "
                f"({', '.join(str(p) for p in unusable[:3])}): use SOCKS proxies without "
                "credentials, or http:// proxies"
            )
        fetcher = self._make_fetcher()
        fetcher.restore_cookie_jars(self._cookie_jars)
        await fetcher.__aenter__()
        self.fetcher = fetcher
        if self.identities.shared is not None:
            self.identities.shared.start()
        # Behind proxies, or as sessions, robots.txt goes out as the pages do: through a proxy
        # (never directly, with a cache too) and as one of the sessions (never with other headers).
        identities = self.identities
        through = None
        if identities.proxied or identities.sessions is not None:
            through = RobotsThroughProxies(identities, fetcher, self.stats).fetch
        cache = self.cache
        if cache is not None:
            self.politeness.attach(RobotsThroughCache(fetcher, cache, through))
        else:
            self.politeness.attach(fetcher, through)
        return self

    def _make_fetcher(self) -> Fetcher | ImpersonateFetcher:
        from ._client import Fetcher  # aiohttp: the engine imports it in a thread beforehand

        if self.settings.fetcher == "impersonate":
            if self._resolver is None:
                from ._impersonate import ImpersonateFetcher  # curl_cffi: only for this fetcher

                return ImpersonateFetcher(self.settings, self.budget)
            # The caller's resolver pins each connection to a vetted address (the fetch API's
            # guard against rebinding); only aiohttp takes one, so safety wins over the handshake.
            log.warning('fetcher = "impersonate" ignored here: this fetcher needs its own resolver')
        return Fetcher(self.settings, self.budget, self._resolver)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.politeness.close()
        if self.rendering is not None:
            await self.rendering.close()  # the browser's cookies are in the jars already
        self.stats.proxies = self.identities.proxy_table()
        self.stats.sessions = self.identities.session_stats() or {}
        if self.fetcher is not None:
            self._cookie_jars = self.fetcher.cookie_jars()  # the final checkpoint comes after
            await self.fetcher.__aexit__(exc_type, exc, tb)
            self.fetcher = None

    def response_of(self, request: Request, fetched: Fetched) -> Response:
        """``fetched`` as the ``Response`` that event handlers see (its body decoded here)."""
        return self.middlewares.as_response(request, fetched)

    def browser_memory_bytes(self) -> int:
        """What the browser holds, for the memory ceiling (0 while none has started)."""
        return self.rendering.memory_bytes() if self.rendering is not None else 0

    async def close_politeness(self) -> None:
        """Cancel robots.txt fetches still running (the crawl is stopping)."""
        await self.politeness.close()

    # -- one attempt ------------------------------------------------------------------------

    async def download(self, request: Request, route: Route | None = None) -> Fetched | Verdict:
        """One attempt at ``request``: a response for the parser, or a verdict to act on.

        ``route`` is the proxy and session it goes through, for a caller that chose them (the
        fetch API); by default the identity step chooses."""
        if self.middlewares:
            return await download_through_middlewares(self, request, route)
        politeness = self.politeness
        verdict = await politeness.gate(request)
        if verdict is not None:
            return self._gated(verdict)
        sent = request
        if self.cache is not None:
            cached = self._from_cache(request)
            if cached is None or isinstance(cached, Request):
                sent = cached or request
            elif isinstance(cached, Verdict):
                return cached  # offline's miss, or a page a re-crawl's rules skip
            else:
                return self._classify(request, cached)
        if route is None:
            chosen = await route_or_verdict(self.identities, request)
            if isinstance(chosen, Verdict):
                return chosen
            route = chosen
        started = time.monotonic()
        try:
            fetched = await self._fetch(sent, route)
        except RedirectFiltered as exc:
            log.info("%s: %s", request.url, exc)
            return Ended(exc.reason)
        except FetchError as exc:
            return self._fetch_error(request, exc, started) or self._raised(request, exc, route)
        # Nothing here needs to know yet whether a 200 is a challenge page when the attempt went
        # direct, with no session, cache or solver to act on it: the parser worker looks, in
        # the body it inflates anyway (``blocked_in_parser``), and the event loop inflates nothing.
        leave = self._parser_checks and self.cache is None and route.session is None and route.used is None
        answered = self._answer(request, fetched, route, started, leave_challenge=leave)
        if answered is not None:
            return answered
        if fetched.verdict is not None and fetched.verdict.label is Label.BLOCKED:
            blocked = await self._on_blocked(request, fetched)
            if blocked is not None:
                return blocked
        if self.cache is not None:
            return self._classify_and_keep(request, fetched)
        return self._classify(request, fetched)

    def _gated(self, verdict: str) -> Verdict:
        """What the politeness gate's refusal means for the request."""
        if verdict == DEFER:
            return DEFERRED
        if verdict == NO_PROXY:  # robots.txt could not be asked for: every proxy rests
            log.error("every proxy is resting after errors; stopping (on_no_proxy = 'stop')")
            return NO_PROXY_HALT
        return Ended(verdict)

    def _raised(self, request: Request, exc: FetchError, route: Route) -> Verdict:
        """An attempt with no answer: the proxy's failure goes again elsewhere, for free."""
        rotated = rotated_if_proxy_failed(self.identities, self.stats, request, exc, route)
        return rotated if rotated is not None else self._failed(request, exc, None)

    def _answer(
        self,
        request: Request,
        fetched: Fetched,
        route: Route,
        started: float,
        *,
        leave_challenge: bool = False,
    ) -> Verdict | None:
        """Label an answer, count it against its session and proxy; a proxy's own answer (a 407,
        its 502) goes again through another proxy and tells the host policy nothing."""
        identities = self.identities
        verdict = fetched.verdict = identities.classify(fetched, route, leave_challenge=leave_challenge)
        if verdict.challenge_unchecked:
            # What _shows_blocked() says of a vendor's page: parsed all the same, or not at all.
            shown = self._handle_blocked or request.meta.get("handle_blocked")
            fetched.challenge = 2 if shown else 1
        identities.record(route, verdict)
        if verdict.label is Label.PROXY_ERROR:
            if fetched.hold is not None:
                fetched.hold.release()
            message = f"proxy {route.used} answered HTTP {fetched.status} ({verdict.reason})"
            return proxy_failed(self.stats, request, ProxyError(message, request.url))
        self._received(request, fetched, started)
        if verdict.label is Label.BLOCKED:
            self.stats.blocks[verdict.reason] += 1
        return None

    async def _on_blocked(self, request: Request, fetched: Fetched) -> Verdict | None:
        """What a blocked answer does (None: it is not one, or the spider asked to see it): the
        solver is asked about a CAPTCHA; else it goes again on a fresh session, within
        ``max_session_rotations``, then fails as ``blocked``."""
        verdict = fetched.verdict
        if verdict is None or verdict.label is not Label.BLOCKED:
            return None
        if self._shows_blocked(request, fetched, verdict):
            return None
        if fetched.hold is not None:
            fetched.hold.release()
        if is_captcha(verdict) and self._solver is not None:
            answer = await self._solver(request, self.response_of(request, fetched), verdict)
            if answer is not None:
                self.stats.captchas_solved += 1
                return Replaced(answer)
        error = Blocked(
            f"blocked ({verdict.reason}, HTTP {fetched.status})", request.url, fetched.status, verdict.reason
        )
        identities = self.identities
        rotations = int(request.meta.get(ROTATIONS_KEY, 0))
        route = fetched.route
        if route is not None and identities.can_rotate(route) and rotations < identities.max_rotations:
            request.meta[ROTATIONS_KEY] = rotations + 1
            log.info("%s: blocked (%s); going again as someone else", request.url, verdict.reason)
            return Rotated(error, 0.0)
        return Failed(error, None, fetched)

    def blocked_in_parser(self, request: Request, fetched: Fetched, vendor: str) -> Failed | None:
        """The parser worker found ``vendor``'s challenge page in a 200 the classifier left to it
        (``fetched.challenge``): counted as the classifier would have, and failed as ``blocked``
        (None: the spider asked to see it, and its callback ran). Such an attempt went direct,
        with no session or solver: there is no one else to go again as."""
        self.stats.blocks[vendor] += 1
        if fetched.challenge == 2:
            return None
        error = Blocked(f"blocked ({vendor}, HTTP {fetched.status})", request.url, fetched.status, vendor)
        return Failed(error, None, fetched)

    def _shows_blocked(self, request: Request, fetched: Fetched, verdict: Classification) -> bool:
        """Whether the spider asked to see this blocked answer in its callback: ``handle_blocked``
        (the spider's or ``meta``'s), or a 401/403 with no vendor's page, whose status it handles."""
        meta = request.meta
        if self._handle_blocked or meta.get("handle_blocked"):
            return True
        if not verdict.reason.startswith("status_"):
            return False
        return fetched.status in self._handled or bool(meta.get("handle_httpstatus_all"))

    def _fetch_error(self, request: Request, exc: FetchError, started: float) -> Verdict | None:
        """``PAUSED`` for a timeout across a stop of the whole process; else None, after telling
        the host policy how long a timeout took (it slows the host down)."""
        if isinstance(exc, FetchTimeout):
            if PAUSES.spanned(started):
                return PAUSED
            self.politeness.observe(request, started, time.monotonic() - started, None)
        return None

    async def _fetch(self, request: Request, route: Route) -> Fetched:
        """The fetch itself, with its session counted in flight meanwhile: a shared pool hands a
        session on only once none of its requests is in flight."""
        session = route.session
        if session is None:
            return await self._fetch_through(request, route)
        session.in_flight += 1
        try:
            return await self._fetch_through(request, route)
        finally:
            session.in_flight -= 1

    async def _fetch_through(self, request: Request, route: Route) -> Fetched:
        """Through the browser for a rendered request, else the HTTP client."""
        fetcher = self.fetcher
        assert fetcher is not None, "Downloader used outside 'async with'"
        render = request.render
        if render is False or (render is None and not self._render_default):
            return await fetcher.fetch(request, self._check_hop, route)
        rendering = self.rendering
        if rendering is None:
            from ._rendering import RenderRoute

            rendering = RenderRoute(
                self.settings, self.budget, self.stats, self._render_files, self._render_setup
            )
            self.rendering = rendering
        # The same identity over HTTP and in the browser: the session's jar, profile and proxy.
        session = route.session
        jar = session.jar if session is not None else fetcher.cookie_jar(request.meta.get("cookiejar"))
        proxy = route.proxy_for(request.url)
        browser_proxy = None if proxy is None else proxy.for_browser
        if proxy is not None and browser_proxy is None:
            raise RenderError(
                f"cannot render through {proxy}: Chromium cannot authenticate to a SOCKS proxy "
                "(use one without credentials, or an http:// proxy, for rendered requests)",
                request.url,
            )
        return await rendering.fetch(
            request,
            request.render_plan or {},
            jar,
            self._check_hop,
            proxy=browser_proxy,
            session=None if session is None else f"session:{session.id}",
            identity_headers=None if session is None else session.headers(),
        )

    # -- the HTTP cache (step 3, and the hook where passed responses are kept) ---------------

    def _from_cache(self, request: Request) -> Fetched | Verdict | Request | None:
        """A stored answer (to classify as a fetched one), offline's failure, a re-crawl's verdict
        on a page it skips, or the request to send."""
        assert self.cache is not None
        found = self.cache.lookup(request)
        if found is None or isinstance(found, Request | Verdict):
            return found
        if isinstance(found, NotCached):
            return Failed(found, None)
        self.frontier.fetched(request)  # the host's slot is free: nothing more is sent for it
        self.stats.pages += 1
        self.stats.statuses[found.status] += 1
        return found

    def _classify_and_keep(self, request: Request, fetched: Fetched) -> Fetched | Verdict:
        assert self.cache is not None
        judged = self.cache.judge(request, fetched)
        if judged is not None:
            if fetched.hold is not None:
                fetched.hold.release()
            return judged  # unchanged (304, or the same body) or gone: counted by the cache
        result = self._classify(request, fetched)
        verdict = fetched.verdict
        if result is fetched and (verdict is None or verdict.label is not Label.BLOCKED):
            self.cache.keep(request, fetched)  # a blocked page the spider asked to see: never
        return result

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


def _both(first: HopCheck, then: HopCheck) -> HopCheck:
    async def check(url: str) -> str | None:
        return await first(url) or await then(url)

    return check
