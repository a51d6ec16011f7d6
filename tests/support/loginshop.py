"""A shop behind a login form, for spiders written the Scrapy way.

``/login`` serves a form with a CSRF token in a hidden input, bound to a session cookie that the
same answer sets; ``POST /login`` accepts the right token, user and button only, marks the session
logged in and redirects to ``/catalogue``. The catalogue (``?page=N``), the product pages
(XPath-friendly: a table of details, a ``data-api`` attribute) and the JSON stock API
(``POST /api/stock`` with ``{"id": N}``) answer a logged-in session only; anyone else is sent
to ``/login``. ``log`` records the login attempts and every refusal.
"""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from support.serverthread import ServerThread

USER, PASSWORD = "scrapy", "s3cret"
PAGES, PER_PAGE = 3, 5


def product_ids() -> list[int]:
    return list(range(1, PAGES * PER_PAGE + 1))


def expected_item(base: str, pid: int) -> dict[str, object]:
    return {
        "url": f"{base}/product/{pid}",
        "name": f"Product {pid}",
        "sku": f"SKU-{pid:04d}",
        "price": f"{pid * 3}.50",
        "stock": pid % 4,
    }


class LoginShop(ServerThread):
    def __init__(self, busy_logins: int = 0) -> None:
        super().__init__(what="the login shop", thread_name="login-shop")
        self.logged_in: set[str] = set()
        self.log: list[str] = []
        self.busy_logins = busy_logins  # the first login posts answered 503: retried, and logged

    def _token(self, sid: str) -> str:
        return hashlib.sha256(f"csrf:{sid}".encode()).hexdigest()[:32]

    def _session(self, request: web.Request) -> str | None:
        sid = request.cookies.get("sid")
        return sid if sid in self.logged_in else None

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/login", self.login_page)
        app.router.add_post("/login", self.login)
        app.router.add_get("/catalogue", self.catalogue)
        app.router.add_get("/product/{pid}", self.product)
        app.router.add_post("/api/stock", self.stock)
        return app

    async def login_page(self, request: web.Request) -> web.Response:
        sid = request.cookies.get("sid") or secrets.token_hex(8)
        html = f"""<!doctype html><html><head><title>Log in</title></head><body>
        <form id="search" action="/search" method="get"><input name="q"><button>Search</button></form>
        <form id="login" action="/login" method="post">
          <input type="hidden" name="csrf_token" value="{self._token(sid)}">
          <input type="text" name="username"> <input type="password" name="password">
          <input type="checkbox" name="remember" value="yes" checked>
          <select name="lang"><option value="en" selected>English</option>
            <option value="fr">Français</option></select>
          <button type="submit" name="action" value="login">Log in</button>
          <button type="submit" name="action" value="register">Register</button>
        </form></body></html>"""
        response = web.Response(text=html, content_type="text/html")
        response.set_cookie("sid", sid, httponly=True)
        return response

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if self.busy_logins > 0:
            self.busy_logins -= 1
            return web.Response(status=503, text="busy, try again")
        sid = request.cookies.get("sid", "")
        ok = (
            sid
            and form.get("csrf_token") == self._token(sid)
            and form.get("username") == USER
            and form.get("password") == PASSWORD
            and form.get("action") == "login"
            and form.get("remember") == "yes"
            and form.get("lang") == "en"
        )
        self.log.append(f"login {'ok' if ok else 'refused'} {sorted(form.items())}")
        if not ok:
            return web.Response(status=403, text="bad login")
        self.logged_in.add(sid)
        raise web.HTTPFound("/catalogue")

    def _refuse(self, request: web.Request) -> web.Response:
        self.log.append(f"refused {request.method} {request.path_qs}")
        raise web.HTTPFound("/login")

    async def catalogue(self, request: web.Request) -> web.Response:
        if self._session(request) is None:
            return self._refuse(request)
        page = int(request.query.get("page", "1"))
        first = (page - 1) * PER_PAGE + 1
        rows = "".join(
            f'<li><a class="product" href="/product/{pid}">Product {pid}</a></li>'
            for pid in range(first, first + PER_PAGE)
        )
        nxt = f'<li class="next"><a href="/catalogue?page={page + 1}">next</a></li>' if page < PAGES else ""
        html = f"<html><body><h1>Catalogue</h1><ul>{rows}</ul><ul class='pager'>{nxt}</ul></body></html>"
        return web.Response(text=html, content_type="text/html")

    async def product(self, request: web.Request) -> web.Response:
        if self._session(request) is None:
            return self._refuse(request)
        pid = int(request.match_info["pid"])
        html = f"""<html><body><div id="app" data-api="/api/stock">
        <h1>Product {pid}</h1>
        <table class="details"><tr><th>SKU</th><td>SKU-{pid:04d}</td></tr>
        <tr><th>Colour</th><td>red</td></tr></table>
        <p class="price">£{pid * 3}.50</p></div></body></html>"""
        return web.Response(text=html, content_type="text/html")

    async def stock(self, request: web.Request) -> web.Response:
        if self._session(request) is None:
            return self._refuse(request)
        if request.content_type != "application/json":
            return web.Response(status=415, text="JSON only")
        pid = int((await request.json())["id"])
        return web.json_response({"id": pid, "stock": pid % 4})
