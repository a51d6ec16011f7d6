"""A real local website for crawlkit's tests: ``make_app()`` builds it, ``SiteLog`` watches it.

Every request is recorded (arrival time on ``time.monotonic()``, method, path and query, headers,
body, when it ended, its status) and requests in flight are counted per path prefix and per host, so
tests can assert server-side timing, politeness and concurrency. Time stamps come from the same
monotonic clock as the test process's, so they can be compared with ``time.monotonic()`` there.

Endpoints (all GET unless said otherwise; unknown paths answer 404):

``/graph/{n}?size=S&fanout=F&seed=X``
    A deterministic link graph of S pages (default 1000; F default 5, X default 0). Page ``n``
    links to the pages ``graph_links(n, S, F, X)``: page 0 links to 1..F, every page is reachable
    from page 0 when F >= 1 (the first links form an F-ary tree), the rest are seeded
    pseudo-random. Links come as URL variants that must dedup to the same page (absolute,
    root-relative, relative, ``#fragment``, query in another order, ``HTTP://`` scheme case,
    dot segments) in ``<a class="graph">``; ``<a class="other">`` holds an offsite link
    (``http://offsite.invalid/x``), a ``mailto:``, a ``javascript:``, a ``tel:`` link and a
    fragment-only self link; an ``<a name="top">`` has no href. Each page holds
    ``<h1 class="title">Page n</h1>`` and ``<span class="n">n</span>``. Start a crawl at
    ``graph_path(0, ...)``: its query is in the form the links use, so page 0 is not seen twice.
``/depth/{d}?max=M``
    A chain: page d links to d+1 up to M (default 50); ``<span class="d">d</span>``.
``/redirect/{k}?code=302``
    A chain of k redirects (302 unless ``code`` says 301/303/307/308) ending at ``/ok``; odd
    hops use a relative Location, even hops an absolute one. ``/redirect/0`` is ``/ok`` itself.
``/redirect-loop/a`` and ``/redirect-loop/b``
    Redirect to each other forever.
``/ok``
    200 with ``<h1 class="title">ok</h1>``.
``/status/{code}``
    Answers that status (200-599) with a small body (none for 204 and 304).
``/flaky/{key}?fail=K&code=503``
    The first K requests for ``key`` (counted server-side; default K 1) answer ``code``, then 200.
``/drop/{key}?fail=K``
    The first K requests for ``key`` (default 1) get their connection closed with no response.
    Beware: aiohttp's client silently retries an idempotent request once when the server drops
    the connection, so a client may see fewer failures than the server dropped; count drops in
    the log (``LoggedRequest.dropped``), or use raw sockets.
``/retry-after/{key}?seconds=S&mode=delta|date&count=N&code=429``
    The first N (default 1) requests for ``key`` answer ``code`` (default 429) with a
    ``Retry-After`` of S seconds (default 1), as delta-seconds or as an HTTP-date at least S
    seconds ahead; later requests answer 200.
``/slow?delay=SECONDS``
    Sleeps (at most 60 s) and then answers 200. Any other query parameters are ignored, so
    ``/slow?delay=1&i=3`` makes distinct URLs.
``/drip?chunks=N&interval=S&size=B``
    Sends N chunks of B bytes (default 5 chunks of 10 bytes), one every S seconds (default 0.5):
    for read-timeout versus total-timeout tests.
``/big?size=BYTES&chunked=0|1``
    A body of exactly that many bytes (default 1 MiB, at most 1 GiB), streamed; with
    ``chunked=1`` it is sent without a Content-Length.
``/gzip-bomb``
    About 100 KB of gzip (``Content-Encoding: gzip``, sent as is) that inflates to
    ``GZIP_BOMB_SIZE`` (100 MiB) bytes.
``/encoded/{coding}``
    ``ENCODED_PAGE`` sent with Content-Encoding gzip, x-gzip, deflate (zlib), raw-deflate (sent
    as ``deflate`` without the zlib wrapper), br or identity.
``/charset/{name}?via=header|meta|http-equiv|bom|none&declared=LABEL``
    ``charset_text(name)`` in ``<p id="text">``, encoded in ``name`` (utf-8, windows-1252,
    iso-8859-2, shift_jis, gb2312, utf-16-le, utf-16-be), the charset declared in the
    Content-Type header, in ``<meta charset>``, in ``<meta http-equiv>``, by a BOM, or nowhere.
    ``declared`` changes the label that is declared (to send cp1252 bytes labelled iso-8859-1).
``/echo`` (any method)
    JSON: method, path_qs, headers, body (text).
``/callback-raises``, ``/callback-exits``
    Plain pages; test spiders raise / ``os._exit(3)`` in their callbacks for these URLs.
``/robots.txt``
    404.
``/redirect-to?url=URL&code=302`` (any method)
    Redirects to URL (absolute or relative) with that status (301/302/303/307/308).
``/set-cookie?name=N&value=V``
    Sets the cookie N=V (path /) and answers a plain page.
``/binary?type=image/png``
    ``PNG_BYTES`` (a 1x1 PNG) labelled with that Content-Type.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import html
import math
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate

import brotli
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "CHARSET_NAMES",
    "DEFAULT_FANOUT",
    "DEFAULT_SEED",
    "DEFAULT_SIZE",
    "ENCODED_PAGE",
    "GZIP_BOMB_SIZE",
    "MAX_DEPTH",
    "OFFSITE_URL",
    "PNG_BYTES",
    "STATE",
    "LoggedRequest",
    "SiteLog",
    "SiteState",
    "charset_body",
    "charset_text",
    "encoded_body",
    "graph_links",
    "graph_path",
    "gzip_bomb",
    "make_app",
    "reachable",
]

DEFAULT_SIZE = 1000
DEFAULT_FANOUT = 5
DEFAULT_SEED = 0
MAX_GRAPH_SIZE = 100_000
MAX_DEPTH = 50
OFFSITE_URL = "http://offsite.invalid/x"
GZIP_BOMB_SIZE = 100 * 1024 * 1024
MAX_BIG_SIZE = 1024 * 1024 * 1024
MAX_SLOW_DELAY = 60.0

# -- the link graph ----------------------------------------------------------------------------


def graph_links(
    n: int, size: int = DEFAULT_SIZE, fanout: int = DEFAULT_FANOUT, seed: int = DEFAULT_SEED
) -> list[int]:
    """The pages that page ``n`` links to, in page order, without duplicates or ``n`` itself.

    The first links are ``n``'s children in an F-ary tree rooted at 0 (so page 0 links to
    1..F and every page is reachable when F >= 1); the rest, up to F links, are pseudo-random
    pages chosen from a generator seeded with ``seed`` and ``n``.
    """
    if not 0 <= n < size:
        raise ValueError(f"page {n} is not in a graph of {size} pages")
    links: list[int] = [c for c in range(n * fanout + 1, n * fanout + fanout + 1) if c < size]
    rng = random.Random(f"crawlkit-graph:{seed}:{size}:{n}")
    chosen = set(links)
    attempts = 0
    while len(links) < fanout and len(chosen) < size - 1 and attempts < 20 * fanout:
        attempts += 1
        m = rng.randrange(size)
        if m != n and m not in chosen:
            chosen.add(m)
            links.append(m)
    return links


def reachable(size: int = DEFAULT_SIZE, fanout: int = DEFAULT_FANOUT, seed: int = DEFAULT_SEED) -> set[int]:
    """Every page reachable from page 0 by following links (page 0 included)."""
    seen = {0}
    todo = deque([0])
    while todo:
        n = todo.popleft()
        for m in graph_links(n, size, fanout, seed):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def graph_path(
    n: int, size: int = DEFAULT_SIZE, fanout: int = DEFAULT_FANOUT, seed: int = DEFAULT_SEED
) -> str:
    """The path and query of graph page ``n`` in the form its canonical links use."""
    return f"/graph/{n}?size={size}&fanout={fanout}&seed={seed}"


def _graph_hrefs(base: str, n: int, m: int, size: int, fanout: int, seed: int, form: int) -> str:
    query = f"size={size}&fanout={fanout}&seed={seed}"
    forms = (
        f"{base}/graph/{m}?{query}",  # absolute
        f"/graph/{m}?{query}",  # root-relative
        f"{m}?{query}",  # relative to /graph/n
        f"/graph/{m}?{query}#from-{n}",  # with a fragment
        f"/graph/{m}?seed={seed}&size={size}&fanout={fanout}",  # query in another order
        f"{base.replace('http://', 'HTTP://', 1)}/graph/{m}?{query}",  # scheme (and host) case
        f"/graph/x/../{m}?{query}",  # dot segments
    )
    return forms[form % len(forms)]


GRAPH_VARIANT_FORMS = 7


def _graph_page(base: str, n: int, size: int, fanout: int, seed: int) -> str:
    anchors: list[str] = []
    targets = graph_links(n, size, fanout, seed)
    for i, m in enumerate(targets):
        anchors.append(_a(_graph_hrefs(base, n, m, size, fanout, seed, i), f"page {m}", "graph"))
    if targets:  # every variant form of the first link, so each page exercises all of them
        anchors.extend(
            _a(_graph_hrefs(base, n, targets[0], size, fanout, seed, form), f"page {targets[0]}", "graph")
            for form in range(GRAPH_VARIANT_FORMS)
        )
    others = [OFFSITE_URL, "mailto:someone@example.invalid", "javascript:void(0)", "tel:+10000000000", "#top"]
    anchors.extend(_a(href, "other", "other") for href in others)
    items = "\n".join(f"<li>{a}</li>" for a in anchors)
    return (
        f"<!DOCTYPE html>\n<html><head><title>Graph page {n}</title></head><body>\n"
        f'<a name="top"></a>\n<h1 class="title">Page {n}</h1>\n<span class="n">{n}</span>\n'
        f'<ul class="links">\n{items}\n</ul>\n</body></html>\n'
    )


def _a(href: str, text: str, cls: str) -> str:
    return f'<a class="{cls}" href="{html.escape(href, quote=True)}">{html.escape(text)}</a>'


# -- charsets and encodings --------------------------------------------------------------------

_LATIN_TEXT = "Zoë’s café — “naïve” façade"  # noqa: RUF001
_CHARSET_TEXTS = {
    "utf-8": _LATIN_TEXT,
    "windows-1252": _LATIN_TEXT,
    "iso-8859-2": "Zoë café; Příliš žluťoučký kůň úpěl ďábelské ódy",
    "shift_jis": "日本語のテキスト：こんにちは、世界。カフェ",  # noqa: RUF001
    "gb2312": "中文文本：你好，世界。咖啡馆",  # noqa: RUF001
    "utf-16-le": _LATIN_TEXT,
    "utf-16-be": _LATIN_TEXT,
}
CHARSET_NAMES = tuple(_CHARSET_TEXTS)
_BOMS = {"utf-8": codecs.BOM_UTF8, "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}
CHARSET_VIAS = ("header", "meta", "http-equiv", "bom", "none")


def charset_text(name: str) -> str:
    """The text that ``/charset/{name}`` holds in its ``<p id="text">``."""
    return _CHARSET_TEXTS[name]


def charset_body(name: str, via: str, declared: str | None = None) -> tuple[bytes, str]:
    """The body and Content-Type of ``/charset/{name}?via=...``; ValueError for bad combinations."""
    if name not in _CHARSET_TEXTS:
        raise ValueError(f"unknown charset {name!r}; known: {', '.join(CHARSET_NAMES)}")
    if via not in CHARSET_VIAS:
        raise ValueError(f"via must be one of {', '.join(CHARSET_VIAS)}")
    label = declared or name
    if via == "bom" and name not in _BOMS:
        raise ValueError(f"{name} has no byte order mark")
    if via in ("meta", "http-equiv") and name.startswith("utf-16"):
        raise ValueError("a <meta> declaration cannot be read in a UTF-16 body")
    if via == "meta":
        head = f'<meta charset="{label}">'
    elif via == "http-equiv":
        head = f'<meta http-equiv="Content-Type" content="text/html; charset={label}">'
    else:
        head = ""
    page = (
        f"<!DOCTYPE html>\n<html><head>{head}<title>encoding test</title></head>"
        f'<body><p id="text">{_CHARSET_TEXTS[name]}</p></body></html>\n'
    )
    body = page.encode(name)
    if via == "bom":
        body = _BOMS[name] + body
    content_type = f"text/html; charset={label}" if via == "header" else "text/html"
    return body, content_type


ENCODED_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>encoded</title></head><body>"
    b'<h1 class="title">encoded</h1>' + b"<p>" + b"compressible text " * 200 + b"</p></body></html>\n"
)
ENCODINGS = ("gzip", "x-gzip", "deflate", "raw-deflate", "br", "identity")


def encoded_body(coding: str) -> tuple[bytes, str]:
    """``ENCODED_PAGE`` compressed for ``/encoded/{coding}``, and the Content-Encoding sent."""
    if coding in ("gzip", "x-gzip"):
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(ENCODED_PAGE) + c.flush(), coding
    if coding == "deflate":
        return zlib.compress(ENCODED_PAGE), "deflate"
    if coding == "raw-deflate":
        c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return c.compress(ENCODED_PAGE) + c.flush(), "deflate"
    if coding == "br":
        return brotli.compress(ENCODED_PAGE), "br"
    if coding == "identity":
        return ENCODED_PAGE, "identity"
    raise ValueError(f"unknown coding {coding!r}; known: {', '.join(ENCODINGS)}")


@functools.cache
def gzip_bomb() -> bytes:
    """A gzip stream (about 100 KB) that inflates to ``GZIP_BOMB_SIZE`` bytes of HTML."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = b"<!DOCTYPE html><html><body>"
    parts = [c.compress(head)]
    chunk = b" " * (1024 * 1024)
    remaining = GZIP_BOMB_SIZE - len(head)
    while remaining > 0:
        piece = chunk[: min(len(chunk), remaining)]
        parts.append(c.compress(piece))
        remaining -= len(piece)
    parts.append(c.flush())
    return b"".join(parts)


# -- the request log ---------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class LoggedRequest:
    """One request as the server saw it. ``start``/``end`` are ``time.monotonic()`` values."""

    start: float
    method: str
    path: str
    path_qs: str
    host: str
    headers: CIMultiDictProxy[str]
    body: bytes = b""
    end: float | None = None
    status: int | None = None  # None while in flight, and for a dropped connection
    dropped: bool = False
    keys: tuple[tuple[str | None, str], ...] = field(default=(), repr=False)
    generation: int = field(default=0, repr=False)

    @property
    def time(self) -> float:
        """When the request arrived (``time.monotonic()``)."""
        return self.start

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("User-Agent")

    @property
    def query(self) -> str:
        return self.path_qs.partition("?")[2]


def _norm_prefix(prefix: str) -> str:
    stripped = "/" + prefix.strip("/")
    return stripped


def _prefixes(path: str) -> list[str]:
    parts = [p for p in path.split("/") if p]
    return ["/"] + ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _matches(path: str, prefix: str) -> bool:
    prefix = _norm_prefix(prefix)
    return prefix == "/" or path == prefix or path.startswith(prefix + "/")


class SiteLog:
    """Thread-safe record of every request the site served, and of its concurrency.

    Path prefixes match whole segments: ``"/slow"`` matches ``/slow`` and ``/slow/x``, not
    ``/slower``; ``"/"`` matches everything. ``host`` is the Host header (``127.0.0.1:PORT``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._in_flight: dict[tuple[str | None, str], int] = {}
        self._max: dict[tuple[str | None, str], int] = {}
        self._generation = 0

    # -- written by the server ----------------------------------------------------------------

    def begin(self, request: web.BaseRequest, body: bytes = b"") -> LoggedRequest:
        path = request.path
        host = request.host
        keys = tuple((h, p) for p in _prefixes(path) for h in (None, host))
        entry = LoggedRequest(
            start=time.monotonic(),
            method=request.method,
            path=path,
            path_qs=request.path_qs,
            host=host,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            body=body,
            keys=keys,
        )
        with self._lock:
            entry.generation = self._generation
            self._entries.append(entry)
            for key in keys:
                now = self._in_flight.get(key, 0) + 1
                self._in_flight[key] = now
                if now > self._max.get(key, 0):
                    self._max[key] = now
        return entry

    def finish(self, entry: LoggedRequest, status: int | None, dropped: bool = False) -> None:
        with self._lock:
            entry.end = time.monotonic()
            entry.status = status
            entry.dropped = dropped
            if entry.generation == self._generation:
                for key in entry.keys:
                    self._in_flight[key] -= 1

    # -- read by tests ------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every entry and reset the concurrency counters (requests in flight too)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._in_flight.clear()
            self._max.clear()

    def entries(self, prefix: str = "/", *, host: str | None = None) -> list[LoggedRequest]:
        """The requests under ``prefix`` (and to ``host``), in arrival order."""
        with self._lock:
            snapshot = list(self._entries)
        return [e for e in snapshot if _matches(e.path, prefix) and (host is None or e.host == host)]

    def count(self, prefix: str = "/", *, host: str | None = None) -> int:
        return len(self.entries(prefix, host=host))

    def paths(self, prefix: str = "/") -> list[str]:
        """``path_qs`` of each request under ``prefix``, in arrival order."""
        return [e.path_qs for e in self.entries(prefix)]

    def times(self, prefix: str = "/") -> list[float]:
        """Arrival times (``time.monotonic()``) of the requests under ``prefix``."""
        return [e.start for e in self.entries(prefix)]

    def in_flight(self, prefix: str = "/", *, host: str | None = None) -> int:
        with self._lock:
            return self._in_flight.get((host, _norm_prefix(prefix)), 0)

    def max_in_flight(self, prefix: str = "/", *, host: str | None = None) -> int:
        """The most requests under ``prefix`` (to ``host``) that were being handled at once."""
        with self._lock:
            return self._max.get((host, _norm_prefix(prefix)), 0)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait (blocking) until no request is in flight; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self.in_flight() > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class SiteState:
    """What the site remembers: the request log and the per-key counters of flaky endpoints."""

    def __init__(self, log: SiteLog | None = None) -> None:
        self.log = log if log is not None else SiteLog()
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], int] = {}

    def hit(self, kind: str, key: str) -> int:
        """Count one more request of ``kind`` for ``key``; returns the count, starting at 1."""
        with self._lock:
            n = self._counters.get((kind, key), 0) + 1
            self._counters[(kind, key)] = n
            return n

    def hits(self, kind: str, key: str) -> int:
        with self._lock:
            return self._counters.get((kind, key), 0)

    def reset(self) -> None:
        """Clear the log and every counter."""
        with self._lock:
            self._counters.clear()
        self.log.clear()


STATE = web.AppKey("crawlkit_testsite_state", SiteState)
_DROPPED = web.RequestKey("crawlkit_testsite_dropped", bool)

# -- handlers ----------------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> SiteState:
    return request.app[STATE]


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise web.HTTPBadRequest(text=f"{name} must be within {lo}..{hi}")
    return value


def _float_param(request: web.Request, name: str, default: float, lo: float, hi: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a number") from None
    if not lo <= value <= hi:
        raise web.HTTPBadRequest(text=f"{name} must be within {lo}..{hi}")
    return value


def _int_match(request: web.Request, name: str) -> int:
    try:
        return int(request.match_info[name])
    except ValueError:
        raise web.HTTPNotFound() from None


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html")


def _plain_page(title: str, body: str = "") -> str:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>"
        f'<h1 class="title">{title}</h1>{body}</body></html>\n'
    )


@web.middleware
async def _record(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = await request.read() if request.can_read_body else b""
    log = _state(request).log
    entry = log.begin(request, body)
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception:
        status = 500
        raise
    finally:
        dropped = request.get(_DROPPED, False)
        log.finish(entry, None if dropped else status, dropped)


async def graph(request: web.Request) -> web.Response:
    size = _int_param(request, "size", DEFAULT_SIZE, 1, MAX_GRAPH_SIZE)
    fanout = _int_param(request, "fanout", DEFAULT_FANOUT, 0, 100)
    seed = _int_param(request, "seed", DEFAULT_SEED, -(2**63), 2**63)
    n = _int_match(request, "n")
    if not 0 <= n < size:
        raise web.HTTPNotFound(text=f"no page {n} in a graph of {size}")
    return _html(_graph_page(_base(request), n, size, fanout, seed))


async def depth(request: web.Request) -> web.Response:
    d = _int_match(request, "d")
    limit = _int_param(request, "max", MAX_DEPTH, 0, 10_000)
    if not 0 <= d <= limit:
        raise web.HTTPNotFound()
    suffix = f"?max={limit}" if "max" in request.query else ""
    link = f'<a class="next" href="/depth/{d + 1}{suffix}">next</a>' if d < limit else ""
    return _html(_plain_page(f"Depth {d}", f'<span class="d">{d}</span>{link}'))


async def shop_listing(request: web.Request) -> web.Response:
    """``/shop/list/K?pages=P&items=I``: a listing page of I item links, then a link to page K+1.

    Each listing is reachable only from the one before, as a shop's pagination is.
    """
    k = _int_match(request, "k")
    pages = _int_param(request, "pages", 10, 1, 10_000)
    items = _int_param(request, "items", 20, 0, 1_000)
    if not 0 <= k < pages:
        raise web.HTTPNotFound()
    query = f"?pages={pages}&items={items}"
    links = "".join(f'<a class="item" href="/shop/item/{k}-{i}">item {k}-{i}</a>' for i in range(items))
    if k + 1 < pages:
        links += f'<a class="next" href="/shop/list/{k + 1}{query}">next</a>'
    return _html(_plain_page(f"Listing {k}", links))


async def shop_item(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return _html(_plain_page(f"Item {name}", f'<span class="item">{name}</span>'))


_REDIRECTS: dict[int, type[web.HTTPMove]] = {
    301: web.HTTPMovedPermanently,
    302: web.HTTPFound,
    303: web.HTTPSeeOther,
    307: web.HTTPTemporaryRedirect,
    308: web.HTTPPermanentRedirect,
}


def _redirect_class(request: web.Request) -> type[web.HTTPMove]:
    code = _int_param(request, "code", 302, 300, 399)
    if code not in _REDIRECTS:
        raise web.HTTPBadRequest(text=f"code must be one of {sorted(_REDIRECTS)}")
    return _REDIRECTS[code]


async def redirect(request: web.Request) -> web.Response:
    k = _int_match(request, "k")
    if not 0 <= k <= 1000:
        raise web.HTTPNotFound()
    if k == 0:
        return await ok(request)
    cls = _redirect_class(request)
    query = f"?{request.query_string}" if request.query_string else ""
    if k == 1:
        target = "/ok"
    elif k % 2:
        target = f"{k - 1}{query}"  # relative to /redirect/k
    else:
        target = f"{_base(request)}/redirect/{k - 1}{query}"
    raise cls(location=target)


async def redirect_loop(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ("a", "b"):
        raise web.HTTPNotFound()
    raise web.HTTPFound(location="/redirect-loop/" + ("b" if name == "a" else "a"))


async def ok(request: web.Request) -> web.Response:
    return _html(_plain_page("ok"))


async def status(request: web.Request) -> web.Response:
    code = _int_match(request, "code")
    if not 200 <= code <= 599:
        raise web.HTTPBadRequest(text="status must be within 200..599")
    if code in (204, 304):
        return web.Response(status=code)
    return _html(_plain_page(f"status {code}"), status=code)


async def flaky(request: web.Request) -> web.Response:
    fail = _int_param(request, "fail", 1, 0, 1000)
    code = _int_param(request, "code", 503, 400, 599)
    attempt = _state(request).hit("flaky", request.match_info["key"])
    if attempt <= fail:
        return _html(_plain_page(f"failure {attempt}"), status=code)
    return _html(_plain_page("ok", f'<span class="attempt">{attempt}</span>'))


async def drop(request: web.Request) -> web.Response:
    fail = _int_param(request, "fail", 1, 0, 1000)
    attempt = _state(request).hit("drop", request.match_info["key"])
    if attempt <= fail:
        request[_DROPPED] = True
        transport = request.transport
        if transport is not None:
            transport.close()
        # aiohttp finds the transport closed and drops this response without complaint.
        return web.Response(status=500, text="never sent")
    return _html(_plain_page("ok", f'<span class="attempt">{attempt}</span>'))


async def retry_after(request: web.Request) -> web.Response:
    seconds = _float_param(request, "seconds", 1.0, 0.0, 3600.0)
    mode = request.query.get("mode", "delta")
    count = _int_param(request, "count", 1, 0, 1000)
    code = _int_param(request, "code", 429, 300, 599)
    if mode not in ("delta", "date"):
        raise web.HTTPBadRequest(text="mode must be delta or date")
    attempt = _state(request).hit("retry-after", request.match_info["key"])
    if attempt > count:
        return _html(_plain_page("ok", f'<span class="attempt">{attempt}</span>'))
    if mode == "delta":
        value = str(math.ceil(seconds))
    else:
        # An HTTP-date has whole seconds: round up so that the wait asked for is at least S.
        value = formatdate(math.ceil(time.time() + seconds) + 1, usegmt=True)
    return web.Response(
        status=code,
        text=_plain_page("slow down"),
        content_type="text/html",
        headers={"Retry-After": value},
    )


async def slow(request: web.Request) -> web.Response:
    delay = _float_param(request, "delay", 1.0, 0.0, MAX_SLOW_DELAY)
    await asyncio.sleep(delay)
    return _html(_plain_page("slow", f'<span class="delay">{delay}</span>'))


async def drip(request: web.Request) -> web.StreamResponse:
    chunks = _int_param(request, "chunks", 5, 0, 1000)
    interval = _float_param(request, "interval", 0.5, 0.0, MAX_SLOW_DELAY)
    size = _int_param(request, "size", 10, 1, 1024 * 1024)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.content_length = chunks * size
    await response.prepare(request)
    for _ in range(chunks):
        await asyncio.sleep(interval)
        await response.write(b"d" * size)
    await response.write_eof()
    return response


async def big(request: web.Request) -> web.StreamResponse:
    size = _int_param(request, "size", 1024 * 1024, 0, MAX_BIG_SIZE)
    chunked = request.query.get("chunked", "0") not in ("0", "", "false", "no")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    block = b"x" * (64 * 1024)
    remaining = size
    while remaining > 0:
        piece = block[: min(len(block), remaining)]
        await response.write(piece)
        remaining -= len(piece)
    await response.write_eof()
    return response


async def gzip_bomb_handler(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(gzip_bomb)
    return web.Response(
        body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
    )


async def encoded(request: web.Request) -> web.Response:
    try:
        body, coding = encoded_body(request.match_info["coding"])
    except ValueError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.Response(
        body=body, headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": coding}
    )


async def charset(request: web.Request) -> web.Response:
    try:
        body, content_type = charset_body(
            request.match_info["name"], request.query.get("via", "header"), request.query.get("declared")
        )
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.Response(body=body, headers={"Content-Type": content_type})


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    data = {
        "method": request.method,
        "path_qs": request.path_qs,
        "headers": dict(request.headers),
        "body": body.decode("utf-8", "replace"),
    }
    return web.json_response(data)


def _plain(title: str) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return _html(_plain_page(title))

    return handler


async def robots(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text="no robots.txt")


async def redirect_to(request: web.Request) -> web.Response:
    target = request.query.get("url")
    if not target:
        raise web.HTTPBadRequest(text="url is required")
    raise _redirect_class(request)(location=target)


async def set_cookie(request: web.Request) -> web.Response:
    response = _html(_plain_page("cookie set"))
    response.set_cookie(request.query.get("name", "session"), request.query.get("value", "1"), path="/")
    return response


# The smallest valid PNG (1x1, transparent), for binary-response tests.
PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e5279ede0000000049454e44ae426082"
)


async def binary(request: web.Request) -> web.Response:
    content_type = request.query.get("type", "image/png")
    return web.Response(body=PNG_BYTES, headers={"Content-Type": content_type})


def _routes() -> Iterable[web.AbstractRouteDef]:
    return [
        web.get("/graph/{n}", graph),
        web.get("/depth/{d}", depth),
        web.get("/shop/list/{k}", shop_listing),
        web.get("/shop/item/{name}", shop_item),
        web.get("/redirect/{k}", redirect),
        web.get("/redirect-loop/{name}", redirect_loop),
        web.get("/ok", ok),
        web.get("/status/{code}", status),
        web.get("/flaky/{key}", flaky),
        web.get("/drop/{key}", drop),
        web.get("/retry-after/{key}", retry_after),
        web.get("/slow", slow),
        web.get("/drip", drip),
        web.get("/big", big),
        web.get("/gzip-bomb", gzip_bomb_handler),
        web.get("/encoded/{coding}", encoded),
        web.get("/charset/{name}", charset),
        web.route("*", "/echo", echo),
        web.get("/callback-raises", _plain("callback raises")),
        web.get("/callback-exits", _plain("callback exits")),
        web.get("/robots.txt", robots),
        web.route("*", "/redirect-to", redirect_to),
        web.get("/set-cookie", set_cookie),
        web.get("/binary", binary),
    ]


def make_app(state: SiteState | None = None) -> web.Application:
    """The test website. Its ``SiteState`` (log and counters) is ``app[STATE]``."""
    app = web.Application(middlewares=[_record])
    app[STATE] = state if state is not None else SiteState()
    app.add_routes(_routes())
    return app
