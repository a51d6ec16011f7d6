"""A site that defends itself, for the crawls of proxies and sessions (a real server on 127.0.0.1).

* It refuses a request that did not come through a proxy (no ``Via`` header): 403, counted.
  With ``by_address=True`` a proxy is told by the address a request comes from instead (a SOCKS
  proxy adds no header; the test's SOCKS proxies connect from 127.0.0.2, 127.0.0.3...), and a
  request from 127.0.0.1 is direct.
* A visitor is a cookie (``visitor``) seen through one proxy (the ``Via`` header): after
  ``ban_after`` pages, that (proxy, cookie) pair is banned, and every later request of it gets a
  Cloudflare challenge page under a 403.
* Every ``captcha_every``-th page it serves is a reCAPTCHA page under a 200 instead.
* It records every ``Proxy-Authorization`` or ``Authorization`` that reaches it (none should).
* It logs every request that came through a proxy, in order (``visits``): the ``X-Worker`` header
  (a shared crawl's workers send their name in it), the proxy, the visitor cookie sent, the one
  handed out, and whether it answered a challenge.

``/list`` links to ``/page/0`` ... ``/page/{pages - 1}``; a page's title is ``page N``.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from support.misbehaving import Server, serve

__all__ = ["DefendedSite", "Visit", "defended_site"]

_CHALLENGES = Path(__file__).parent.parent / "fixtures" / "challenges"
CHALLENGE = (_CHALLENGES / "cloudflare_js.html").read_text()
CAPTCHA = (_CHALLENGES / "recaptcha_sorry.html").read_text()


@dataclass(frozen=True)
class Visit:
    worker: str  # the X-Worker header ('' without one)
    via: str
    sent: str | None  # the visitor cookie the request carried
    issued: str | None  # the visitor cookie the answer handed out
    challenged: bool


class DefendedSite:
    def __init__(
        self, pages: int, ban_after: int | None = 6, captcha_every: int | None = 7, by_address: bool = False
    ) -> None:
        self.pages = pages
        self.by_address = by_address
        self.ban_after = ban_after
        self.captcha_every = captcha_every
        self._lock = threading.Lock()
        self._visitors = itertools.count(1)
        self._served = 0
        self.direct = 0  # requests that came without a proxy
        self.leaked: list[dict[str, str]] = []  # requests that carried a credential header
        self.seen: Counter[tuple[str, str]] = Counter()  # (via, visitor) -> pages asked
        self.banned: set[tuple[str, str]] = set()
        self.challenges = 0
        self.captchas = 0
        self.by_proxy: Counter[str] = (
            Counter()
        )  # pages served, by the proxy (Via, or address) they came through
        self.issued: list[str] = []  # visitor cookies handed out, in order
        self.visits: list[Visit] = []  # every request through a proxy, in order
        self.server: Server | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return self.server.url(path)

    async def handle(self, request: web.Request) -> web.Response:
        headers = request.headers
        with self._lock:
            if "Proxy-Authorization" in headers or "Authorization" in headers:
                self.leaked.append(dict(headers))
            via = headers.get("Via")
            if self.by_address:
                via = request.remote if request.remote != "127.0.0.1" else None
            if via is None:
                self.direct += 1
                return web.Response(status=403, text="direct access refused\n")
            sent = visitor = request.cookies.get("visitor")
            new = None
            if visitor is None:
                new = visitor = f"v{next(self._visitors)}"
                self.issued.append(new)
            pair = (via, visitor)
            self.seen[pair] += 1
            if self.ban_after is not None and self.seen[pair] > self.ban_after:
                self.banned.add(pair)
            challenged = pair in self.banned
            self.visits.append(Visit(headers.get("X-Worker", ""), via, sent, new, challenged))
            if challenged:
                self.challenges += 1
                return web.Response(status=403, text=CHALLENGE, content_type="text/html")
            self._served += 1
            captcha = self.captcha_every is not None and self._served % self.captcha_every == 0
            if captcha:
                self.captchas += 1
            else:
                self.by_proxy[via] += 1
        if captcha:
            response = web.Response(text=CAPTCHA, content_type="text/html")
        elif request.path == "/list":
            links = "".join(f'<a href="/page/{n}">{n}</a>' for n in range(self.pages))
            response = web.Response(text=f"<title>list</title>{links}", content_type="text/html")
        elif request.path == "/robots.txt":
            response = web.Response(text="User-agent: *\nAllow: /\n")
        else:
            n = request.match_info.get("n", "")
            response = web.Response(
                text=f"<html><title>page {n}</title><h1>page {n}</h1></html>", content_type="text/html"
            )
        if new is not None:
            response.set_cookie("visitor", new, path="/")
        return response


@contextmanager
def defended_site(
    pages: int, ban_after: int | None = 6, captcha_every: int | None = 7, by_address: bool = False
) -> Iterator[DefendedSite]:
    site = DefendedSite(pages, ban_after, captcha_every, by_address)
    routes = [web.get(path, site.handle) for path in ("/list", "/robots.txt", "/page/{n}")]
    with serve(routes) as server:
        site.server = server
        yield site
