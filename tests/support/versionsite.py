"""A site with two versions, for the HTTP cache and re-crawl tests.

``/`` lists the pages of the current version in ``<a class="page">``; ``/p/{n}`` is page n, one
item: ``<h1>`` title and ``<span class="price">``, and padding so that bodies weigh something.
Page n sends an ``ETag`` when n % 3 == 0, a ``Last-Modified`` when n % 3 == 1, neither when
n % 3 == 2, and answers a matching ``If-None-Match`` / ``If-Modified-Since`` with 304, as a
server should. ``switch()`` moves to version 2: ``CHANGED`` pages change, ``GONE`` pages answer
404, ``NEW`` pages appear (and the index lists them). ``/ban`` answers 403, ``/err`` 500.

``/sitemap.xml`` lists the current version's pages, each with a ``<lastmod>`` (its version's
date; the changed and new pages of version 2: when ``switch()`` was called), except the pages
``n % 5 == 0`` (``NO_LASTMOD``), listed without one.

Every request is recorded (path, headers, status, body bytes sent): ``requests``, ``sent_bytes``.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from aiohttp import web

from .serverthread import ServerThread

PAGES = 30
CHANGED = (6, 7, 8, 12)
GONE = (3, 4, 5)
NEW = (30, 31, 32)
NO_LASTMOD = 5  # pages n % NO_LASTMOD == 0 are listed in the sitemap without a <lastmod>
_PADDING = "<p>" + "lorem ipsum dolor sit amet " * 200 + "</p>"
_V1_DATE = "Wed, 01 Jan 2025 00:00:00 GMT"
_V2_DATE = "Thu, 01 May 2025 00:00:00 GMT"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    status: int
    sent: int


@dataclass
class VersionState:
    version: int = 1
    switched_at: float = 0.0
    requests: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pages(self) -> list[int]:
        if self.version == 1:
            return list(range(PAGES))
        return [n for n in range(PAGES) if n not in GONE] + list(NEW)

    def changed(self, n: int) -> bool:
        return self.version == 2 and n in CHANGED

    def hits(self, prefix: str = "/") -> list[Hit]:
        with self.lock:
            return [hit for hit in self.requests if hit.path.startswith(prefix)]

    @property
    def sent_bytes(self) -> int:
        with self.lock:
            return sum(hit.sent for hit in self.requests)


def item_of(n: int, version: int) -> dict[str, object]:
    """The item page n yields in ``version`` (what the test spider writes)."""
    changed = version == 2 and n in CHANGED
    return {
        "n": n,
        "title": f"Page {n}" + (" (new edition)" if changed else ""),
        "price": n * 10 + (5 if changed else 0),
    }


class VersionSite(ServerThread):
    def __init__(self) -> None:
        super().__init__(what="the versioned site", thread_name="versionsite")
        self.state = VersionState()

    def switch(self) -> None:
        self.state.switched_at = time.time()
        self.state.version = 2

    def make_app(self) -> web.Application:
        state = self.state

        def record(request: web.Request, response: web.Response) -> web.Response:
            body = response.body
            sent = len(body) if isinstance(body, bytes) else 0
            with state.lock:
                state.requests.append(Hit(request.path_qs, dict(request.headers), response.status, sent))
            return response

        async def index(request: web.Request) -> web.Response:
            links = "".join(f'<a class="page" href="/p/{n}">page {n}</a>' for n in state.pages())
            return record(
                request, web.Response(text=f"<html><body>{links}</body></html>", content_type="text/html")
            )

        async def page(request: web.Request) -> web.Response:
            n = int(request.match_info["n"])
            if n not in state.pages():
                return record(request, web.Response(status=404, text="gone"))
            item = item_of(n, state.version)
            headers: dict[str, str] = {}
            changed = state.changed(n)
            if n % 3 == 0:
                etag = f'"p{n}-{2 if changed else 1}"'
                headers["ETag"] = etag
                if request.headers.get("If-None-Match") == etag:
                    return record(request, web.Response(status=304, headers=headers))
            elif n % 3 == 1:
                modified = _V2_DATE if changed else _V1_DATE
                headers["Last-Modified"] = modified
                since = request.if_modified_since
                if since is not None and since >= parsedate_to_datetime(modified):
                    return record(request, web.Response(status=304, headers=headers))
            html = (
                f'<html><body><h1>{item["title"]}</h1><span class="price">{item["price"]}</span>'
                f"{_PADDING}</body></html>"
            )
            return record(request, web.Response(text=html, content_type="text/html", headers=headers))

        async def sitemap(request: web.Request) -> web.Response:
            switched = datetime.datetime.fromtimestamp(state.switched_at, datetime.UTC).isoformat()
            entries = []
            for n in state.pages():
                fresh = state.version == 2 and (n in CHANGED or n in NEW)
                lastmod = (
                    "" if n % NO_LASTMOD == 0 else f"<lastmod>{switched if fresh else '2025-01-01'}</lastmod>"
                )
                entries.append(f"<url><loc>{request.url.origin()}/p/{n}</loc>{lastmod}</url>")
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                + "".join(entries)
                + "</urlset>"
            )
            return record(request, web.Response(text=xml, content_type="application/xml"))

        async def ban(request: web.Request) -> web.Response:
            return record(
                request, web.Response(status=403, text="<html>blocked</html>", content_type="text/html")
            )

        async def err(request: web.Request) -> web.Response:
            return record(
                request, web.Response(status=500, text="<html>oops</html>", content_type="text/html")
            )

        async def robots(request: web.Request) -> web.Response:
            return record(request, web.Response(text="User-agent: *\nDisallow: /private\n"))

        app = web.Application()
        app.router.add_get("/", index)
        app.router.add_get("/p/{n}", page)
        app.router.add_get("/sitemap.xml", sitemap)
        app.router.add_get("/ban", ban)
        app.router.add_get("/err", err)
        app.router.add_get("/robots.txt", robots)
        return app
