"""Limits on what a server can make us do: redirects, binary bodies, cookies, TLS, close conditions.

Every test runs a real crawl against a server that misbehaves on purpose; the crawl goes on, the
failure is counted by reason, and the items that could be written are all written.
"""

from __future__ import annotations

import contextlib
import socketserver
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from aiohttp import web

from conftest import REPO_ROOT, Site
from crawlkit import CrawlStats, Spider, crawl
from crawlspiders.polite_spiders import (
    BinarySpider,
    CookieSpider,
    LinksSpider,
    OnsiteLinksSpider,
    PostRedirectSpider,
    TrustingUrlsSpider,
    UrlsSpider,
)
from crawlspiders.spiders import GraphSpider
from support.misbehaving import page, serve
from support.testsite import PNG_BYTES

FAST = {"retry_backoff_base": 0.05, "retry_backoff_max": 0.2}


def run(
    spider: type[Spider], out: Path, settings: dict[str, Any] | None = None, **kwargs: Any
) -> tuple[CrawlStats, list[dict[str, Any]]]:
    merged: dict[str, Any] = {"frontier": "memory", "parse_workers": 1, **FAST, **(settings or {})}
    stats = crawl(spider, out, settings=merged, handle_signals=False, **kwargs)
    return stats, [orjson.loads(line) for line in out.read_bytes().splitlines()]


# -- redirects ------------------------------------------------------------------------------------


def test_redirects_chain_loop_and_too_many(site: Site, tmp_out: Path) -> None:
    urls = [site.url("/redirect/5"), site.url("/redirect-loop/a"), site.url("/redirect/25"), site.url("/ok")]
    stats, items = run(UrlsSpider, tmp_out, urls=" ".join(urls))
    by_request = {item["request_url"]: item for item in items}
    assert set(by_request) == {site.url("/redirect/5"), site.url("/ok")}
    assert by_request[site.url("/redirect/5")]["url"] == site.url("/ok")  # response.url is the final URL
    assert stats.failures == {"redirects": 2}  # the loop, and 25 > max_redirects (20)
    assert stats.retries == 0  # a redirect failure is not retried
    # The loop was seen for what it is on its first repeat, not after 20 hops.
    assert site.log.count("/redirect-loop") == 2
    assert site.log.count("/redirect/") == 5 + 21


@pytest.mark.parametrize(
    "target", ["file:///etc/passwd", "data:text/html,<a href=/ok>hi</a>", "ftp://127.0.0.1/x"]
)
def test_a_redirect_to_another_scheme_is_filtered_as_scheme_redirect(
    site: Site, tmp_out: Path, target: str
) -> None:
    stats, items = run(LinksSpider, tmp_out, start=site.url("/redirect-to?url=" + quote(target, safe="")))
    assert items == []
    assert stats.filtered == {"scheme_redirect": 1}
    assert stats.failures == {}  # not a broken redirect: a link the crawl does not follow
    assert stats.ok


@contextlib.contextmanager
def raw_location_server(location: bytes) -> Iterator[str]:
    """A server whose /go answers 302 with ``location`` as raw bytes (aiohttp would encode them);
    every other path is a page."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode("latin-1")
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            if line.split(" ")[1] == "/go":
                head = b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n"
                body = b""
            else:
                body = b"<html><body>page</body></html>"
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                head += b"Content-Length: %d\r\n" % len(body)
            self.wfile.write(head + b"Connection: close\r\n\r\n" + body)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, name="raw-location", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(5)


def test_a_raw_byte_in_location_is_percent_encoded_as_browsers_do(tmp_out: Path) -> None:
    # Latin-1 bytes (not UTF-8) and UTF-8 together: the stray bytes used to be dropped silently,
    # which led to another URL (/caf instead of /caf%E9).
    with raw_location_server(b"/caf\xe9?q=\xe9t\xe9&u=\xc3\xa9") as base:
        stats, items = run(LinksSpider, tmp_out, start=base + "/go")
    assert [item["url"] for item in items] == [base + "/caf%E9?q=%E9t%E9&u=%C3%A9"]
    assert stats.ok


def test_an_offsite_redirect_target_is_filtered_not_fetched(site: Site, tmp_out: Path) -> None:
    other = f"http://localhost:{site.port}"
    stats, items = run(
        LinksSpider,
        tmp_out,
        start=site.url("/redirect-to?url=" + site.url("/redirect/2")),
        settings={"obey_robots": True},
    )
    assert [item["url"] for item in items] == [site.url("/ok")]

    stats, items = run(
        OnsiteLinksSpider, tmp_out, start=site.url(f"/redirect-to?url={other}/ok%3Fvia%3Dredirect")
    )
    assert items == []
    assert stats.filtered == {"offsite_redirect": 1}
    assert stats.ok  # filtered, not failed
    assert site.log.count("/ok", host=f"localhost:{site.port}") == 0  # never fetched


def test_redirect_methods_follow_browsers(site: Site, tmp_out: Path) -> None:
    _, items = run(PostRedirectSpider, tmp_out, base=site.base)
    seen = {item["code"]: (item["method"], item["body"]) for item in items}
    assert seen == {
        301: ("GET", ""),
        302: ("GET", ""),
        303: ("GET", ""),
        307: ("POST", "payload=1"),
        308: ("POST", "payload=1"),
    }


# -- bodies the crawl does not want ---------------------------------------------------------------------


def test_binary_responses_are_not_parsed_unless_asked_for(site: Site, tmp_out: Path) -> None:
    stats, items = run(BinarySpider, tmp_out, base=site.base)
    by_url = {item["url"].split("&n=")[-1] if "n=" in item["url"] else "ok": item for item in items}
    assert by_url["ok"]["title"] == "ok"
    assert by_url["2"] == {
        "url": site.url("/binary?type=application/pdf&n=2"),
        "size": len(PNG_BYTES),
        "magic": "89504e47",
    }
    assert "1" not in by_url  # an image nobody asked for: fetched, counted, not parsed
    assert stats.not_parsed == {"binary": 1}
    # Asked for, but read as text: a clear error, counted, the crawl goes on.
    assert "3" not in by_url and stats.failures == {"callback_error": 1}


def test_misbehaving_bodies_are_cut_and_counted(site: Site, tmp_out: Path) -> None:
    urls = [
        site.url("/gzip-bomb"),
        site.url("/drip?chunks=4&interval=5"),
        site.url("/big?size=3000000&chunked=1"),
        site.url("/ok"),
    ]
    stats, items = run(
        UrlsSpider,
        tmp_out,
        # read_timeout well clear of both sides: the drip pauses 5 s, while the other pages must
        # not stall 2 s between reads even on a loaded machine.
        {"read_timeout": 2.0, "max_response_size": 2_000_000, "max_retries": 0},
        urls=" ".join(urls),
    )
    assert [item["request_url"] for item in items] == [site.url("/ok")]
    assert stats.failures == {
        "timeout": 1,
        "too_large": 2,  # one read past the cap, one (the bomb) inflated past it in the worker
    }
    assert stats.pages_failed == 3


# -- cookies and TLS ------------------------------------------------------------------------------


def test_cookies_stay_with_the_host_that_set_them(site: Site, tmp_out: Path) -> None:
    # 127.0.0.1 and localhost are two hosts on one server: the jar must keep them apart.
    _, items = run(CookieSpider, tmp_out, base=site.base, other=f"http://localhost:{site.port}")
    cookies = {item["url"].split("h=")[1]: item["cookie"] for item in items}
    assert cookies == {"same": "session=s3cret", "other": None}


def test_and_back_the_other_way(site: Site, tmp_out: Path) -> None:
    _, items = run(CookieSpider, tmp_out, base=f"http://localhost:{site.port}", other=site.base)
    cookies = {item["url"].split("h=")[1]: item["cookie"] for item in items}
    assert cookies == {"same": "session=s3cret", "other": None}


async def _hello(request: web.Request) -> web.Response:
    return page("secret page")


def test_tls_is_verified_by_default_and_can_be_turned_off_per_spider(
    tls_context: ssl.SSLContext, tmp_out: Path
) -> None:
    with serve([web.get("/", _hello)], ssl_context=tls_context) as server:
        stats, items = run(UrlsSpider, tmp_out, urls=server.url("/"))
        assert items == [] and stats.failures == {"tls": 1}
        assert stats.retries == 0  # a certificate that does not verify will not verify later

        stats = crawl(
            TrustingUrlsSpider,
            tmp_out,
            settings={"frontier": "memory", "parse_workers": 0},
            urls=server.url("/"),
        )
        assert stats.ok and stats.items == 1


# -- close conditions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("close_after_items", 20, "close_after_items (20)"),
        ("close_after_pages", 30, "close_after_pages (30)"),
    ],
)
@pytest.mark.parametrize("frontier", ["memory", "sqlite"])
def test_close_after_items_or_pages_stops_cleanly(
    site: Site, tmp_out: Path, setting: str, value: int, reason: str, frontier: str
) -> None:
    stats, items = run(
        GraphSpider,
        tmp_out,
        {setting: value, "concurrency": 4, "frontier": frontier, "job_dir": str(tmp_out.parent / "job")},
        base=site.base,
        size=500,
    )
    assert stats.stop_reason == reason
    counted = stats.items if setting == "close_after_items" else stats.pages
    # What was in flight finishes: up to 4 pages fetched or parsed, and 4 parsed ones committing.
    assert value <= counted < value + 2 * 4 + 2
    assert len(items) == stats.items  # every item counted was written, none twice
    assert len({item["n"] for item in items}) == len(items)
    assert stats.pages < 500 and stats.ok


def test_close_after_errors_and_after_seconds(site: Site, tmp_out: Path) -> None:
    urls = [site.url(f"/status/404?i={i}") for i in range(20)]
    stats, _ = run(UrlsSpider, tmp_out, {"close_after_errors": 3, "concurrency": 1}, urls=" ".join(urls))
    assert stats.stop_reason == "close_after_errors (3)" and stats.pages_failed == 3

    urls = [site.url(f"/slow?delay=0.2&i={i}") for i in range(40)]
    stats, items = run(
        UrlsSpider, tmp_out, {"close_after_seconds": 0.5, "concurrency": 2}, urls=" ".join(urls)
    )
    assert stats.stop_reason == "close_after_seconds (0.5 s)"
    assert 2 <= len(items) < 12 and len(items) == stats.items  # of 40, two at a time, 0.2 s each


def test_a_close_condition_exits_like_a_finished_crawl(site: Site, tmp_path: Path) -> None:
    spider = tmp_path / "spider.py"
    spider.write_text(
        textwrap.dedent(
            f"""
            from crawlkit import Request, Spider

            class Pages(Spider):
                name = "pages"

                def start_requests(self):
                    for i in range(30):
                        yield Request("{site.base}/status/200?i=" + str(i))

                def parse(self, response):
                    yield {{"url": response.url}}
            """
        )
    )
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", str(out), "--frontier", "memory",
         "-s", "close_after_items=5", "-s", "concurrency=1", "-s", "parse_workers=0"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT / "src")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr  # not 3: nothing is left to resume
    assert "stopped because" in proc.stderr and "close_after_items (5)" in proc.stderr
    assert 5 <= len(out.read_bytes().splitlines()) <= 6
