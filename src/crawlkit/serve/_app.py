"""The ``crawlkit serve`` application: its routes, its guards, and running it.

Secure by default. It binds 127.0.0.1 unless told otherwise, and the command refuses any other
address without a token. With a token, every page and API call must carry it: ``Authorization:
Bearer TOKEN``, or once ``?token=TOKEN`` on a page, which sets a cookie (HttpOnly,
SameSite=Strict) for the page's own calls. Without a token, the ``Host`` header must name a
loopback address: a web page elsewhere cannot reach the API through a name that resolves to
127.0.0.1 (DNS rebinding). A POST must be ``application/json`` and, if the browser says where it
comes from (``Origin``), come from the dashboard itself: a form on another site cannot start a
crawl. No endpoint accepts code (see ``_jobs.REFUSED_SETTINGS``).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from ..settings import load_settings
from ._api import BOOK, SETTINGS, SPIDERS_DIR, add_api_routes, json_response
from ._fetchapi import FETCHER, FetchService
from ._jobs import JobBook, JobError
from ._netguard import NetGuard
from ._page import DASHBOARD_HTML, DASHBOARD_JS

if TYPE_CHECKING:
    from ..fetch import BrowserLauncher

__all__ = ["ServeConfig", "is_loopback_host", "make_app", "run_server"]

_COOKIE = "crawlkit_token"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8800
    token: str | None = None
    allow_private: bool = False
    project: Path = Path()
    spiders_dir: Path = Path("spiders")
    fetch_queue: int = 32
    fetch_concurrency: int = 8
    fetch_sessions: int = 256
    fetch_session_idle: float = 600.0


CONFIG = web.AppKey("config", ServeConfig)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _token_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:].strip()
    return request.query.get("token") or request.cookies.get(_COOKIE)


def _refuse(request: web.Request, status: int, message: str) -> web.Response:
    if request.path.startswith("/api/"):
        return json_response({"error": message}, status)
    return web.Response(status=status, text=message)


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    config = request.app[CONFIG]
    if config.token is not None:
        given = _token_of(request)
        if given is None or not hmac.compare_digest(given.encode(), config.token.encode()):
            return _refuse(request, 401, "a token is needed: Authorization: Bearer TOKEN")
    else:
        try:
            host = URL(f"http://{request.host}/").host or ""
        except ValueError:
            host = ""
        if not is_loopback_host(host):
            return _refuse(request, 403, f"this server answers only to a loopback Host, not {request.host!r}")
    if request.method == "POST":
        if request.content_type != "application/json":
            return _refuse(request, 415, "POST a JSON body (Content-Type: application/json)")
        origin = request.headers.get("Origin")
        if origin is not None and origin.partition("://")[2] != request.host:
            return _refuse(request, 403, f"a request from {origin} may not change anything here")
    try:
        response = await handler(request)
    except JobError as exc:
        return json_response({"error": str(exc)}, exc.status)
    if config.token is not None and "token" in request.query and not request.path.startswith("/api/"):
        response.set_cookie(_COOKIE, config.token, httponly=True, samesite="Strict", path="/")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _dashboard(request: web.Request) -> web.Response:
    return web.Response(text=DASHBOARD_HTML, content_type="text/html")


async def _dashboard_js(request: web.Request) -> web.Response:
    return web.Response(text=DASHBOARD_JS, content_type="application/javascript")


async def _status(request: web.Request) -> web.Response:
    return json_response({"fetch": request.app[FETCHER].figures()})


async def _fetch(request: web.Request) -> web.Response:
    return await request.app[FETCHER].handle(request)


def make_app(
    config: ServeConfig, *, net_guard: NetGuard | None = None, browser_launcher: BrowserLauncher | None = None
) -> web.Application:
    """The application. ``net_guard`` and ``browser_launcher`` are for tests: a guard that takes a
    loopback address as public, the session's running browser."""
    app = web.Application(middlewares=[guard], client_max_size=1024 * 1024)
    settings = load_settings(pyproject=config.project / "pyproject.toml")
    app[CONFIG] = config
    app[SETTINGS] = settings
    app[SPIDERS_DIR] = (config.project / config.spiders_dir).resolve()
    app[BOOK] = JobBook(config.project.resolve())
    app[FETCHER] = FetchService(
        settings,
        net_guard or NetGuard(allow_private=config.allow_private),
        queue=config.fetch_queue,
        concurrency=config.fetch_concurrency,
        sessions=config.fetch_sessions,
        session_idle=config.fetch_session_idle,
        browser_launcher=browser_launcher,
    )
    app.router.add_get("/", _dashboard)
    app.router.add_get("/dashboard.js", _dashboard_js)
    app.router.add_get("/api/status", _status)
    app.router.add_get("/api/fetch", _fetch)
    add_api_routes(app)

    async def lifecycle(app: web.Application) -> object:
        await app[FETCHER].start()
        yield
        await app[FETCHER].close()
        app[BOOK].close()  # the crawls keep running: they are not the server's to stop

    app.cleanup_ctx.append(lifecycle)  # type: ignore[arg-type]
    return app


async def _serve(config: ServeConfig) -> None:
    app = make_app(config)
    # Handler cancellation: a client that goes away cancels its fetch and frees its slot.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        print(
            f"crawlkit serve: http://{shown}:{port}/ (Ctrl-C stops it; crawls keep running)",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def run_server(config: ServeConfig) -> int:
    try:
        asyncio.run(_serve(config))
    except OSError as exc:
        print(
            f"crawlkit: cannot serve on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 2
    return 0
