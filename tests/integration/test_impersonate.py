"""The impersonating fetcher (``fetcher = "impersonate"``, curl_cffi) against real local servers.

Each crawl runs twice where the point is sameness: the aiohttp fetcher and the impersonating one
must give the same items and count the same failures under the same reasons. The handshake test
reads the real ClientHello each client sends to a raw TCP socket on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from conftest import Site
from crawlkit import CrawlStats, Request, Spider, crawl
from crawlkit.errors import FetchError
from crawlkit.fetch import (
    ByteBudget,
    CrawlHostPolicy,
    Downloader,
    Fetcher,
    HeaderProfile,
    Route,
    Session,
)
from crawlkit.frontier import open_frontier
from crawlkit.serve import NetGuard
from crawlkit.settings import Settings
from crawlkit.testing import fetch_response
from crawlspiders.identity_spiders import DefendedShopSpider
from crawlspiders.polite_spiders import CookieSpider, PostRedirectSpider, TrustingUrlsSpider, UrlsSpider
from crawlspiders.spiders import GraphSpider, UrlListSpider
from support.defendedsite import defended_site
from support.forwardproxy import down_proxy_url, forward_proxy
from support.misbehaving import page, serve
from support.procs import wait_for

pytest.importorskip("curl_cffi", reason="the impersonating fetcher needs crawlkit[impersonate] (curl_cffi)")

from crawlkit.fetch import ImpersonateFetcher

FETCHERS = ["aiohttp", "impersonate"]
FAST = {"retry_backoff_base": 0.05, "retry_backoff_max": 0.2}


def run(
    spider: type[Spider], out: Path, settings: dict[str, Any], **kwargs: Any
) -> tuple[CrawlStats, list[dict[str, Any]]]:
    merged: dict[str, Any] = {"frontier": "memory", "parse_workers": 1, **FAST, **settings}
    stats = crawl(spider, out, settings=merged, handle_signals=False, **kwargs)
    data = out.read_bytes() if out.exists() else b""
    return stats, [orjson.loads(line) for line in data.splitlines()]


def test_a_crawl_gives_the_same_items_through_either_fetcher(site: Site, tmp_path: Path) -> None:
    results = {}
    for fetcher in FETCHERS:
        site.reset()
        out = tmp_path / f"{fetcher}.jsonl"
        stats, items = run(GraphSpider, out, {"fetcher": fetcher}, base=site.base, size=150)
        assert stats.ok and stats.failures == {}
        results[fetcher] = sorted(item["n"] for item in items)  # (a node has links of several forms)
        # robots.txt was asked for once (that it goes through curl: the HTTP/2 and handshake tests)
        robots = site.log.entries("/robots.txt")
        assert len(robots) == 1
        agents = {entry.headers.get("User-Agent") for entry in site.log.entries("/graph")}
        assert agents == {robots[0].headers.get("User-Agent")}
        # plain http is HTTP/1.1, as browsers send it: no offer to upgrade to h2c
        assert not any("Upgrade" in entry.headers for entry in site.log.entries("/"))
    assert results["impersonate"] == results["aiohttp"] and len(results["aiohttp"]) > 50


def test_browser_identities_crawl_with_their_own_handshakes(site: Site, tmp_out: Path) -> None:
    pytest.importorskip("browserforge", reason="identities = 'browser' needs crawlkit[identities]")
    settings = {"fetcher": "impersonate", "sessions": "on", "identities": "browser", "session_pool_size": 4}
    stats, items = run(GraphSpider, tmp_out, settings, base=site.base, size=60)
    assert stats.ok and not stats.failures and len(items) > 20
    agents = {entry.headers.get("User-Agent", "") for entry in site.log.entries("/graph")}
    assert agents and all(agent.startswith("Mozilla/5.0") for agent in agents)


def test_a_503_is_retried(site: Site, tmp_out: Path) -> None:
    settings = {"fetcher": "impersonate"}
    stats, items = run(UrlListSpider, tmp_out, settings, base=site.base, paths="/flaky/imp?fail=2")
    assert stats.ok and stats.retries == 2
    assert [item["text"] for item in items] == ["ok3"]  # the third attempt answered
    assert site.log.count("/flaky/imp") == 3


def test_the_per_host_limit_holds(site: Site, tmp_out: Path) -> None:
    paths = ",".join(f"/slow?delay=0.1&i={i}" for i in range(20))
    settings = {"fetcher": "impersonate", "concurrency": 16, "concurrency_per_host": 3}
    stats, items = run(UrlListSpider, tmp_out, settings, base=site.base, paths=paths)
    assert stats.ok and len(items) == 20
    assert site.log.max_in_flight("/slow") == 3  # as many as allowed at once, and no more


async def _hello(request: web.Request) -> web.Response:
    return page("hello")


@pytest.mark.parametrize("fetcher", FETCHERS)
def test_limits_fail_under_the_same_reasons(
    fetcher: str, site: Site, tls_context: ssl.SSLContext, tmp_out: Path
) -> None:
    with serve([web.get("/", _hello)], ssl_context=tls_context) as self_signed:
        urls = [
            site.url("/big?size=200000"),  # declared too large
            site.url("/big?size=200000&chunked=1"),  # found too large while streaming
            site.url("/redirect-loop/a"),
            site.url("/redirect/3"),
            down_proxy_url() + "/",  # nothing listens there
            site.url("/drip?chunks=3&interval=2.5"),  # nothing for longer than read_timeout
            self_signed.url("/"),  # a certificate that does not verify
            site.url("/binary"),  # an image nobody asked for: its body not read
            site.url("/encoded/gzip"),
        ]
        settings = {"fetcher": fetcher, "max_response_size": 100_000, "max_retries": 0, "read_timeout": 1.0}
        stats, items = run(UrlsSpider, tmp_out, settings, urls=" ".join(urls))
    assert stats.failures == {"too_large": 2, "redirects": 1, "connect": 1, "timeout": 1, "tls": 1}
    assert stats.not_parsed == {"binary": 1}
    by_request = {item["request_url"]: item for item in items}
    assert set(by_request) == {site.url("/redirect/3"), site.url("/encoded/gzip")}
    assert by_request[site.url("/redirect/3")]["url"] == site.url("/ok")
    assert by_request[site.url("/encoded/gzip")]["title"]  # inflated by the parser worker


def test_the_crawls_jar_keeps_a_cookie_to_its_host(site: Site, tmp_out: Path) -> None:
    other = f"http://localhost:{site.port}"
    _, items = run(CookieSpider, tmp_out, {"fetcher": "impersonate"}, base=site.base, other=other)
    cookies = {item["url"].split("h=")[1]: item["cookie"] for item in items}
    assert cookies == {"same": "session=s3cret", "other": None}


def test_a_posted_body_follows_redirects_as_with_aiohttp(site: Site, tmp_path: Path) -> None:
    seen = {}
    for fetcher in FETCHERS:
        _, items = run(
            PostRedirectSpider, tmp_path / f"{fetcher}.jsonl", {"fetcher": fetcher}, base=site.base
        )
        seen[fetcher] = sorted((item["code"], item["method"], item["body"]) for item in items)
    assert seen["impersonate"] == seen["aiohttp"]
    assert (307, "POST", "payload=1") in seen["impersonate"] and (303, "GET", "") in seen["impersonate"]


def test_cookie_jars_are_saved_and_restored_as_the_aiohttp_clients_are(site: Site) -> None:
    """What a checkpoint saves (``cookie_jars()``) comes back in a new client (a resumed crawl)."""

    async def visit() -> tuple[list[Any], str | None, str | None]:
        settings = Settings(fetcher="impersonate")
        async with ImpersonateFetcher(settings) as first:
            url = site.url("/set-cookie?name=cart&value=42")
            await first.fetch(Request(url, meta={"cookiejar": "shop"}))
            saved = first.cookie_jars()
        again = ImpersonateFetcher(settings)
        again.restore_cookie_jars(saved)
        async with again:
            mine = await again.fetch(Request(site.url("/echo"), meta={"cookiejar": "shop"}))
            other = await again.fetch(Request(site.url("/echo")))
        return (
            saved,
            orjson.loads(mine.body)["headers"].get("Cookie"),
            orjson.loads(other.body)["headers"].get("Cookie"),
        )

    saved, mine, other = asyncio.run(visit())
    assert [key for key, _ in saved] == ["shop"]
    assert mine == "cart=42" and other is None


def test_a_default_credential_stays_with_its_origin_through_redirects(site: Site) -> None:
    settings = Settings(
        fetcher="impersonate", default_headers={"Authorization": "Bearer t0ken", "Accept": "*/*"}
    )
    other = f"http://localhost:{site.port}/echo"

    async def visit() -> tuple[dict[str, str], dict[str, str]]:
        async with ImpersonateFetcher(settings) as fetcher:
            same = await fetcher.fetch(Request(site.url("/redirect-to?url=/echo")))
            away = await fetcher.fetch(Request(site.url(f"/redirect-to?url={other}")))
        return orjson.loads(same.body)["headers"], orjson.loads(away.body)["headers"]

    same, away = asyncio.run(visit())
    assert same.get("Authorization") == "Bearer t0ken" and same.get("Accept") == "*/*"
    assert "Authorization" not in away and away.get("Accept") == "*/*"


async def _echo_cookie(request: web.Request) -> web.Response:
    response = page(f"cookie {request.headers.get('Cookie')}")
    value = request.query.get("set")
    if value:
        response.set_cookie("sid", value)
    return response


def test_a_proxy_gets_its_credentials_and_the_site_none(tls_context: ssl.SSLContext, tmp_out: Path) -> None:
    with (
        forward_proxy(auth=("crawler", "s3cret")) as proxy,
        serve([web.get("/{p}", _echo_cookie)]) as plain,
        serve([web.get("/{p}", _echo_cookie)], ssl_context=tls_context) as secure,
    ):
        settings = {"fetcher": "impersonate", "proxies": [proxy.url_with_credentials("crawler", "s3cret")]}
        urls = [plain.url("/a"), secure.url("/b")]
        stats, items = run(TrustingUrlsSpider, tmp_out, settings, urls=" ".join(urls))
        assert stats.ok and len(items) == 2
        seen = proxy.seen
        assert {s.method for s in seen} == {"GET", "CONNECT"}
        assert all(s.headers.get("proxy-authorization", "").startswith("Basic ") for s in seen)
        for hit in plain.hits() + secure.hits():
            assert not any(name.lower().startswith("proxy-") for name in hit.headers), hit.headers
            assert "s3cret" not in repr(hit.headers)


def test_a_defended_site_through_four_proxies_as_with_aiohttp(tmp_path: Path) -> None:
    """The identity machinery (sessions, rotation on blocks, proxies resting) is the fetcher's
    caller: with curl_cffi underneath it gives every page once, as with aiohttp."""
    with (
        forward_proxy(auth=("crawler", "s3cret"), name="proxy-auth") as auth,
        forward_proxy(name="proxy-open") as open_,
        forward_proxy(fail_status=502, name="proxy-502") as failing,
        defended_site(40) as site,
    ):
        down = down_proxy_url()
        urls = [auth.url_with_credentials("crawler", "s3cret"), open_.url, down, failing.url]
        settings = {
            "fetcher": "impersonate",
            "proxies": urls,
            "concurrency": 4,
            "concurrency_per_host": 4,
            "max_session_rotations": 10,
        }
        stats, items = run(DefendedShopSpider, tmp_path / "items.jsonl", settings, base=site.url(""))
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(40)}
    assert not stats.failures and site.direct == 0 and site.leaked == []
    assert site.challenges + site.captchas > 0 and stats.sessions["retired"]["blocked"] > 0
    table = {row["proxy"]: row for row in stats.proxies}
    for broken in (down, failing.url):  # a refused connection and a 502: the proxy's errors
        assert 3 <= table[broken]["proxy_errors"] == table[broken]["requests"] <= 6, table[broken]
    assert all(seen.headers.get("proxy-authorization") for seen in auth.seen)


# -- the handshake ----------------------------------------------------------------------------------


GREASE = {0x0A0A + 0x1010 * i for i in range(16)}


def _parse_client_hello(data: bytes) -> dict[str, Any]:
    """Cipher suites, extension types and ALPN protocols of a TLS ClientHello record."""
    assert data[0] == 0x16 and data[5] == 0x01, "not a ClientHello"
    pos = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    pos += 1 + data[pos]  # session id
    ciphers_len = int.from_bytes(data[pos : pos + 2])
    ciphers = [int.from_bytes(data[i : i + 2]) for i in range(pos + 2, pos + 2 + ciphers_len, 2)]
    pos += 2 + ciphers_len
    pos += 1 + data[pos]  # compression methods
    end = pos + 2 + int.from_bytes(data[pos : pos + 2])
    pos += 2
    extensions: list[int] = []
    alpn: list[str] = []
    while pos < end:
        kind, size = int.from_bytes(data[pos : pos + 2]), int.from_bytes(data[pos + 2 : pos + 4])
        body = data[pos + 4 : pos + 4 + size]
        extensions.append(kind)
        if kind == 16:  # ALPN: a list of length-prefixed names
            at = 2
            while at < len(body):
                alpn.append(body[at + 1 : at + 1 + body[at]].decode())
                at += 1 + body[at]
        pos += 4 + size
    return {"ciphers": ciphers, "extensions": extensions, "alpn": alpn}


@contextmanager
def hello_catcher() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A raw TCP server on 127.0.0.1 that reads each ClientHello, records it and hangs up."""
    hellos: list[dict[str, Any]] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve_forever() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5]):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if len(data) >= 5 and data[0] == 0x16:
                    hellos.append(_parse_client_hello(data))

    thread = threading.Thread(target=serve_forever, name="hello-catcher", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/", hellos
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_the_handshake_is_a_browsers_and_not_aiohttps(tmp_path: Path) -> None:
    hellos: dict[str, dict[str, Any]] = {}
    for fetcher in FETCHERS:
        with hello_catcher() as (url, seen):
            settings = {"fetcher": fetcher, "max_retries": 0}
            stats, _ = run(UrlsSpider, tmp_path / f"{fetcher}.jsonl", settings, urls=url)
        assert stats.failures, "a server that hangs up answers nothing"
        assert seen, f"no ClientHello reached the server from {fetcher}"
        # The first came from the robots.txt request: the same client as the pages.
        assert all(h == seen[0] or fetcher == "impersonate" for h in seen)
        hellos[fetcher] = seen[0]
    browser, plain = hellos["impersonate"], hellos["aiohttp"]
    assert GREASE & set(browser["ciphers"]) and GREASE & set(browser["extensions"])
    assert browser["alpn"] == ["h2", "http/1.1"]
    assert not GREASE & set(plain["ciphers"]) and "h2" not in plain["alpn"]
    assert browser["ciphers"] != plain["ciphers"]


CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:135.0) Gecko/20100101 Firefox/135.0"


def _session(sid: str, agent: str) -> Session:
    profile = HeaderProfile(f"browser: {sid}", (("User-Agent", agent), ("Accept-Language", "en-US")))
    return Session(sid, None, profile, 0.0)


def test_each_session_keeps_its_cookies_and_its_browsers_handshake(site: Site) -> None:
    async def visit() -> tuple[dict[str, str | None], list[dict[str, Any]]]:
        chrome, firefox = _session("chrome", CHROME), _session("firefox", FIREFOX)  # (a jar needs a loop)
        cookies = {}
        async with ImpersonateFetcher(Settings(fetcher="impersonate")) as fetcher:
            for session in (chrome, firefox):
                route = Route(session=session)
                await fetcher.fetch(Request(site.url(f"/set-cookie?value={session.id}")), route=route)
                echoed = await fetcher.fetch(Request(site.url("/echo")), route=Route(session=session))
                cookies[session.id] = orjson.loads(echoed.body)["headers"].get("Cookie")
            plain = await fetcher.fetch(Request(site.url("/echo")))  # the crawl's own jar: empty
            cookies["none"] = orjson.loads(plain.body)["headers"].get("Cookie")
            with hello_catcher() as (url, hellos):
                for session in (chrome, firefox):
                    with pytest.raises(FetchError):
                        await fetcher.fetch(Request(url), route=Route(session=session))
        return cookies, hellos

    cookies, hellos = asyncio.run(visit())
    assert cookies == {"chrome": "session=chrome", "firefox": "session=firefox", "none": None}
    agents = [entry.headers.get("User-Agent") for entry in site.log.entries("/echo")]
    assert agents[:2] == [CHROME, FIREFOX]
    chrome_hello, firefox_hello = hellos
    assert GREASE & set(chrome_hello["ciphers"]) and not GREASE & set(firefox_hello["ciphers"])
    assert chrome_hello["extensions"] != firefox_hello["extensions"]


def test_fetch_response_uses_the_fetcher_setting() -> None:
    with hello_catcher() as (url, hellos), pytest.raises(FetchError):
        fetch_response(url, settings={"fetcher": "impersonate", "impersonate": "chrome"})
    assert GREASE & set(hellos[0]["ciphers"]) and "h2" in hellos[0]["alpn"]


_NGINX_CONF = """
daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format proto '$server_protocol $request_uri';
    access_log {folder}/access.log proto;
    client_body_temp_path {folder}; proxy_temp_path {folder}; fastcgi_temp_path {folder};
    uwsgi_temp_path {folder}; scgi_temp_path {folder};
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {folder}/cert.pem;
        ssl_certificate_key {folder}/key.pem;
        location / {{ default_type text/html; return 200 "<title>h2</title>"; }}
    }}
}}
"""


@contextmanager
def nginx_h2(folder: Path) -> Iterator[str]:
    """nginx on 127.0.0.1 with TLS (a self-signed certificate) and HTTP/2 offered by ALPN."""
    nginx, openssl = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("openssl")
    if not Path(nginx).is_file() or openssl is None:
        pytest.skip("needs nginx and openssl")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", str(folder / "key.pem"),
         "-out", str(folder / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (folder / "nginx.conf").write_text(_NGINX_CONF.format(folder=folder, port=port))
    command = [nginx, "-p", str(folder), "-c", str(folder / "nginx.conf")]
    with (folder / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen(command, stderr=stderr)
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, 10, "nginx to listen")
        assert proc.poll() is None, (folder / "stderr.log").read_text()
        yield f"https://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_http2_is_used_where_the_server_offers_it(tmp_path: Path) -> None:
    with nginx_h2(tmp_path) as base:
        for fetcher in FETCHERS:
            out = tmp_path / f"{fetcher}.jsonl"
            urls = f"{base}/{fetcher}"
            stats, items = run(TrustingUrlsSpider, out, {"fetcher": fetcher}, urls=urls)
            assert stats.ok and [item["title"] for item in items] == ["h2"]
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert "HTTP/2.0 /impersonate" in lines and "HTTP/1.1 /aiohttp" in lines
    assert "HTTP/2.0 /robots.txt" in lines  # robots.txt too, through the same client


def test_the_fetch_apis_vetted_resolver_keeps_aiohttp(caplog: pytest.LogCaptureFixture) -> None:
    """A caller's resolver (the fetch API's, which pins connections to vetted addresses) is
    aiohttp's: the setting gives way to it, and says so, rather than go around the check."""

    async def run_both() -> tuple[type, type]:
        settings = Settings(frontier="memory", fetcher="impersonate")
        policy = CrawlHostPolicy.from_settings(settings)
        kinds = []
        guard = NetGuard(allow_private=False)
        for resolver in (None, guard.resolver):
            frontier = open_frontier(settings, policy)
            await frontier.open()
            budget = ByteBudget(settings.max_inflight_bytes)
            downloader = Downloader(
                settings,
                frontier=frontier,
                stats=CrawlStats(),
                host_policy=policy,
                budget=budget,
                resolver=resolver,
            )
            async with downloader:
                kinds.append(type(downloader.fetcher))
            await frontier.close()
        await guard.close()
        return kinds[0], kinds[1]

    plain, guarded = asyncio.run(run_both())
    assert plain is ImpersonateFetcher and guarded is Fetcher
    assert 'fetcher = "impersonate" ignored here' in caplog.text
