"""A small real HTTP server for one test, built from the routes the test gives it.

The shared test site answers the same way for every test; robots.txt, sitemaps and TLS tests
need a server whose robots.txt (or certificate) is what that one test says. ``serve(routes)``
runs an aiohttp app on 127.0.0.1 (or another loopback address: 127.0.0.2 is another host to a
crawl) in a thread and records every request that reached it (``hits``: arrival time on
``time.monotonic()``, Host header, path with query, headers).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import web

__all__ = ["Hit", "Server", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Hit:
    time: float
    host: str
    path_qs: str
    headers: dict[str, str]
    remote: str = ""  # the address the request came from


class Server:
    """A running server: ``base`` (``http://127.0.0.1:PORT``), ``url(path)``, ``hits``."""

    def __init__(
        self,
        routes: Sequence[web.RouteDef],
        ssl_context: ssl.SSLContext | None = None,
        address: str = "127.0.0.1",
        also: Sequence[str] = (),
    ) -> None:
        self._routes = routes
        self.address = address
        self.also = tuple(also)  # more loopback addresses served on the same port: more hosts
        self._ssl = ssl_context
        self.port = 0
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="misbehaving-server", daemon=True)

    @property
    def base(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self.address}:{self.port}"

    def url(self, path: str, host: str | None = None) -> str:
        scheme = "https" if self._ssl else "http"
        return f"{scheme}://{host or self.address}:{self.port}{path}"

    def hits(self, path: str | None = None) -> list[Hit]:
        """Requests that arrived, in order; only those whose path (without query) is ``path``."""
        with self._lock:
            snapshot = list(self._hits)
        return [h for h in snapshot if path is None or h.path_qs.partition("?")[0] == path]

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        with self._lock:
            self._hits.append(
                Hit(
                    time.monotonic(),
                    request.host,
                    request.path_qs,
                    dict(request.headers),
                    request.remote or "",
                )
            )
        return await handler(request)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application(middlewares=[self._record])
        app.add_routes(self._routes)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.address, 0, ssl_context=self._ssl)
            await site.start()
            self.port = int(runner.addresses[0][1])
            for other in self.also:
                await web.TCPSite(runner, other, self.port, ssl_context=self._ssl).start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError("the test server did not start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@contextmanager
def serve(
    routes: Sequence[web.RouteDef],
    ssl_context: ssl.SSLContext | None = None,
    address: str = "127.0.0.1",
    also: Sequence[str] = (),
) -> Iterator[Server]:
    """Serve ``routes`` on ``address`` (another loopback address, 127.0.0.2, is another host), and
    on each address of ``also`` with the same port."""
    server = Server(routes, ssl_context, address, also)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def page(title: str, links: Sequence[str] = ()) -> web.Response:
    """A small HTML page with ``<h1>title</h1>`` and a link to each of ``links``."""
    anchors = "".join(f'<a href="{href}">{href}</a>' for href in links)
    return web.Response(
        text=(
            f"<!DOCTYPE html><html><head><title>{title}</title></head>"
            f"<body><h1>{title}</h1>{anchors}</body></html>"
        ),
        content_type="text/html",
    )
