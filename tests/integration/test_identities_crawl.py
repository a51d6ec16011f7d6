"""Real crawls through real forward proxies on 127.0.0.1, in front of a site that defends itself.

Four proxies: one that wants credentials, one open, one down, one that answers 502 to everything.
The site (``support.defendedsite``) refuses direct requests, bans a (proxy, cookie) pair after a
few pages with a 403 challenge page, serves a CAPTCHA page under a 200 now and then, and records
any credential that reaches it.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from crawlkit import Request, Response, crawl
from crawlkit.fetch import Classification
from crawlspiders.identity_spiders import DefendedShopSpider
from support import procs
from support.defendedsite import DefendedSite, defended_site
from support.forwardproxy import ForwardProxy, down_proxy_url, forward_proxy
from support.misbehaving import serve

USER, PASSWORD = "crawler", "pr0xy-s3cret"
PAGES = 60
SPIDERS = Path(__file__).parent.parent / "crawlspiders" / "identity_spiders.py"


@pytest.fixture
def proxies() -> Iterator[tuple[ForwardProxy, ForwardProxy, ForwardProxy]]:
    with (
        forward_proxy(auth=(USER, PASSWORD), name="proxy-auth") as auth,
        forward_proxy(name="proxy-open") as open_,
        forward_proxy(fail_status=502, name="proxy-502") as failing,
    ):
        yield auth, open_, failing


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


def test_a_defended_site_through_four_proxies_gives_every_page_once_and_no_challenge(
    proxies: tuple[ForwardProxy, ForwardProxy, ForwardProxy], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    auth, open_, failing = proxies
    down = down_proxy_url()
    urls = [auth.url_with_credentials(USER, PASSWORD), open_.url, down, failing.url]
    out, stats_file = tmp_path / "items.jsonl", tmp_path / "stats.json"
    caplog.set_level(logging.DEBUG)
    with defended_site(PAGES) as site:
        stats = crawl(
            DefendedShopSpider,
            out,
            settings=settings(urls, stats_file=str(stats_file)),
            handle_signals=False,
            base=site.url(""),
        )
    items = read(out)
    # Every page's item exactly once, and none from a challenge or CAPTCHA page.
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(PAGES)}
    assert {item["title"] for item in items} == {f"page {n}" for n in range(PAGES)}
    assert stats.items == PAGES and not stats.failures
    # The site defended itself, and the crawl saw it: challenges and CAPTCHAs, each a block.
    assert site.challenges > 0 and site.captchas > 0
    assert stats.blocks["cloudflare"] == site.challenges
    assert stats.blocks["recaptcha"] == site.captchas
    # Each block retired its session; two requests of one session blocked at once retire it once.
    blocks = site.challenges + site.captchas
    assert 0 < stats.sessions["retired"]["blocked"] <= blocks
    # Nothing went direct, and both working proxies carried pages.
    assert site.direct == 0
    assert site.by_proxy["1.1 proxy-auth"] > 0 and site.by_proxy["1.1 proxy-open"] > 0
    # The broken proxies were set aside after a few tries (three failures in a row rest one).
    table = {row["proxy"]: row for row in stats.proxies}
    for broken in (down, failing.url):
        row = table[broken]
        assert 3 <= row["proxy_errors"] == row["requests"] <= 6, row
    assert len(failing.seen) == table[failing.url]["requests"]
    assert table[open_.url]["successes"] > 0
    # No credential reached the site, or any log line, the summary or the stats file.
    assert site.leaked == []
    assert all(seen.headers.get("proxy-authorization") for seen in auth.seen)
    assert f"http://***@127.0.0.1:{auth.port}" in table  # shown redacted
    for text in (caplog.text, stats.summary(), stats_file.read_text()):
        assert PASSWORD not in text
    assert f"http://***@127.0.0.1:{auth.port} (ready)" in stats.summary()


class SolvingSpider(DefendedShopSpider):
    """Answers each CAPTCHA page with the same request, marked as solved."""

    async def solve_captcha(self, request: Request, response: Response, verdict: Classification) -> Request:
        assert verdict.reason == "recaptcha" and response.status == 200
        return request.replace(dont_filter=True, meta={**request.meta, "solved": True})

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        for item in super().parse_page(response):
            yield {**item, "solved": bool(response.meta.get("solved"))}


def test_a_captcha_solver_is_asked_about_each_captcha_page(
    proxies: tuple[ForwardProxy, ForwardProxy, ForwardProxy], tmp_path: Path
) -> None:
    _, open_, _ = proxies
    out = tmp_path / "items.jsonl"
    with defended_site(PAGES, ban_after=None, captcha_every=5) as site:
        stats = crawl(
            SolvingSpider, out, settings=settings([open_.url]), handle_signals=False, base=site.url("")
        )
    items = read(out)
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(PAGES)}
    assert site.captchas > 0 and stats.captchas_solved == site.captchas
    assert stats.sessions["retired"] == {"blocked": site.captchas}
    assert any(item["solved"] for item in items)


def test_without_a_proxy_a_challenge_page_fails_as_blocked_and_never_reaches_a_callback(
    tmp_path: Path,
) -> None:
    out = tmp_path / "items.jsonl"
    with defended_site(PAGES) as site:  # every direct request is refused with a 403
        stats = crawl(DefendedShopSpider, out, settings=settings([]), handle_signals=False, base=site.url(""))
    assert read(out) == []
    assert stats.failures == {"blocked": 1} and stats.blocks == {"status_403": 1}
    assert site.direct == 2  # robots.txt, then /list: no session to rotate, not tried again


def crawl_command(site: DefendedSite, proxy_url: str, out: Path, job: Path) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(SPIDERS), "-o", str(out),
        "--job-dir", str(job), "-a", f"base={site.url('')}", "--concurrency", "2",
        "-s", f"proxies={proxy_url}", "-s", "commit_interval=0.1", "-s", "parse_workers=1",
        "-s", "download_delay=0.05", "--log-level", "WARNING",
    ]  # fmt: skip


def test_a_resumed_crawl_keeps_its_sessions(tmp_path: Path) -> None:
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    with (
        forward_proxy(name="proxy-one") as proxy,
        defended_site(80, ban_after=None, captcha_every=None) as site,
    ):
        cmd = crawl_command(site, proxy.url, out, job)
        proc = procs.start(cmd, tmp_path)
        procs.wait_for_lines(out, 15, proc)
        time.sleep(0.3)  # a checkpoint or two after those items
        proc.send_signal(signal.SIGKILL)
        code, err = procs.finish(proc, timeout=30)
        assert code == -signal.SIGKILL, err
        issued = list(site.issued)
        assert issued, "the site gave the crawl's sessions their cookies"
        served = sum(site.seen.values())
        code, err = procs.finish(procs.start(cmd, tmp_path), timeout=120)
        assert code == 0, err
        # After the resume the same visitors went on: their cookies were sent again, and the
        # site had no new visitor to give a cookie to.
        assert site.issued == issued
        assert sum(site.seen.values()) > served
    items = read(out)
    assert Counter(item["url"] for item in items) == {site.url(f"/page/{n}"): 1 for n in range(80)}


async def _listing(request: web.Request) -> web.Response:
    links = "".join(f'<a href="/page/{n}">{n}</a>' for n in range(20))
    return web.Response(text=f"<title>list</title>{links}", content_type="text/html")


async def _page(request: web.Request) -> web.Response:
    n = request.match_info["n"]
    return web.Response(text=f"<title>page {n}</title>", content_type="text/html")


async def _robots(request: web.Request) -> web.Response:
    return web.Response(text="User-agent: *\nAllow: /\n")


def test_a_failed_connect_tunnel_is_the_proxys_error_and_goes_through_another(
    proxies: tuple[ForwardProxy, ForwardProxy, ForwardProxy], tls_context: ssl.SSLContext, tmp_path: Path
) -> None:
    # aiohttp raises ClientHttpProxyError when a CONNECT is answered 502 (or 407): a ProxyError,
    # gone again through the other proxy, not a ProtocolError that fails the page.
    auth, _, failing = proxies
    out = tmp_path / "items.jsonl"
    routes = [web.get("/list", _listing), web.get("/page/{n}", _page), web.get("/robots.txt", _robots)]
    with serve(routes, ssl_context=tls_context) as site:
        stats = crawl(
            DefendedShopSpider,
            out,
            settings=settings([auth.url_with_credentials(USER, PASSWORD), failing.url], verify_tls=False),
            handle_signals=False,
            base=site.base,
        )
        hits = site.hits()
    assert Counter(item["url"] for item in read(out)) == {site.url(f"/page/{n}"): 1 for n in range(20)}
    assert not stats.failures and stats.retry_reasons["proxy_error"] >= 1 and stats.robots == {"parsed": 1}
    table = {row["proxy"]: row for row in stats.proxies}
    assert 3 <= table[failing.url]["proxy_errors"] == table[failing.url]["requests"] <= 6
    # The credentials went in the CONNECT, to the proxy; never inside the tunnel to the site.
    connects = [seen for seen in auth.seen if seen.method == "CONNECT"]
    assert connects and all(seen.headers.get("proxy-authorization") for seen in connects)
    assert not any("Proxy-Authorization" in hit.headers for hit in hits)
