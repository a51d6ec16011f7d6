"""Real crawls through real SOCKS 5 proxies on 127.0.0.1 (``support.socksproxy``).

Each working proxy connects out from a loopback address of its own (127.0.0.2, 127.0.0.3), so
the site tells them apart by the address it sees, as a site tells real proxies apart; a request
from 127.0.0.1 came directly.
"""

from __future__ import annotations

import logging
import ssl
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from crawlkit import crawl
from crawlspiders.identity_spiders import DefendedShopSpider
from support.defendedsite import defended_site
from support.misbehaving import serve
from support.socksproxy import down_socks_url, socks_proxy

USER, PASSWORD = "crawler", "s0cks-s3cret"
PAGES = 40
NAME, ADDRESS = 3, 1  # SOCKS 5 address types: a host name, an IPv4 address


def read(out: Path) -> list[dict[str, Any]]:
    data = out.read_bytes() if out.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]


def settings(proxy_urls: list[str], **more: Any) -> dict[str, Any]:
    return {
        "frontier": "memory",
        "parse_workers": 1,
        "concurrency": 4,
        "concurrency_per_host": 4,
        "retry_backoff_base": 0.01,
        "proxies": proxy_urls,
        "max_session_rotations": 10,
        **more,
    }


def _curl_cffi() -> bool:
    try:
        import curl_cffi  # noqa: F401
    except ImportError:
        return False
    return True


FETCHERS = [
    "aiohttp",
    pytest.param(
        "impersonate",
        marks=pytest.mark.skipif(
            not _curl_cffi(), reason="curl_cffi is not installed (crawlkit[impersonate])"
        ),
    ),
]


@pytest.mark.parametrize("fetcher", FETCHERS)
def test_a_defended_site_through_socks_proxies_gives_every_page_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fetcher: str
) -> None:
    out, stats_file = tmp_path / "items.jsonl", tmp_path / "stats.json"
    caplog.set_level(logging.DEBUG)
    down = down_socks_url()
    with (
        socks_proxy(auth=(USER, PASSWORD), source="127.0.0.2") as auth,
        socks_proxy(source="127.0.0.3") as open_,
        socks_proxy(auth=(USER, PASSWORD), source="127.0.0.4") as refusing,
        defended_site(PAGES, by_address=True) as site,
    ):
        wrong = refusing.url_with_credentials(USER, "not-the-password")
        urls = [auth.url_with_credentials(USER, PASSWORD), open_.url("socks5h"), down, wrong]
        stats = crawl(
            DefendedShopSpider,
            out,
            settings=settings(urls, stats_file=str(stats_file), fetcher=fetcher),
            handle_signals=False,
            base=site.url(""),
        )
    items = read(out)
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(PAGES)}
    assert {item["title"] for item in items} == {f"page {n}" for n in range(PAGES)}
    assert stats.items == PAGES and not stats.failures
    # The site defended itself against each proxy's visitors, and each block was seen as one.
    assert site.challenges > 0 and stats.blocks["cloudflare"] == site.challenges
    assert stats.blocks["recaptcha"] == site.captchas
    # Nothing went direct; both working proxies carried pages; the authenticated one was asked
    # with the user name, in the handshake.
    assert site.direct == 0
    assert site.by_proxy["127.0.0.2"] > 0 and site.by_proxy["127.0.0.3"] > 0
    assert auth.seen and all(h.user == USER and h.allowed for h in auth.seen)
    # The one that is down and the one that refuses the password were set aside after a few
    # tries, as proxy errors: none of them cost a page its retries or failed it.
    table = {row["proxy"]: row for row in stats.proxies}
    for broken in (down, f"socks5://***@127.0.0.1:{refusing.port}"):
        row = table[broken]
        assert 3 <= row["proxy_errors"] == row["requests"] <= 6, row
    assert refusing.seen and not any(h.allowed for h in refusing.seen)
    assert not stats.retry_reasons.get("connect") and not stats.retry_reasons.get("transport")
    # No credential reached the site, a log line, the summary or the stats file.
    assert site.leaked == []
    assert f"socks5://***@127.0.0.1:{auth.port}" in table
    for text in (caplog.text, stats.summary(), stats_file.read_text()):
        assert PASSWORD not in text and "not-the-password" not in text


async def _listing(request: web.Request) -> web.Response:
    links = "".join(f'<a href="/page/{n}">{n}</a>' for n in range(20))
    return web.Response(text=f"<title>list</title>{links}", content_type="text/html")


async def _page(request: web.Request) -> web.Response:
    n = request.match_info["n"]
    return web.Response(text=f"<title>page {n}</title>", content_type="text/html")


async def _robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nAllow: /\n")


ROUTES = [web.get("/list", _listing), web.get("/page/{n}", _page), web.get("/robots.txt", _robots)]


def test_https_through_socks_and_who_resolves_the_name(tls_context: ssl.SSLContext, tmp_path: Path) -> None:
    # The site is named "localhost": socks5h:// sends the proxy that name, socks5:// an address
    # resolved here. Both tunnel TLS to the site.
    out = tmp_path / "items.jsonl"
    with (
        socks_proxy(source="127.0.0.2") as remote,
        socks_proxy(auth=(USER, PASSWORD), source="127.0.0.3") as local,
        serve(ROUTES, ssl_context=tls_context) as site,
    ):
        base = f"https://localhost:{site.port}"
        urls = [remote.url("socks5h"), local.url_with_credentials(USER, PASSWORD, "socks5")]
        stats = crawl(
            DefendedShopSpider,
            out,
            settings=settings(urls, verify_tls=False),
            handle_signals=False,
            base=base,
        )
        hits = site.hits()
    assert Counter(item["url"] for item in read(out)) == {f"{base}/page/{n}": 1 for n in range(20)}
    assert not stats.failures and stats.robots == {"parsed": 1}
    assert remote.seen and all((h.host, h.address_type) == ("localhost", NAME) for h in remote.seen)
    assert local.seen and all((h.host, h.address_type) == ("127.0.0.1", ADDRESS) for h in local.seen)
    assert {hit.remote for hit in hits} == {"127.0.0.2", "127.0.0.3"}
    assert not any("Proxy-Authorization" in hit.headers for hit in hits)


def test_all_proxy_in_the_environment_may_name_a_socks_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As curl reads it: ALL_PROXY=socks5h://... carries every http and https URL.
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "items.jsonl"
    with socks_proxy(auth=(USER, PASSWORD), source="127.0.0.2") as proxy, serve(ROUTES) as site:
        monkeypatch.setenv("ALL_PROXY", proxy.url_with_credentials(USER, PASSWORD, "socks5h"))
        stats = crawl(DefendedShopSpider, out, settings=settings([]), handle_signals=False, base=site.base)
        hits = site.hits()
    assert Counter(item["url"] for item in read(out)) == {site.url(f"/page/{n}"): 1 for n in range(20)}
    assert not stats.failures and stats.robots == {"parsed": 1}
    assert {hit.remote for hit in hits} == {"127.0.0.2"} and len(proxy.seen) >= 1
    assert all(h.user == USER for h in proxy.seen)


def test_a_certificate_that_does_not_verify_through_socks_is_the_sites_tls_failure(
    tls_context: ssl.SSLContext, tmp_path: Path
) -> None:
    # The TLS handshake with the site runs inside the SOCKS connector, whose errors aiohttp does
    # not wrap: still the site's "tls" failure, not retried, and nothing against the proxy.
    with socks_proxy(source="127.0.0.2") as proxy, serve(ROUTES, ssl_context=tls_context) as site:
        more = settings([proxy.url("socks5h")], obey_robots=False)
        stats = crawl(
            DefendedShopSpider, tmp_path / "none.jsonl", settings=more, handle_signals=False, base=site.base
        )
    assert stats.failures == {"tls": 1} and not stats.retry_reasons
    assert stats.proxies[0]["proxy_errors"] == 0 and stats.proxies[0]["state"] == "ready"


def test_a_socks_reply_is_the_proxys_failure_or_the_sites_as_it_says(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    # "General SOCKS server failure": the proxy's; the page goes through the other one.
    with (
        socks_proxy(reply=1) as failing,
        socks_proxy(source="127.0.0.2") as working,
        serve(ROUTES) as site,
    ):
        stats = crawl(
            DefendedShopSpider,
            out,
            settings=settings([failing.url(), working.url()]),
            handle_signals=False,
            base=site.base,
        )
    assert Counter(item["url"] for item in read(out)) == {site.url(f"/page/{n}"): 1 for n in range(20)}
    assert not stats.failures and stats.retry_reasons["proxy_error"] >= 3
    row = {row["proxy"]: row for row in stats.proxies}[failing.url()]
    assert 3 <= row["proxy_errors"] == row["requests"] <= 6, row
    # "Connection refused" by the site behind a working proxy: the site's failure, retried within
    # max_retries and then failed; the proxy is not blamed (nor rested).
    with serve(ROUTES) as gone:
        base = gone.base
    with socks_proxy(source="127.0.0.2") as proxy:
        stats = crawl(
            DefendedShopSpider,
            tmp_path / "none.jsonl",
            settings=settings([proxy.url()], max_retries=1, obey_robots=False),
            handle_signals=False,
            base=base,
        )
    assert stats.failures == {"connect": 1} and stats.retry_reasons == {"connect": 1}
    assert stats.proxies[0]["proxy_errors"] == 0 and stats.proxies[0]["state"] == "ready"
    assert len(proxy.seen) == 2  # the first attempt and its one retry, both answered "refused"
