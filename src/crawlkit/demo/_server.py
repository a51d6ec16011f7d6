"""Serving a generated shop on 127.0.0.1: the aiohttp application, ``running()``, ``serve()`` and the
``python -m crawlkit.demo`` command. It only ever binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol

from aiohttp import web

from ._bookshop import generate
from ._page import NOT_FOUND, Page

__all__ = ["LOCAL_HOST", "ServedSite", "main", "make_app", "running", "serve"]

LOCAL_HOST = "127.0.0.1"


class ServedSite(Protocol):
    """A generated site as the server needs it: every page by path (any other path is a 404)."""

    @property
    def pages(self) -> Mapping[str, Page]: ...


def make_app(site: ServedSite) -> web.Application:
    """An aiohttp application answering from ``site.pages`` (404 for any other path).

    Compression is negotiated per request, preferring gzip, so crawls exercise decompression.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        page = site.pages.get(request.path, NOT_FOUND)
        headers = {"Content-Type": page.content_type}
        if page.location is not None:
            headers["Location"] = page.location
        response = web.Response(status=page.status, body=page.body, headers=headers)
        accepted = request.headers.get("Accept-Encoding", "").lower()
        if "gzip" in accepted:
            response.enable_compression(web.ContentCoding.gzip)
        elif "deflate" in accepted:
            response.enable_compression(web.ContentCoding.deflate)
        return response

    app = web.Application()
    app.router.add_get("/{path:.*}", handle)
    return app


def _check_host(host: str) -> None:
    if host != LOCAL_HOST:
        raise ValueError(f"the demo site only binds {LOCAL_HOST}, not {host!r}")


@contextlib.asynccontextmanager
async def running(site: ServedSite, host: str = LOCAL_HOST, port: int = 0) -> AsyncIterator[str]:
    """Serve ``site`` while the block runs; yields its root URL (``http://127.0.0.1:PORT/``)."""
    _check_host(host)
    runner = web.AppRunner(make_app(site), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}/"
    finally:
        await runner.cleanup()


async def _serve_until_signalled(host: str, port: int, n_books: int, seed: int) -> None:
    site = generate(n_books, seed)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    async with running(site, host, port) as url:
        for sig in signals:
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # event loops without signal support (Windows)
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        print(f"serving {url}", flush=True)
        try:
            await stop.wait()
        finally:
            for sig in signals:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)


def serve(host: str = LOCAL_HOST, port: int = 0, n_books: int = 600, seed: int = 7) -> None:
    """Serve a freshly generated site until SIGINT or SIGTERM; prints ``serving URL`` once listening."""
    _check_host(host)
    asyncio.run(_serve_until_signalled(host, port, n_books, seed))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crawlkit.demo [--port N] [--books N] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m crawlkit.demo", description="Serve the generated demo bookshop on 127.0.0.1."
    )
    parser.add_argument("--host", default=LOCAL_HOST, help=f"only {LOCAL_HOST} is accepted")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default: 8080)")
    parser.add_argument("--books", type=int, default=600, help="number of books (default: 600)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    args = parser.parse_args(argv)
    if args.host != LOCAL_HOST:
        parser.error(f"--host: the demo site only binds {LOCAL_HOST}, not {args.host!r}")
    if args.books < 10:
        parser.error("--books must be at least 10")
    try:
        serve(args.host, args.port, args.books, args.seed)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
