"""Helpers for testing spiders: run a callback on a saved page or a live one, and check its output.

A callback runs here exactly as in a crawl's parser worker: the same body decoding, the same
filtering of yielded requests (offsite, scheme, bad callback names), the same ``item_type``
validation, and ``self.state`` unavailable, as it is in a worker. Example::

    from crawlkit.testing import run_callback

    def test_parse_book():
        result = run_callback(Books, Path("tests/pages/book.html"),
                              url="https://shop.example/book/1", callback="parse_book")
        assert result.records == [{"url": "https://shop.example/book/1", "title": "Dune"}]

To test against pages served for real, serve them with :func:`fixture_server` and fetch them with
:func:`fetch_response`, which goes through crawlkit's own fetcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .errors import ParseError
from .http import Request, Response, decode_body
from .parsing import item_to_json, run_callback_as_worker
from .settings import Settings, load_settings
from .spider import Spider, load_spider_file

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "CallbackResult",
    "fetch_response",
    "fetch_response_async",
    "fixture_server",
    "load_spider",
    "response_from_html",
    "run_callback",
]

DEFAULT_URL = "http://example.com/"


@dataclass
class CallbackResult:
    """What one callback yielded.

    ``items`` are the objects as yielded (pydantic models when the spider has an ``item_type``);
    ``records`` are the same items as they would be written (plain JSON values); ``requests`` are
    the requests that the crawl would queue; ``filtered`` counts the requests it would drop, by
    reason (``offsite``, ``scheme``, ...); ``invalid`` says why each item that failed the
    spider's ``item_type`` did.
    """

    items: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    filtered: dict[str, int] = field(default_factory=dict)
    invalid: list[str] = field(default_factory=list)
    close_reason: str | None = None

    @property
    def records(self) -> list[Any]:
        """The items as the output would hold them."""
        return [orjson.loads(item_to_json(item)) for item in self.items]

    @property
    def urls(self) -> list[str]:
        """The URLs of the requests, in the order they were yielded."""
        return [r.url for r in self.requests]


def response_from_html(
    html: str | bytes,
    url: str = DEFAULT_URL,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    request: Request | None = None,
) -> Response:
    """A response holding ``html``: text is sent as UTF-8, bytes are decoded as a page would be."""
    if isinstance(html, str):
        body = html.encode()
        content_type = "text/html; charset=utf-8"
    else:
        body = html
        content_type = "text/html"
    merged = {"Content-Type": content_type, **(headers or {})}
    return Response(url, status, merged, body, request or Request(url))


def _source_response(source: str | bytes | Path | Response, url: str) -> Response:
    if isinstance(source, Response):
        return source
    if isinstance(source, Path):
        return response_from_html(source.read_bytes(), url)
    if isinstance(source, str) and "<" not in source:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{source!r} is neither HTML nor an existing file")
        return response_from_html(path.read_bytes(), url)
    return response_from_html(source, url)


def run_callback(
    spider_cls: type[Spider],
    source: str | bytes | Path | Response,
    *,
    url: str | None = None,
    callback: str = "parse",
    meta: dict[str, Any] | None = None,
    cb_kwargs: dict[str, Any] | None = None,
    **spider_kwargs: Any,
) -> CallbackResult:
    """Run one callback of ``spider_cls`` on one page and return what it yielded.

    ``source`` is the page: HTML text, bytes, a ``Path`` to a saved page (a string without
    ``<`` is taken as a path too), or a :class:`Response` (from :func:`fetch_response`).
    ``url`` is where the page is taken to come from (it resolves relative links and decides
    what is offsite). Keyword arguments become spider attributes, as ``-a`` does. A callback
    that raises fails with :class:`~crawlkit.ParseError` carrying its traceback.
    """
    response = _source_response(source, url or DEFAULT_URL)
    if url is not None and isinstance(source, Response):
        response = Response(url, response.status, response.headers.items(), response.body, response.request)
    request = response.request.replace(
        url=response.url,
        callback=callback,
        meta=meta if meta is not None else dict(response.request.meta),
        cb_kwargs=cb_kwargs or {},
    )
    response = Response(response.url, response.status, response.headers.items(), response.body, request)
    spider = spider_cls(**spider_kwargs)
    outcome = run_callback_as_worker(spider, response, request)
    if outcome.error is not None:
        detail = outcome.error.worker_traceback
        raise ParseError(f"{outcome.error}\n{detail}".rstrip(), response.url, detail)
    return CallbackResult(
        items=list(outcome.items),
        requests=list(outcome.requests),
        filtered=dict(outcome.filtered or {}),
        invalid=list(outcome.invalid or []),
        close_reason=outcome.close_reason,
    )


async def fetch_response_async(
    url: str,
    *,
    settings: Settings | Mapping[str, Any] | None = None,
    request: Request | None = None,
) -> Response:
    """Fetch ``url`` through crawlkit's fetcher and decode it as a parser worker would.

    Any status comes back as a response; a request that gets none raises a
    :class:`~crawlkit.FetchError`. A ``request`` with ``render=True`` is rendered in headless
    Chromium (launched for it, and closed), as a crawl renders it: the response is the rendered
    DOM, ``response.meta["render"]`` the results of its ``evaluate`` steps.
    """
    from .fetch import Fetcher, ImpersonateFetcher

    resolved = settings if isinstance(settings, Settings) else load_settings(overrides=settings)
    # Read even a binary body (an image, a PDF): a test or `crawlkit fetch` wants to see it.
    request = request or Request(url, meta={"allow_binary": True})
    if request.render:
        return await _render_response(request, resolved)
    client = ImpersonateFetcher if resolved.fetcher == "impersonate" else Fetcher
    async with client(resolved) as fetcher:
        fetched = await fetcher.fetch(request)
    if fetched.hold is not None:
        fetched.hold.release()
    body = decode_body(fetched.body, fetched.content_encoding, resolved.max_response_size or (1 << 62))
    return Response(fetched.url, fetched.status, fetched.headers, body, request)


async def _render_response(request: Request, settings: Settings) -> Response:
    from .fetch import BrowserConfig, BrowserFetcher
    from .http import RenderPlan

    config = BrowserConfig.from_settings(settings, user_agent=settings.user_agent, concurrency=1)
    async with BrowserFetcher(config) as browser:
        rendered = await browser.render(
            request.url,
            RenderPlan.from_data(request.render_plan or {}),
            headers=request.headers,
            cookies=request.cookies,
        )
    request.meta = {**request.meta, "render": rendered.results, "render_blocked": rendered.blocked}
    return Response(rendered.url, rendered.status, rendered.headers, rendered.body, request)


def fetch_response(
    url: str,
    *,
    settings: Settings | Mapping[str, Any] | None = None,
    request: Request | None = None,
) -> Response:
    """:func:`fetch_response_async`, for code that runs no event loop (a plain test)."""
    return asyncio.run(fetch_response_async(url, settings=settings, request=request))


def load_spider(path: str | Path) -> type[Spider]:
    """The spider class defined in a file (as ``crawlkit runspider`` loads it)."""
    return load_spider_file(Path(path))


@contextlib.contextmanager
def fixture_server(pages: Path | Mapping[str, str | bytes] | web.Application) -> Iterator[str]:
    """Serve test pages on 127.0.0.1 while the block runs; yields the base URL (no trailing /).

    ``pages`` is a folder (served as files, ``.html`` as HTML), a mapping of path to page, or an
    ``aiohttp.web.Application`` for full control. The server runs in a thread of its own.
    """
    from aiohttp import web

    app = pages if isinstance(pages, web.Application) else _static_app(pages)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            state["port"] = runner.addresses[0][1]
            state["stop"] = stop = asyncio.Event()
            state["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop.wait()
        finally:
            await runner.cleanup()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="crawlkit-fixture-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "port" not in state:
        raise RuntimeError("the fixture server did not start") from state.get("error")
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(30)


def _static_app(pages: Path | Mapping[str, str | bytes]) -> web.Application:
    from aiohttp import web

    if isinstance(pages, Path):
        root = pages.resolve()

        def lookup(path: str) -> bytes | None:
            target = (root / path.lstrip("/")).resolve()
            if target.is_dir():
                target = target / "index.html"
            if root not in target.parents or not target.is_file():
                return None
            return target.read_bytes()

    else:
        table = {k if k.startswith("/") else "/" + k: v for k, v in pages.items()}

        def lookup(path: str) -> bytes | None:
            found = table.get(path)
            return found.encode() if isinstance(found, str) else found

    async def handle(request: web.Request) -> web.Response:
        body = lookup(request.path)
        if body is None:
            return web.Response(status=404, text="not found")
        ctype = "text/html" if request.path.endswith((".html", "/")) or "." not in request.path else None
        return web.Response(body=body, content_type=ctype or "application/octet-stream")

    app = web.Application()
    app.router.add_get("/{path:.*}", handle)
    return app
