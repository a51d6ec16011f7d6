"""The site and spider of ``tests/fixtures/old_layout_job``: a job directory made before the regrouping.

Shared by the script that made the fixture (run with the old code) and by the test that resumes
it with today's code, so that both crawl exactly the same pages. The fixture's pending requests
name this site's address, so it is served on a fixed port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web

from crawlkit import Request, Response, Spider

HOST = "127.0.0.1"
PORT = 47613
BASE = f"http://{HOST}:{PORT}"
PAGES = 30


async def _index(request: web.Request) -> web.Response:
    links = "".join(f'<a class="p" href="/p/{i}">{i}</a>' for i in range(PAGES))
    return web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")


async def _page(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    # Each page also links the next one: links the old crawl pushed must stay known as seen.
    body = f'<html><body><h1>{n}</h1><a class="p" href="/p/{(n + 1) % PAGES}">next</a></body></html>'
    return web.Response(text=body, content_type="text/html")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _index)
    app.router.add_get("/p/{n:\\d+}", _page)
    return app


class OldLayoutSpider(Spider):
    """One item per page ``/p/N``; follows every ``a.p`` link."""

    name = "old_layout"

    def start_requests(self) -> Iterator[Request]:
        yield Request(BASE + "/")

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a.p", callback=self.parse_page)

    def parse_page(self, response: Response) -> Iterator[Any]:
        h1 = response.css_first("h1")
        assert h1 is not None
        yield {"n": int(h1.text()), "url": response.url}
        yield from response.follow_all(css="a.p", callback=self.parse_page)
