"""A shop whose catalogue needs a login and whose products come from a JSON API that needs a key.

``GET /login?user=NAME`` opens a session (cookie ``sid``) and counts the login in ``logins``.
``/catalogue?page=N`` (a session only, else 401) links every product's API URL
(``/api/product/ID``, ``PER_PAGE`` a page), one URL that always answers 500
(``/api/broken/N``) and one that answers 404 (``/api/gone/N``), and the next page. The API
answers a session with the header ``X-Api-Key: API_KEY`` only, else 403. ``/whoami`` answers the
session's user and every cookie it was sent; ``/echo/NAME`` answers its name, for anyone.
``delay`` slows each API answer (seconds), so that a crawl can be interrupted.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

from aiohttp import web

from support.serverthread import ServerThread

API_KEY = "k3y-0f-the-api"
PAGES, PER_PAGE = 3, 6


def product_ids(pages: int = PAGES) -> list[int]:
    return list(range(1, pages * PER_PAGE + 1))


def product(pid: int) -> dict[str, object]:
    return {"id": pid, "name": f"Product {pid}", "price": pid * 2.5}


class ApiShop(ServerThread):
    def __init__(self, pages: int = PAGES, delay: float = 0.0) -> None:
        super().__init__(what="the API shop", thread_name="api-shop")
        self.pages = pages
        self.delay = delay
        self.sessions: dict[str, str] = {}  # sid -> user
        self.logins: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()  # path -> answers

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self.login)
        app.router.add_get("/catalogue", self.catalogue)
        app.router.add_get("/api/product/{pid}", self.api_product)
        app.router.add_get("/api/broken/{n}", self.api_broken)
        app.router.add_get("/api/gone/{n}", self.api_gone)
        app.router.add_get("/whoami", self.whoami)
        app.router.add_get("/echo/{name}", self.echo)
        return app

    def _user(self, request: web.Request) -> str | None:
        self.hits[request.path] += 1
        return self.sessions.get(request.cookies.get("sid", ""))

    async def login(self, request: web.Request) -> web.Response:
        user = request.query["user"]
        self.hits[request.path] += 1
        self.logins[user] += 1
        sid = secrets.token_hex(8)
        self.sessions[sid] = user
        response = web.Response(
            text='<html><a href="/catalogue">catalogue</a></html>', content_type="text/html"
        )
        response.set_cookie("sid", sid, httponly=True)
        return response

    async def catalogue(self, request: web.Request) -> web.Response:
        if self._user(request) is None:
            return web.Response(status=401, text="log in first")
        page = int(request.query.get("page", "1"))
        first = (page - 1) * PER_PAGE + 1
        links = [f'<a class="api" href="/api/product/{pid}">p</a>' for pid in range(first, first + PER_PAGE)]
        links += [
            f'<a class="api" href="/api/broken/{page}">b</a>',
            f'<a class="api" href="/api/gone/{page}">g</a>',
        ]
        if page < self.pages:
            links.append(f'<a class="next" href="/catalogue?page={page + 1}">next</a>')
        return web.Response(text=f"<html><body>{''.join(links)}</body></html>", content_type="text/html")

    async def _api_allowed(self, request: web.Request) -> web.Response | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._user(request) is None:
            return web.Response(status=401, text="log in first")
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=403, text="an API key is needed")
        return None

    async def api_product(self, request: web.Request) -> web.Response:
        refused = await self._api_allowed(request)
        if refused is not None:
            return refused
        return web.json_response(product(int(request.match_info["pid"])))

    async def api_broken(self, request: web.Request) -> web.Response:
        return await self._api_allowed(request) or web.Response(status=500, text="broken")

    async def api_gone(self, request: web.Request) -> web.Response:
        return await self._api_allowed(request) or web.Response(status=404, text="gone")

    async def whoami(self, request: web.Request) -> web.Response:
        return web.json_response({"user": self._user(request), "cookies": dict(request.cookies)})

    async def echo(self, request: web.Request) -> web.Response:
        self.hits[request.path] += 1
        return web.Response(
            text=f"<html><h1>{request.match_info['name']}</h1></html>", content_type="text/html"
        )
