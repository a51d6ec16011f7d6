"""Rendering pages in headless Chromium: bounded, and nothing left behind.

``BrowserFetcher.render(url, plan)`` opens a page, navigates, waits for what ``plan`` names, runs
its steps and reads the rendered DOM. Safe by default:

- its own slots (``browser_concurrency``), apart from the HTTP client's;
- images, fonts and media are never downloaded (``browser_block_resources``), counted instead;
- one deadline (``render_timeout``, or the plan's) covers navigation, steps and waits;
- the page is closed on every path, and its slot freed; a page that will not close takes its
  context with it, and a context that will not close restarts the browser;
- a context (cookies, cache, the per-context proxy) serves ``browser_context_pages`` pages,
  then a new one takes over and the old one closes when its last page has;
- the browser is relaunched after a crash, and restarted when its processes hold more than
  ``browser_max_memory_mb`` (PSS), once the renders in flight have finished.

Proxy, cookies and headers are parameters of a render: pages with the same proxy and ``session``
share a context (its cookie jar, as tabs of one profile do); headers are set on the page alone.

A caller that must keep the browser away from some addresses (the fetch API of ``crawlkit
serve``) gives ``request_check``, asked about every request and WebSocket a page makes (a refused
one is aborted, its URL in ``Rendered.refused``), and ``via``, the proxy every context without a
proxy of its own goes through (where the connections are checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..errors import (
    BrowserCrashed,
    ConfigError,
    ConnectError,
    FetchError,
    FetchTimeout,
    RenderError,
    RenderTimeout,
    TLSError,
)
from ..http import RenderPlan
from ..settings import BROWSER_RESOURCE_TYPES as RESOURCE_TYPES
from ._browser_launch import BrowserLauncher
from ._browser_steps import NetworkWatch, run_steps

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Route, WebSocketRoute

    from ..settings import Settings

__all__ = ["RESOURCE_TYPES", "BrowserConfig", "BrowserFetcher", "BrowserStats", "Rendered", "RequestCheck"]

# Why a page may not request a URL, or None: asked about each request and WebSocket of a page.
RequestCheck = Callable[[str], Awaitable[str | None]]

log = logging.getLogger("crawlkit.browser")

CLOSE_GRACE = 5.0  # seconds a page or a context gets to close before it is given up on
# Headers of the main document that describe bytes the body no longer is: it is the DOM, as UTF-8.
_STALE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding", "content-type"})


@dataclass(frozen=True, slots=True)
class BrowserConfig:
    """How the browser is run; ``from_settings()`` reads the ``browser_*`` settings."""

    executable: str = ""
    concurrency: int = 2
    block_resources: frozenset[str] = frozenset({"image", "font", "media"})
    render_timeout: float = 30.0
    context_pages: int = 50
    max_memory_mb: int = 1024
    max_contexts: int = 8  # contexts kept open at once (one per proxy and session in use)
    user_agent: str | None = None  # None: Chromium's own
    viewport: tuple[int, int] = (1280, 800)

    def __post_init__(self) -> None:
        unknown = set(self.block_resources) - RESOURCE_TYPES
        if unknown:
            raise ConfigError(
                f"browser_block_resources: unknown resource types {sorted(unknown)} "
                f"(known: {', '.join(sorted(RESOURCE_TYPES))})"
            )
        if self.concurrency < 1 or self.context_pages < 1 or self.render_timeout <= 0:
            raise ConfigError("browser_concurrency, browser_context_pages and render_timeout must be above 0")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BrowserConfig:
        values: dict[str, Any] = {
            "executable": settings.browser_executable,
            "concurrency": settings.browser_concurrency,
            "block_resources": frozenset(settings.browser_block_resources),
            "render_timeout": settings.render_timeout,
            "context_pages": settings.browser_context_pages,
            "max_memory_mb": settings.browser_max_memory_mb,
        }
        return cls(**(values | overrides))


@dataclass(slots=True)
class Rendered:
    """A rendered page: the DOM serialised as UTF-8 HTML, and what the render gathered."""

    url: str  # where the page ended up (redirects, client-side navigation)
    status: int  # of the main document's response
    headers: list[tuple[str, str]]  # the main document's, with Content-Type saying UTF-8 HTML
    body: bytes
    results: dict[str, Any] = field(default_factory=dict)  # the 'evaluate' steps' results, by key
    screenshot: bytes | None = None  # PNG of the full page, when the plan asked for it
    pdf: bytes | None = None
    blocked: int = 0  # requests of this page not made (browser_block_resources)
    refused: list[str] = field(default_factory=list)  # URLs the request check refused
    # The context's cookies for the page's first and last URL, as Playwright records them, when
    # render() was asked for them (``want_cookies``): what the page set goes back to a crawl's jar.
    cookies: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0  # seconds, from taking a slot to the page read


@dataclass(slots=True)
class BrowserStats:
    renders: int = 0  # pages rendered and read
    failures: Counter[str] = field(default_factory=Counter)  # by FetchError.reason
    blocked: Counter[str] = field(default_factory=Counter)  # requests not made, by resource type
    refused: int = 0  # requests and WebSockets the request check refused
    contexts: int = 0  # contexts opened
    restarts: Counter[str] = field(default_factory=Counter)  # browser restarts, by cause


@dataclass(eq=False, slots=True)
class _Context:
    key: tuple[str | None, str | None]  # (proxy, session)
    context: BrowserContext
    generation: int  # the launch it belongs to
    served: int = 0
    in_flight: int = 0
    retired: bool = False
    last_used: float = 0.0


class BrowserFetcher:
    """Renders pages in one headless Chromium; use as an async context manager.

    ``launcher`` shares a running browser (the fetcher then leaves it open at ``close()``);
    without one, the fetcher launches its own on the first render, with ``launch_args``.
    """

    def __init__(
        self,
        config: BrowserConfig | None = None,
        launcher: BrowserLauncher | None = None,
        *,
        request_check: RequestCheck | None = None,
        via: str | None = None,
        launch_args: tuple[str, ...] = (),
    ) -> None:
        self.config = config or BrowserConfig()
        self._request_check = request_check
        self._via = via
        self._owns_launcher = launcher is None
        self.launcher = launcher or BrowserLauncher(self.config.executable, args=launch_args)
        self.stats = BrowserStats()
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._contexts: dict[tuple[str | None, str | None], _Context] = {}
        self._retiring: set[_Context] = set()
        self._context_lock = asyncio.Lock()
        self._restart_lock = asyncio.Lock()
        self._open = asyncio.Event()  # cleared while the browser restarts
        self._open.set()
        self._active = 0  # renders holding a context
        self._idle = asyncio.Event()
        self._idle.set()
        self._page_blocked: dict[Page, int] = {}
        self._page_refused: dict[Page, list[str]] = {}

    async def __aenter__(self) -> BrowserFetcher:
        await self.launcher.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Launch the browser now (else the first render does)."""
        await self.launcher.browser()

    async def close(self) -> None:
        for ctx in [*self._contexts.values(), *self._retiring]:
            await self._close_context(ctx)
        self._contexts.clear()
        self._retiring.clear()
        if self._owns_launcher:
            await self.launcher.close()

    def pids(self) -> list[int]:
        """The browser's processes (for the memory ceiling)."""
        return self.launcher.pids()

    def memory_bytes(self) -> int:
        return self.launcher.memory_bytes()

    # -- one render ------------------------------------------------------------------------------

    async def render(
        self,
        url: str,
        plan: RenderPlan | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        proxy: str | None = None,
        session: str | None = None,
        want_cookies: bool = False,
    ) -> Rendered:
        """Render ``url``; a ``FetchError`` (``RenderTimeout``, ``BrowserCrashed``, ...) if not.

        ``cookies`` (name to value, for ``url``) join the context's jar before navigation;
        ``proxy`` (``http://user:pass@host:port``, ``socks5://...``) and ``session`` choose the
        context; ``headers`` go with every request of this page. ``want_cookies``: the context's
        cookies for the page come back in ``Rendered.cookies``.
        """
        plan = plan or RenderPlan()
        timeout = plan.timeout or self.config.render_timeout
        started = time.monotonic()
        generation = 0
        async with self._slots:
            await self._open.wait()
            ctx = await self._lease((proxy, session), proxy)
            generation = ctx.generation
            try:
                async with asyncio.timeout(timeout):
                    rendered = await self._render_in(ctx, url, plan, headers, cookies, want_cookies)
            except Exception as exc:
                failure = self._failure(exc, url, timeout)
                self.stats.failures[failure.reason] += 1
                if isinstance(failure, BrowserCrashed | RenderTimeout | RenderError):
                    log.info("render of %s failed: %s", url, failure)
                raise failure from exc
            finally:
                await self._release(ctx)
        rendered.elapsed = time.monotonic() - started
        self.stats.renders += 1
        await self._check_memory(generation)
        return rendered

    async def _render_in(
        self,
        ctx: _Context,
        url: str,
        plan: RenderPlan,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        want_cookies: bool = False,
    ) -> Rendered:
        if cookies:
            await ctx.context.add_cookies([{"name": k, "value": v, "url": url} for k, v in cookies.items()])
        page = await ctx.context.new_page()
        self._page_blocked[page] = 0
        refused: list[str] = []
        self._page_refused[page] = refused
        try:
            # Playwright's own timeouts stay under the render's deadline, which asyncio enforces.
            page.set_default_timeout((plan.timeout or self.config.render_timeout) * 1000)
            if headers:
                await page.set_extra_http_headers(dict(headers))
            watch = NetworkWatch(page)
            wait_until = plan.load_state or ("domcontentloaded" if plan.wait_for else "load")
            response = await page.goto(url, wait_until=wait_until)  # type: ignore[arg-type]
            if plan.wait_for and not plan.load_state:
                await page.locator(plan.wait_for).first.wait_for(state="attached")
            results: dict[str, Any] = {}
            await run_steps(page, plan.actions, watch, results)
            html = await page.content()
            rendered = Rendered(
                url=page.url,
                status=response.status if response is not None else 200,
                headers=await _headers(response),
                body=html.encode("utf-8", "surrogatepass"),
                results=results,
            )
            if plan.screenshot:
                rendered.screenshot = await page.screenshot(full_page=True, type="png")
            if plan.pdf:
                rendered.pdf = await page.pdf()
            rendered.blocked = self._page_blocked.get(page, 0)
            rendered.refused = refused
            if want_cookies:
                rendered.cookies = [dict(c) for c in await ctx.context.cookies(list({url, page.url}))]
            return rendered
        finally:
            self._page_blocked.pop(page, None)
            self._page_refused.pop(page, None)
            await self._close_page(ctx, page)

    def _failure(self, exc: BaseException, url: str, timeout: float) -> FetchError:
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        if isinstance(exc, TimeoutError | PlaywrightTimeout):
            return RenderTimeout(f"the render passed its deadline of {timeout:g} s", url)
        if isinstance(exc, FetchError):
            return exc
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        browser = self.launcher._browser
        if browser is None or not browser.is_connected() or "has been closed" in text or "crashed" in text:
            return BrowserCrashed(f"the browser or the page died: {text}", url)
        if "net::ERR_CERT" in text or "net::ERR_SSL" in text:
            return TLSError(text, url)
        if "net::ERR_TIMED_OUT" in text:
            return FetchTimeout(text, url)
        if "net::ERR_" in text and "net::ERR_ABORTED" not in text:
            return ConnectError(text, url)
        if "Download is starting" in text or "net::ERR_ABORTED" in text:
            return RenderError(f"not a page: the browser downloads it ({text})", url)
        return RenderError(text, url)

    # -- contexts and pages ----------------------------------------------------------------------

    async def _lease(self, key: tuple[str | None, str | None], proxy: str | None) -> _Context:
        browser = await self.launcher.browser()
        async with self._context_lock:
            generation = self.launcher.generation
            ctx = self._contexts.get(key)
            fresh = ctx is None or ctx.generation != generation
            if ctx is None or ctx.generation != generation:
                ctx = _Context(key, await self._new_context(browser, proxy), generation)
                self._contexts[key] = ctx
                self.stats.contexts += 1
            ctx.in_flight += 1
            ctx.served += 1
            ctx.last_used = time.monotonic()
            if fresh:
                # After the lease is counted: the new context is in use, never the one trimmed.
                await self._trim_contexts()
            if ctx.served >= self.config.context_pages:
                # Its last page: the next render of this key gets a fresh context.
                ctx.retired = True
                del self._contexts[key]
                self._retiring.add(ctx)
            self._active += 1
            self._idle.clear()
            return ctx

    async def _new_context(self, browser: Browser, proxy: str | None) -> BrowserContext:
        width, height = self.config.viewport
        proxy = proxy or self._via
        context = await browser.new_context(
            proxy=_proxy_settings(proxy) if proxy else None,  # type: ignore[arg-type]
            user_agent=self.config.user_agent,
            viewport={"width": width, "height": height},
            # A service worker's requests would pass around the blocking route below.
            service_workers="block",
            accept_downloads=False,
        )
        if self.config.block_resources or self._request_check is not None:
            await context.route("**/*", self._route)
        if self._request_check is not None:
            await context.route_web_socket("**/*", self._route_web_socket)
        return context

    async def _route(self, route: Route) -> None:
        request = route.request
        kind = request.resource_type
        with contextlib.suppress(Exception):  # the page may be closing: nothing to answer then
            if kind in self.config.block_resources:
                self.stats.blocked[kind] += 1
                with contextlib.suppress(Exception):  # a worker's request has no page
                    page = request.frame.page
                    if page in self._page_blocked:
                        self._page_blocked[page] += 1
                await route.abort("blockedbyclient")
                return
            check = self._request_check
            why = None if check is None else await check(request.url)
            if why is not None:
                self.stats.refused += 1
                with contextlib.suppress(Exception):  # a worker's request has no page
                    self._page_refused.get(request.frame.page, []).append(request.url)
                log.info("browser: refused %s (%s)", request.url, why)
                await route.abort("addressunreachable")
            else:
                await route.continue_()

    async def _route_web_socket(self, socket: WebSocketRoute) -> None:
        check = self._request_check
        assert check is not None
        why = await check(socket.url)
        if why is None:
            socket.connect_to_server()
            return
        self.stats.refused += 1
        log.info("browser: refused the WebSocket %s (%s)", socket.url, why)
        with contextlib.suppress(Exception):
            await socket.close(code=1008, reason="refused")

    async def _trim_contexts(self) -> None:
        """Close the least recently used idle contexts beyond ``max_contexts``."""
        idle = sorted((c for c in self._contexts.values() if c.in_flight == 0), key=lambda c: c.last_used)
        for ctx in idle[: max(0, len(self._contexts) - self.config.max_contexts)]:
            del self._contexts[ctx.key]
            await self._close_context(ctx)

    async def _release(self, ctx: _Context) -> None:
        ctx.in_flight -= 1
        self._active -= 1
        if self._active == 0:
            self._idle.set()
        if ctx.retired and ctx.in_flight == 0:
            self._retiring.discard(ctx)
            await self._close_context(ctx)

    async def _close_page(self, ctx: _Context, page: Page) -> None:
        try:
            await asyncio.wait_for(page.close(), CLOSE_GRACE)
        except Exception:
            # A page that will not close (a hung renderer): retire its context with it.
            log.warning("browser: a page would not close; its context is retired")
            if not ctx.retired:
                ctx.retired = True
                if self._contexts.get(ctx.key) is ctx:
                    del self._contexts[ctx.key]
                self._retiring.add(ctx)

    async def _close_context(self, ctx: _Context) -> None:
        if ctx.generation != self.launcher.generation:
            return  # closed with its browser
        try:
            await asyncio.wait_for(ctx.context.close(), CLOSE_GRACE)
        except Exception:
            log.warning("browser: a context would not close; restarting the browser")
            asyncio.get_running_loop().create_task(self._restart("a context would not close", ctx.generation))

    # -- restarts --------------------------------------------------------------------------------

    async def _check_memory(self, generation: int) -> None:
        limit = self.config.max_memory_mb * 1024 * 1024
        if limit and self.launcher.memory_bytes() > limit:
            used = self.launcher.memory_bytes() // (1024 * 1024)
            await self._restart(f"memory: {used} MiB, above browser_max_memory_mb", generation)

    async def _restart(self, reason: str, generation: int) -> None:
        """Restart the browser of ``generation`` once the renders in flight are done."""
        async with self._restart_lock:
            if generation != self.launcher.generation:
                return  # restarted already (or crashed and relaunched)
            self._open.clear()
            try:
                await self._idle.wait()
                self._contexts.clear()
                self._retiring.clear()
                await self.launcher.restart(reason)
                self.stats.restarts[reason.split(":", 1)[0]] += 1
            finally:
                self._open.set()


async def _headers(response: Any) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if response is not None:
        pairs = [(h["name"], h["value"]) for h in await response.headers_array()]
    kept = [(k, v) for k, v in pairs if k.lower() not in _STALE_HEADERS]
    return [*kept, ("Content-Type", "text/html; charset=utf-8")]


def _proxy_settings(proxy: str) -> dict[str, str]:
    """Playwright's proxy settings from a URL; credentials apart, as Chromium needs them."""
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if not parts.hostname:
        raise ConfigError(f"not a proxy URL: {proxy!r}")
    server = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    settings = {"server": server}
    if parts.username:
        settings["username"] = unquote(parts.username)
        settings["password"] = unquote(parts.password or "")
    return settings
