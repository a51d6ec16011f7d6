"""``render=1`` of the fetch API, in the session's real Chromium, and the guard around the browser.

The API runs in this process (the application of ``crawlkit serve``, in the browser session's event
loop, with its launcher), so that it shares the one Chromium of the test session. Its guard takes
127.0.0.2 as public (``NetGuard(public=...)``, which the command line cannot set): the "public"
site stands there, and a private one on 127.0.0.1 holds the secrets a page must not reach.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web

from crawlkit.serve import NetGuard, ServeConfig, make_app
from support.browser import BrowserSession
from support.forwardproxy import ForwardProxy, forward_proxy
from support.serverthread import ServerThread

PUBLIC_HOST = "127.0.0.2"

BUILT = """<!doctype html><html><head><title>built</title></head><body><div id="out">empty</div>
<script>
fetch("/api/data").then((r) => r.json()).then((d) => {
    const p = document.createElement("p"); p.id = "made"; p.textContent = d.text;
    document.getElementById("out").replaceWith(p);
});
</script></body></html>"""

HANG = '<!doctype html><html><body><h1>never loads</h1><script src="/never.js"></script></body></html>'

SHOW_COOKIES = """<!doctype html><html><body><script>
const p = document.createElement("p"); p.id = "cookies"; p.textContent = "[" + document.cookie + "]";
document.body.appendChild(p); document.cookie = "set_by_page=yes; path=/";
</script></body></html>"""

# Every way a page can make the browser reach an address: script, frame, image, a redirect of
# its own origin's, a WebSocket, a name that resolves to loopback. #done appears when all settled.
LEAKY = """<!doctype html><html><head><title>leaky</title></head><body>
<iframe src="%(secret)s/frame"></iframe><img src="%(secret)s/image">
<script>
const tries = [
    fetch("%(secret)s/fetch").catch(() => null),
    fetch("/to-secret").catch(() => null),
    fetch("%(named)s/by-name").catch(() => null),
    new Promise((done) => {
        const ws = new WebSocket("%(ws)s/socket");
        ws.onopen = ws.onerror = ws.onclose = () => done(null);
        setTimeout(done, 3000);
    }),
];
Promise.all(tries).then(() => {
    const p = document.createElement("p"); p.id = "done"; document.body.appendChild(p);
});
</script></body></html>"""


class Sites:
    """The public site (127.0.0.2) and the private one (127.0.0.1), each logging its paths."""

    def __init__(self) -> None:
        self.public_log: list[str] = []
        self.secret_log: list[str] = []
        self.secret = _Server("127.0.0.1", self.secret_log, self._secret_app)
        self.public = _Server(PUBLIC_HOST, self.public_log, self._public_app)

    def _secret_app(self, app: web.Application) -> None:
        async def anything(request: web.Request) -> web.StreamResponse:
            if request.path == "/socket":
                socket = web.WebSocketResponse()
                await socket.prepare(request)
                await socket.close()
                return socket
            return web.Response(text="the secret", headers={"Access-Control-Allow-Origin": "*"})

        app.router.add_route("*", "/{path:.*}", anything)

    def _public_app(self, app: web.Application) -> None:
        secret = self.secret.base
        page = LEAKY % {
            "secret": secret,
            "named": f"http://localhost:{self.secret.port}",
            "ws": secret.replace("http:", "ws:"),
        }

        async def built(request: web.Request) -> web.Response:
            return web.Response(text=BUILT, content_type="text/html")

        async def data(request: web.Request) -> web.Response:
            return web.json_response({"text": "built by script"})

        async def leaky(request: web.Request) -> web.Response:
            return web.Response(text=page, content_type="text/html")

        async def to_secret(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"{secret}/redirected")

        async def set_cookie(request: web.Request) -> web.Response:
            response = web.Response(text="set")
            response.set_cookie("visitor", request.query["who"], path="/")
            return response

        async def show_cookies(request: web.Request) -> web.Response:
            return web.Response(text=SHOW_COOKIES, content_type="text/html")

        async def cookie_header(request: web.Request) -> web.Response:
            return web.Response(text=f"[{request.headers.get('Cookie', '')}]")

        async def hang(request: web.Request) -> web.Response:
            return web.Response(text=HANG, content_type="text/html")

        async def never(request: web.Request) -> web.Response:
            await asyncio.sleep(60)
            return web.Response(text="", content_type="text/javascript")

        async def headers(request: web.Request) -> web.Response:
            return web.json_response({k.lower(): v for k, v in request.headers.items()})

        app.router.add_get("/headers", headers)
        app.router.add_get("/hang", hang)
        app.router.add_get("/never.js", never)
        app.router.add_get("/cookies", cookie_header)
        app.router.add_get("/set", set_cookie)
        app.router.add_get("/show", show_cookies)
        app.router.add_get("/built", built)
        app.router.add_get("/api/data", data)
        app.router.add_get("/leaky", leaky)
        app.router.add_get("/to-secret", to_secret)


class _Server(ServerThread):
    def __init__(self, host: str, log: list[str], routes: Any) -> None:
        super().__init__(host, what=f"the site on {host}", thread_name=f"site-{host}")
        self.log, self.routes = log, routes

    def make_app(self) -> web.Application:
        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.log.append(request.path)
            return await handler(request)  # type: ignore[no-any-return]

        app = web.Application(middlewares=[record])
        self.routes(app)
        return app


@pytest.fixture(scope="module")
def sites() -> Iterator[Sites]:
    made = Sites()
    made.secret.start()
    made.public.start()
    try:
        yield made
    finally:
        made.public.stop()
        made.secret.stop()


class Api:
    """The fetch API's application, served on 127.0.0.1 from the browser session's loop."""

    def __init__(self, session: BrowserSession, project: Path) -> None:
        self.session = session
        self.project = project
        self.base = ""

    async def start(self) -> None:
        # Made here: the guard's resolver and the application belong to the browser's loop.
        guard = NetGuard(allow_private=False, public=[ipaddress.ip_network(f"{PUBLIC_HOST}/32")])
        config = ServeConfig(project=self.project, allow_private=False)
        self.app = make_app(config, net_guard=guard, browser_launcher=self.session.launcher)
        self.runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/api/status", timeout=10) as answer:
            return dict(orjson.loads(answer.read())["fetch"])

    def fetch(self, url: str, **params: str) -> tuple[int, dict[str, Any]]:
        query = "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
        request = urllib.request.Request(f"{self.base}/api/fetch?url={quote(url, safe='')}{query}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, orjson.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read())


@pytest.fixture(scope="module")
def api(browser_session: BrowserSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    project = tmp_path_factory.mktemp("fetch-render")
    (project / "spiders").mkdir()
    made = Api(browser_session, project)
    browser_session.run(made.start())
    try:
        yield made
    finally:
        browser_session.run(made.runner.cleanup())


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(auth=("renderer", "pr0xy-pass"), name="render-proxy") as running:
        yield running


@pytest.fixture(scope="module")
def proxied_api(
    browser_session: BrowserSession, tmp_path_factory: pytest.TempPathFactory, proxy: ForwardProxy
) -> Iterator[Api]:
    project = tmp_path_factory.mktemp("fetch-render-proxied")
    (project / "spiders").mkdir()
    proxies = orjson.dumps([proxy.url_with_credentials("renderer", "pr0xy-pass")]).decode()
    (project / "pyproject.toml").write_text(f"[tool.crawlkit]\nproxies = {proxies}\n")
    made = Api(browser_session, project)
    browser_session.run(made.start())
    try:
        yield made
    finally:
        browser_session.run(made.runner.cleanup())


def test_a_script_built_page_comes_back_rendered_only_with_render(api: Api, sites: Sites) -> None:
    url = sites.public.base + "/built"
    status, plain = api.fetch(url)
    assert status == 200, plain
    assert (
        plain["rendered"] is False
        and 'id="out">empty' in plain["body"]
        and "built by script" not in plain["body"]
    )

    status, rendered = api.fetch(url, render="1", wait_for="#made")
    assert status == 200, rendered
    assert rendered["rendered"] is True and rendered["classification"] == "ok"
    assert '<p id="made">built by script</p>' in rendered["body"]
    assert rendered["final_url"] == url and rendered["status"] == 200
    assert "screenshot" not in rendered


def test_a_screenshot_comes_back_as_base64_png(api: Api, sites: Sites) -> None:
    status, data = api.fetch(sites.public.base + "/built", render="1", screenshot="1", wait_for="#made")
    assert status == 200, data
    png = base64.b64decode(data["screenshot"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 100


def test_a_rendered_page_cannot_reach_a_private_address(api: Api, sites: Sites) -> None:
    sites.secret_log.clear()
    sites.public_log.clear()
    status, data = api.fetch(sites.public.base + "/leaky", render="1", wait_for="#done")
    assert status == 200, data
    assert '<p id="done">' in data["body"]  # the page ran every attempt to the end
    assert "/to-secret" in sites.public_log  # the redirect was asked for; its target was not reached
    assert sites.secret_log == []  # no request of the page reached the private address
    refused = data["refused_requests"]
    secret = sites.secret.base
    assert f"{secret}/fetch" in refused and f"{secret}/frame" in refused
    assert f"http://localhost:{sites.secret.port}/by-name" in refused


def test_a_rendered_page_goes_through_the_vetted_forwarder(api: Api, sites: Sites) -> None:
    """The redirect is invisible to request routing: the forwarder is what refused it."""
    before = api.status()["browser_refused"]
    sites.secret_log.clear()
    status, data = api.fetch(sites.public.base + "/leaky", render="1", wait_for="#done")
    assert status == 200, data
    assert api.status()["browser_refused"] > before and sites.secret_log == []


def test_render_options_are_checked(api: Api, sites: Sites) -> None:
    url = sites.public.base + "/built"
    for params, words in [
        ({"wait_for": "#made"}, "add render=1"),
        ({"screenshot": "1"}, "add render=1"),
        ({"render": "maybe"}, "render must be 1 or 0"),
        ({"render": "1", "render_timeout": "50"}, "render_timeout must be within"),
        ({"render": "1", "render_timeout": "soon"}, "render_timeout must be a number"),
        ({"render": "1", "wait_for": " "}, "wait_for must be a CSS selector"),
    ]:
        status, data = api.fetch(url, **params)
        assert status == 400 and words in data["error"], (params, data)


def test_a_session_is_one_visitor_over_http_and_in_the_browser(api: Api, sites: Sites) -> None:
    base = sites.public.base
    assert api.fetch(base + "/set?who=ann", session="ann")[0] == 200  # over HTTP
    assert api.fetch(base + "/set?who=ben", session="ben")[0] == 200
    status, data = api.fetch(base + "/show", render="1", wait_for="#cookies", session="ann")
    assert status == 200 and data["session"] == "ann" and data["session_new"] is False, data
    assert '<p id="cookies">[visitor=ann]</p>' in data["body"]
    status, data = api.fetch(base + "/show", render="1", wait_for="#cookies", session="ben")
    assert '<p id="cookies">[visitor=ben]</p>' in data["body"]
    status, data = api.fetch(base + "/show", render="1", wait_for="#cookies")  # no session: no cookie
    assert '<p id="cookies">[]</p>' in data["body"]
    # What the page set in the browser is the session's over HTTP too, and only that session's.
    status, data = api.fetch(base + "/cookies", session="ann")
    assert status == 200 and "set_by_page=yes" in data["body"] and "visitor=ann" in data["body"], data
    status, data = api.fetch(base + "/cookies", session="ben")
    assert "visitor=ben" in data["body"] and "visitor=ann" not in data["body"], data


def test_a_render_keeps_the_deadline_and_a_client_that_leaves_ends_it(api: Api, sites: Sites) -> None:
    url = sites.public.base + "/hang"
    started = time.monotonic()
    status, data = api.fetch(url, render="1", timeout="4")
    assert time.monotonic() - started < 4  # the client, waiting 4 s, got its answer
    assert status in (502, 504) and ("render_timeout" in str(data) or "deadline" in data["error"]), data

    path = f"/api/fetch?url={quote(url, safe='')}&render=1&timeout=60"
    client = socket.create_connection(("127.0.0.1", int(api.base.rsplit(":", 1)[1])), timeout=10)
    client.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    _wait(lambda: api.status()["running"] == 1)
    client.close()  # the client goes away: its render ends, its slot is free
    _wait(lambda: api.status()["running"] == 0)


def _wait(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_render_through_the_pool_keeps_the_credentials_with_the_proxy(
    proxied_api: Api, proxy: ForwardProxy, sites: Sites
) -> None:
    url = sites.public.base + "/headers"
    status, data = proxied_api.fetch(url, render="1", proxy="auto")
    assert status == 200 and data["rendered"] is True, data
    assert any(s.target == url and "proxy-authorization" in s.headers for s in proxy.seen)
    seen_by_site = data["body"].lower()
    assert "render-proxy" in seen_by_site  # the proxy's Via: the page came through it
    assert "proxy-authorization" not in seen_by_site and "pr0xy-pass" not in seen_by_site
    assert data["proxy"] is not None and "pr0xy-pass" not in data["proxy"]
