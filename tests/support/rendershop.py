"""A shop that needs a browser: its links and its data are put into the page by script.

- ``/more``: an empty list that a script fills from ``/api/products?list=more&page=N``, and a
  "Load more" button (``button#more``) that loads the next page, disabled while it loads and
  removed after the last one;
- ``/scroll``: the same from ``list=scroll``, loaded by infinite scroll (a page is appended
  when the bottom comes into view, until the last);
- ``/product/N``: an empty ``h1``, price and ``#data`` filled from ``/api/product/N``;
- ``/hang``: a page whose script never arrives: it never finishes loading;
- ``/echo``: the request's headers and cookies, put into the page by script.

Every HTML page also asks for a large image (``/static/big.jpg``) and a web font
(``/static/font.woff2``, used by the page's text), which a browser that blocks them never fetches.
The server's ``log`` holds every path asked for, in order. ``PROXY`` serves any absolute URL
(an HTTP proxy's request line) with a page that says so.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from support.serverthread import ServerThread

PER_PAGE = 10
PAGES = 3  # pages of each list: products 0-29 load by button, 30-59 by scroll
LISTS = {"more": 0, "scroll": PER_PAGE * PAGES}
PRODUCTS = 2 * PER_PAGE * PAGES

_HEAD = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/static/style.css">
<style>@font-face {{ font-family: Shop; src: url(/static/font.woff2) format("woff2"); }}
body {{ font-family: Shop, sans-serif; }}</style></head><body>
<img src="/static/big.jpg?for={title}" width="800" height="600" alt="">
"""

_LIST_JS = """
const list = document.getElementById("products");
let page = 0, loading = false, done = false;
async function more() {
    if (loading || done) return;
    loading = true;
    const button = document.getElementById("more");
    if (button) button.disabled = true;
    const answer = await (await fetch(`/api/products?list=%(name)s&page=${page}`)).json();
    for (const p of answer.items) {
        const li = document.createElement("li");
        li.innerHTML = `<a class="product" href="/product/${p.id}">${p.name}</a>`;
        li.style.height = "120px";
        list.appendChild(li);
    }
    page += 1;
    done = !answer.more;
    loading = false;
    if (button) { button.disabled = false; if (done) button.remove(); }
}
"""

_MORE = (
    _HEAD.format(title="more")
    + """<h1>Load more</h1><ul id="products"></ul><button id="more">Load more</button>
<script>"""
    + _LIST_JS % {"name": "more"}
    + """more(); document.getElementById("more").addEventListener("click", more);</script></body></html>"""
)

_SCROLL = (
    _HEAD.format(title="scroll")
    + """<h1>Scroll</h1><ul id="products"></ul><div id="end" style="height:10px"></div>
<script>"""
    + _LIST_JS % {"name": "scroll"}
    + """new IntersectionObserver((e) => { if (e[0].isIntersecting) more(); })
    .observe(document.getElementById("end"));</script></body></html>"""
)

_PRODUCT = (
    _HEAD.format(title="product")
    + """<h1></h1><p class="price"></p><script type="application/json" id="data"></script>
<script>
fetch("/api/product/%(id)d").then((r) => r.json()).then((p) => {
    document.querySelector("h1").textContent = p.name;
    document.querySelector("h1").className = "ready";
    document.querySelector(".price").textContent = p.price;
    document.getElementById("data").textContent = JSON.stringify(p);
});
</script></body></html>"""
)

_HANG = _HEAD.format(title="hang") + '<h1>Never</h1><script src="/static/never.js"></script></body></html>'

_ECHO = (
    _HEAD.format(title="echo")
    + """<pre id="echo"></pre><script>
fetch("/api/echo").then((r) => r.text()).then((t) => { document.getElementById("echo").textContent = t; });
</script></body></html>"""
)

# A valid 1x1 PNG would do for a browser; the size is what a blocked image saves.
_BIG_IMAGE = b"\xff\xd8\xff\xe0" + b"\0" * (512 * 1024)


def product(pid: int) -> dict[str, object]:
    return {"id": pid, "name": f"Product {pid}", "price": f"{pid * 3 + 0.99:.2f}"}


def make_app(log: list[str], header_names: list[set[str]] | None = None) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        log.append(request.path_qs)
        if header_names is not None:
            header_names.append({name.lower() for name in request.headers})
        return await handler(request)

    async def html(text: str) -> web.Response:
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    async def more(request: web.Request) -> web.Response:
        return await html(_MORE)

    async def scroll(request: web.Request) -> web.Response:
        return await html(_SCROLL)

    async def product_page(request: web.Request) -> web.Response:
        return await html(_PRODUCT % {"id": int(request.match_info["id"])})

    async def hang(request: web.Request) -> web.Response:
        return await html(_HANG)

    async def echo(request: web.Request) -> web.Response:
        return await html(_ECHO)

    async def api_products(request: web.Request) -> web.Response:
        name, page = request.query["list"], int(request.query["page"])
        await asyncio.sleep(0.05)  # a real API takes a moment: the button and the scroll wait
        first = LISTS[name] + page * PER_PAGE
        items = [product(i) for i in range(first, first + PER_PAGE)] if page < PAGES else []
        return web.json_response({"items": items, "more": page + 1 < PAGES})

    async def api_product(request: web.Request) -> web.Response:
        return web.json_response(product(int(request.match_info["id"])))

    async def api_echo(request: web.Request) -> web.Response:
        return web.json_response({"headers": dict(request.headers), "cookies": dict(request.cookies)})

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "never.js":
            await asyncio.sleep(3600)  # cancelled when the server stops
        if name == "style.css":
            return web.Response(text="h1 { color: #333; }", content_type="text/css")
        if name == "font.woff2":
            return web.Response(body=b"wOF2" + b"\0" * 65536, content_type="font/woff2")
        return web.Response(body=_BIG_IMAGE, content_type="image/jpeg")

    app = web.Application(middlewares=[record])
    app.router.add_get("/more", more)
    app.router.add_get("/scroll", scroll)
    app.router.add_get("/product/{id:\\d+}", product_page)
    app.router.add_get("/hang", hang)
    app.router.add_get("/echo", echo)
    app.router.add_get("/api/products", api_products)
    app.router.add_get("/api/product/{id:\\d+}", api_product)
    app.router.add_get("/api/echo", api_echo)
    app.router.add_get("/static/{name}", static)
    return app


class RenderShop(ServerThread):
    def __init__(self) -> None:
        super().__init__(what="the render shop", thread_name="rendershop")
        self.log: list[str] = []
        self.header_names: list[set[str]] = []  # of every request, lower-case

    def url(self, path: str) -> str:
        return self.base + path

    def make_app(self) -> web.Application:
        return make_app(self.log, self.header_names)


class Proxy(ServerThread):
    """An HTTP proxy that answers every request itself: a page naming the URL it was asked for."""

    def __init__(self) -> None:
        super().__init__(what="the test proxy", thread_name="testproxy")
        self.seen: list[str] = []

    def make_app(self) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            self.seen.append(str(request.url))
            body = f"<html><body><p id=via>via proxy: {json.dumps(str(request.url))}</p></body></html>"
            return web.Response(text=body, content_type="text/html")

        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", answer)
        return app
