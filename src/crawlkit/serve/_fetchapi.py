"""``GET /api/fetch?url=...``: one page through crawlkit's downloader, for a client that wants it now.

The page comes through the crawl's own ``Downloader``: robots.txt, retries with backoff (the
``RetryPolicy``, ``Retry-After`` honoured), redirects checked hop by hop, size limits; rendered in
headless Chromium with ``render=1``, in a sticky session with ``session=NAME``, through the
server's proxies with ``proxy=`` (``_fetchoptions.py`` reads the query). Around it:

* a deadline: the client says how long it waits (``timeout``, 30 s by default, 120 at most) and
  the fetch ends a second before, so the client gets an answer (504) rather than a dropped line;
  a render's own timeout stays within it;
* a bounded queue: ``fetch_concurrency`` fetches run at once and ``fetch_queue`` more may wait;
  past that the answer is 503 with ``Retry-After``;
* politeness across clients: one host is fetched by at most its ``concurrency_per_host`` at
  once, with its ``download_delay`` between them, as in a crawl, rendered or not;
* cancellation: the server runs with handler cancellation on, so a client that goes away
  cancels its fetch (a render's page is closed), and its slot is free at once;
* the address checks of ``_netguard.py`` on the URL and on every redirect hop, unless the server
  runs with ``--allow-private``; in the browser, on every request a page makes (request routing)
  and at every connection it opens (every context goes through ``_forwarder.py``).

Without ``session``, each fetch has a cookie jar (and a browser context) of its own: no cookie of
one client's fetch goes with another's. The crawl's session pool is off here: a named session
(``_fetchsessions.py``) is the only way cookies outlive a call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from ..core import CrawlStats
from ..errors import FetchError
from ..fetch import (
    DEFER,
    PAUSED,
    BrowserIdentities,
    ByteBudget,
    Classifier,
    CrawlHostPolicy,
    Downloader,
    Ended,
    Failed,
    HeaderProfile,
    IdentityStep,
    Proxy,
    RenderSetup,
    Rotated,
    Route,
    Verdict,
    honest_profile,
)
from ..frontier import open_frontier
from ..http import Request, Response, decode_body
from ..settings import Settings
from ._api import json_response
from ._fetchoptions import AUTO, DIRECT, BadOption, FetchOptions, ProxyChoice, choose_proxy, read_options
from ._fetchsessions import NamedSession, SessionBook, SessionsFull
from ._forwarder import VettedForwarder
from ._netguard import AddressRefused, NetGuard

if TYPE_CHECKING:
    from ..fetch import BrowserLauncher

__all__ = ["FETCHER", "FetchService"]

_RETRY_AFTER = "2"
# WebRTC's UDP would go around the proxy, to any address a page names: only through the proxy.
_GUARDED_CHROMIUM = ("--force-webrtc-ip-handling-policy=disable_non_proxied_udp",)
_MAX_REFUSED_SHOWN = 50


class FetchService:
    """The fetch API's downloader, queue, per-host politeness and named sessions."""

    def __init__(
        self,
        settings: Settings,
        guard: NetGuard,
        *,
        queue: int,
        concurrency: int,
        sessions: int = 256,
        session_idle: float = 600.0,
        browser_launcher: BrowserLauncher | None = None,
    ) -> None:
        # The crawl's session pool would share its sessions' jars between clients: named
        # sessions take its place.
        self.settings = settings.replace(frontier="memory", sessions="off")
        self.guard = guard
        self.queue = queue
        self.concurrency = concurrency
        self.running = 0
        self.waiting = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, tuple[asyncio.Semaphore, list[float]]] = {}
        self.host_policy = CrawlHostPolicy.from_settings(self.settings)
        self.stats = CrawlStats()
        self._downloader: Downloader | None = None
        self._jar = 0
        self._classifier = Classifier()
        self.book = SessionBook(_profiles(self.settings), limit=sessions, idle=session_idle)
        self._launcher = browser_launcher
        self._forwarder: VettedForwarder | None = None

    @property
    def identities(self) -> IdentityStep:
        assert self._downloader is not None, "FetchService used before start()"
        return self._downloader.identities

    async def start(self) -> None:
        frontier = open_frontier(self.settings, self.host_policy, spider_name="fetch-api")
        await frontier.open()
        setup = RenderSetup(launcher=self._launcher, files_inline=True)
        if not self.guard.allow_private:
            self._forwarder = VettedForwarder(self.guard)
            via = await self._forwarder.start()
            setup = RenderSetup(
                self._launcher,
                self.guard.browser_check,
                via,
                files_inline=True,
                launch_args=_GUARDED_CHROMIUM,
            )
        downloader = Downloader(
            self.settings,
            frontier=frontier,
            stats=self.stats,
            host_policy=self.host_policy,
            budget=ByteBudget(self.settings.max_inflight_bytes),
            resolver=self.guard.resolver,
            hop_check=None if self.guard.allow_private else self.guard.hop_check,
            render_setup=setup,
        )
        self._downloader = await downloader.__aenter__()

    async def close(self) -> None:
        if self._downloader is not None:
            await self._downloader.__aexit__(None, None, None)
            self._downloader = None
        if self._forwarder is not None:
            await self._forwarder.close()
        await self.guard.close()

    def figures(self) -> dict[str, int]:
        figures = {
            "running": self.running,
            "waiting": self.waiting,
            "queue": self.queue,
            "sessions": len(self.book),
        }
        if self._forwarder is not None:
            figures["browser_refused"] = self._forwarder.refused  # connections, not requests
        return figures

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            options = read_options({name: query.getall(name) for name in set(query.keys())})
            choice = self._proxy_choice(options)
        except BadOption as exc:
            return json_response({"error": str(exc)}, 400)
        if options.render and importlib.util.find_spec("playwright") is None:
            return json_response({"error": "render=1 needs a browser: pip install 'crawlkit[browser]'"}, 501)
        try:
            url = await self.guard.check(options.url)
        except AddressRefused as exc:
            return json_response({"error": str(exc), "classification": "refused"}, 400)
        try:
            fetch_request = _request(url, options, self.settings)
        except BadOption as exc:
            return json_response({"error": str(exc)}, 400)
        if self.waiting >= self.queue:
            return json_response(
                {"error": "the fetch queue is full; try again shortly"}, 503, {"Retry-After": _RETRY_AFTER}
            )
        deadline = time.monotonic() + options.deadline_s
        self.waiting += 1
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await self._slots.acquire()
        except TimeoutError:
            return json_response({"error": "timed out waiting in the fetch queue"}, 504)
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                return await self._fetch(fetch_request, options, choice)
        except TimeoutError:
            return json_response(
                {"error": f"no answer within the deadline ({options.deadline_s:.1f} s)"}, 504
            )
        finally:
            self.running -= 1
            self._slots.release()

    def _proxy_choice(self, options: FetchOptions) -> ProxyChoice:
        """``proxy=`` against the server's proxies, and against the named session's own."""
        pool = self.identities.pool
        choice = choose_proxy(
            options.proxy, pool.proxies if pool is not None else [], allow_private=self.guard.allow_private
        )
        named = self.book.get(options.session) if options.session is not None else None
        if named is None or options.proxy is None:
            return choice
        mine = named.session.proxy
        agrees = (
            (choice == AUTO and named.proxy_choice == AUTO)
            or (choice == DIRECT and mine is None)
            or (isinstance(choice, Proxy) and choice == mine)
        )
        if not agrees:
            raise BadOption(
                f"session {options.session!r} goes through {mine or 'no proxy'} for its whole life; "
                "leave proxy out, or use another session"
            )
        return choice

    def _take_session(self, options: FetchOptions, choice: ProxyChoice) -> tuple[NamedSession, bool] | float:
        """The named session (new or not), or the seconds until a proxy is back for a new one."""
        assert options.session is not None
        proxy: Proxy | None = None
        if self.book.get(options.session) is None:
            if choice == AUTO:
                pool = self.identities.pool
                assert pool is not None
                proxy = pool.pick()
                if proxy is None:
                    return pool.next_ready_in()
            elif isinstance(choice, Proxy):
                proxy = choice
        label = choice if isinstance(choice, str) else f"{choice.host}:{choice.port}"
        return self.book.take(options.session, proxy, label)

    def _route(self, options: FetchOptions, choice: ProxyChoice, named: NamedSession | None) -> Route | float:
        """This attempt's route, or the seconds until a proxy of the pool is back."""
        if named is not None:
            return Route(proxy=named.session.proxy, session=named.session)
        if isinstance(choice, Proxy):
            return Route(proxy=choice)
        if choice == AUTO:
            pool = self.identities.pool
            assert pool is not None
            proxy = pool.pick()
            return pool.next_ready_in() if proxy is None else Route(proxy=proxy)
        # Not asked for: the environment's proxy, as a crawl has it (proxy_from_env); none: none.
        return Route(env=self.identities.env) if options.proxy is None else Route()

    async def _fetch(self, request: Request, options: FetchOptions, choice: ProxyChoice) -> web.Response:
        named: NamedSession | None = None
        new = False
        if options.session is not None:
            while True:
                try:
                    taken = self._take_session(options, choice)
                except SessionsFull as exc:
                    return json_response({"error": str(exc)}, 503, {"Retry-After": _RETRY_AFTER})
                if not isinstance(taken, float):
                    named, new = taken
                    break
                await asyncio.sleep(max(taken, 0.1))  # every proxy rests; the deadline holds
        try:
            return await self._attempts(request, options, choice, named, new)
        finally:
            if named is not None:
                self.book.give_back(named)

    async def _attempts(
        self,
        request: Request,
        options: FetchOptions,
        choice: ProxyChoice,
        named: NamedSession | None,
        new: bool,
    ) -> web.Response:
        downloader = self._downloader
        assert downloader is not None, "FetchService used before start()"
        if named is None:
            self._jar += 1
            request.meta["cookiejar"] = f"fetch-api-{self._jar}"
        started = time.monotonic()
        attempts = 0
        used: Proxy | None = None
        try:
            while True:
                route = self._route(options, choice, named)
                if isinstance(route, float):
                    await asyncio.sleep(max(route, 0.1))  # every proxy rests; the deadline holds
                    continue
                attempts += 1
                async with self._host_turn(request.url):
                    outcome = await downloader.download(request, route)
                used = route.used
                if isinstance(outcome, Failed) and outcome.retry_in is not None:
                    request.attempt += 1
                    await asyncio.sleep(outcome.retry_in)  # the deadline still holds over the wait
                    continue
                if isinstance(outcome, Ended) and outcome.reason == DEFER:
                    attempts -= 1  # robots.txt of the origin is being fetched: not an attempt
                    await asyncio.sleep(0.1)
                    continue
                if outcome is PAUSED:
                    continue
                if isinstance(outcome, Rotated) and choice == AUTO and named is None:
                    await asyncio.sleep(outcome.delay)  # the proxy failed: another of the pool
                    continue
                break
        finally:
            if named is None and downloader.fetcher is not None:
                await downloader.fetcher.drop_jar(request.meta["cookiejar"])
        figures: dict[str, Any] = {
            "url": request.url,
            "attempts": attempts,
            "elapsed_s": round(time.monotonic() - started, 3),
            "rendered": options.render,
            "proxy": None if used is None else str(used),
        }
        if named is not None:
            figures["session"] = named.name
            figures["session_new"] = new
        refused = request.meta.get("render_refused")
        if refused:
            figures["refused_requests"] = refused[:_MAX_REFUSED_SHOWN]
        return self._answer(request, outcome, figures)

    def _answer(self, request: Request, outcome: Any, figures: dict[str, Any]) -> web.Response:
        if isinstance(outcome, Rotated):  # a session's or a named proxy's failure: said, not hidden
            label = self._classifier.error(outcome.error)
            return json_response(
                {
                    **figures,
                    "classification": str(label.label),
                    "reason": outcome.error.reason,
                    "error": str(outcome.error),
                },
                502,
            )
        if isinstance(outcome, Failed):
            if outcome.response is None:
                error: FetchError = outcome.error
                label = self._classifier.error(error)
                return json_response(
                    {
                        **figures,
                        "classification": str(label.label),
                        "reason": error.reason,
                        "error": str(error),
                    },
                    502,
                )
            fetched = outcome.response
        elif isinstance(outcome, Verdict):  # robots.txt, a redirect refused or filtered
            reason = getattr(outcome, "reason", None)
            return json_response({**figures, "classification": "not_fetched", "reason": reason}, 502)
        else:
            fetched = outcome
        if fetched.hold is not None:
            fetched.hold.release()
        label = self._classifier.response(
            fetched.status, fetched.headers, fetched.body, fetched.content_encoding, url=fetched.url
        )
        page = _page(request, fetched, self.settings)
        shot = request.meta.get("screenshot_data")
        if shot is not None:
            page["screenshot"] = base64.b64encode(shot).decode("ascii")
        return json_response({**figures, **page, "classification": str(label.label), "reason": label.reason})

    @contextlib.asynccontextmanager
    async def _host_turn(self, url: str) -> Any:
        """The host's slot and delay, as a crawl keeps them, shared by every client."""
        host = URL(url).host or ""
        limits = self.host_policy.limits(host)
        if host not in self._hosts:
            self._hosts[host] = (asyncio.Semaphore(max(1, limits.concurrency)), [0.0])
        slot, last = self._hosts[host]
        async with slot:
            wait = last[0] + self.host_policy.delay(host) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                last[0] = time.monotonic()


def _request(url: str, options: FetchOptions, settings: Settings) -> Request:
    """The downloader's request for ``options``; a render plan that does not parse is a 400.

    A blocked answer comes back as it is (``handle_blocked``), labelled: the client decides what
    to do, and a named session is never swapped for another behind its back."""
    meta: dict[str, Any] = {"allow_binary": True, "handle_blocked": True}
    if not options.render:
        return Request(url, meta=meta)
    render_timeout = options.render_timeout or min(settings.render_timeout, options.deadline_s)
    try:
        return Request(
            url,
            meta=meta,
            render=True,
            wait_for=options.wait_for,
            screenshot=options.screenshot,
            render_timeout=render_timeout,
        )
    except ValueError as exc:
        raise BadOption(str(exc)) from None


def _profiles(settings: Settings) -> Callable[[], HeaderProfile]:
    """The header profile of each new named session, as a crawl's sessions get theirs."""
    if settings.identities == "browser":
        return BrowserIdentities()
    honest: HeaderProfile = honest_profile(settings.user_agent)
    return lambda: honest


def _page(request: Request, fetched: Any, settings: Settings) -> dict[str, Any]:
    body = decode_body(fetched.body, fetched.content_encoding, settings.max_response_size or (1 << 62))
    response = Response(fetched.url, fetched.status, fetched.headers, body, request)
    page: dict[str, Any] = {"final_url": fetched.url, "status": fetched.status, "headers": fetched.headers}
    try:
        page["body"], page["body_encoding"], page["charset"] = response.text, "text", response.encoding
    except Exception:  # not text (an image, a PDF): the bytes, in base64
        page["body"], page["body_encoding"] = base64.b64encode(body).decode(), "base64"
    return page


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock (uvloop's may differ)."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


FETCHER = web.AppKey("fetcher", FetchService)
