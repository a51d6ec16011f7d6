"""The demo bookshop served for real on 127.0.0.1, and the example spider run against its pages."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import re
import signal
import subprocess
import sys
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest

from crawlkit.demo import (
    CATALOGUE_REDIRECT,
    MISSING_BOOK,
    DemoSite,
    expected_items_for,
    generate,
    running,
)
from crawlkit.http import Request, Response
from crawlkit.spider import Spider
from support.procs import first_line, reaped

SPIDER_FILE = Path(__file__).resolve().parents[2] / "spiders" / "bookshop.py"
BASE = "http://127.0.0.1:8123/"


@pytest.fixture(scope="module")
def site() -> DemoSite:
    return generate()


@pytest.fixture(scope="module")
def bookshop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bookshop_example_spider", SPIDER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_spider(bookshop: ModuleType) -> Spider:
    spider: Spider = bookshop.Bookshop(base_url=BASE)
    return spider


def response_for(site: DemoSite, path: str, request: Request | None = None) -> Response:
    page = site.pages[path]
    url = urljoin(BASE, path)
    headers = {"Content-Type": page.content_type}
    return Response(url, page.status, headers, page.body, request or Request(url))


# --- the real server --------------------------------------------------------------------------------


async def fetch_all(site: DemoSite) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with running(site) as root, aiohttp.ClientSession(auto_decompress=False) as session:
        results["root"] = root
        plain = {"Accept-Encoding": "identity"}
        async with session.get(root, headers=plain) as r:
            results["home"] = (r.status, r.headers.get("Content-Encoding"), await r.read())
        async with session.get(urljoin(root, CATALOGUE_REDIRECT), allow_redirects=False) as r:
            results["redirect"] = (r.status, r.headers.get("Location"))
        async with session.get(urljoin(root, site.redirected_book), allow_redirects=False) as r:
            results["go"] = (r.status, r.headers.get("Location"))
        async with session.get(urljoin(root, MISSING_BOOK), headers=plain) as r:
            results["missing"] = (r.status, await r.read())
        async with session.get(
            urljoin(root, "/catalogue/page-2.html"), headers={"Accept-Encoding": "gzip"}
        ) as r:
            results["gzip"] = (r.status, r.headers.get("Content-Encoding"), await r.read())
        async with session.get(urljoin(root, site.legacy_book), headers=plain) as r:
            results["legacy"] = (r.headers.get("Content-Type"), await r.read())
        # As a crawler sees it: redirects followed, body decompressed.
        async with aiohttp.ClientSession() as crawler, crawler.get(urljoin(root, CATALOGUE_REDIRECT)) as r:
            results["followed"] = (r.status, str(r.url), await r.read())
    return results


@pytest.fixture(scope="module")
def served(site: DemoSite) -> dict[str, Any]:
    return asyncio.run(fetch_all(site))


def test_server_binds_localhost_on_a_free_port(served: dict[str, Any]) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", served["root"])
    assert not served["root"].endswith(":0/")


def test_home_page_is_served_verbatim(site: DemoSite, served: dict[str, Any]) -> None:
    assert served["home"] == (200, None, site.pages["/"].body)


def test_catalogue_redirects(served: dict[str, Any], site: DemoSite) -> None:
    assert served["redirect"] == (301, "/catalogue/page-1.html")
    assert served["go"] == (302, site.pages[site.redirected_book].location)
    status, final_url, body = served["followed"]
    assert (status, final_url) == (200, urljoin(served["root"], "/catalogue/page-1.html"))
    assert body == site.pages["/catalogue/page-1.html"].body


def test_missing_page_is_404_with_html(served: dict[str, Any]) -> None:
    status, body = served["missing"]
    assert status == 404
    assert b"Page not found" in body


def test_gzip_when_asked(site: DemoSite, served: dict[str, Any]) -> None:
    status, coding, body = served["gzip"]
    assert (status, coding) == (200, "gzip")
    assert gzip.decompress(body) == site.pages["/catalogue/page-2.html"].body


def test_legacy_page_content_type_has_no_charset(site: DemoSite, served: dict[str, Any]) -> None:
    assert served["legacy"] == ("text/html", site.pages[site.legacy_book].body)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_command_line_server_announces_itself_and_stops_on_signal(sig: signal.Signals) -> None:
    cmd = [sys.executable, "-m", "crawlkit.demo", "--port", "0", "--books", "30"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with reaped(proc):
        line = first_line(proc)
        match = re.fullmatch(r"serving (http://127\.0\.0\.1:(\d+)/)\n", line)
        assert match, line

        async def get_home() -> bytes:
            async with aiohttp.ClientSession() as session, session.get(match.group(1)) as r:
                assert r.status == 200
                return await r.read()

        assert b"Les Livres" in asyncio.run(get_home())
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == ""


def test_command_line_refuses_other_hosts() -> None:
    cmd = [sys.executable, "-m", "crawlkit.demo", "--host", "0.0.0.0", "--port", "0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "127.0.0.1" in result.stderr
    assert result.stdout == ""


# --- the example spider against generated pages -------------------------------------------------------


def expected_item(site: DemoSite, path: str) -> dict[str, Any]:
    return next(i for i in expected_items_for(site, BASE) if i["url"] == urljoin(BASE, path))


def test_spider_starts_at_base_url(bookshop: ModuleType) -> None:
    spider = make_spider(bookshop)
    assert spider.name == "bookshop"
    assert [r.url for r in spider.start_requests()] == [BASE]  # type: ignore[union-attr]
    assert bookshop.Bookshop().base_url == "http://127.0.0.1:8080/"


def test_parse_book_yields_exactly_the_expected_item(site: DemoSite, bookshop: ModuleType) -> None:
    spider = make_spider(bookshop)
    books = sorted(str(i["url"]) for i in site.expected_items)
    go_target = site.pages[site.redirected_book].location
    assert go_target is not None
    for path in [books[0], books[-1], site.legacy_book, go_target]:
        output = list(spider.parse_book(response_for(site, path)))  # type: ignore[attr-defined]
        items = [o for o in output if not isinstance(o, Request)]
        assert items == [expected_item(site, path)]
        related = [o for o in output if isinstance(o, Request)]
        assert len(related) == 3
        assert all(r.callback == "parse_book" and r.url.startswith(BASE + "book/") for r in related)


def test_parse_follows_categories_pagination_and_books(site: DemoSite, bookshop: ModuleType) -> None:
    spider = make_spider(bookshop)
    requests = list(spider.parse(response_for(site, "/catalogue/page-2.html")))  # type: ignore[arg-type]
    by_callback: dict[str | None, set[str]] = {}
    for r in requests:
        by_callback.setdefault(r.callback, set()).add(urlsplit(r.url).path)
    assert "/catalogue/page-3.html" in by_callback[None]
    assert CATALOGUE_REDIRECT in by_callback[None]
    assert {f"/category/{slug}/page-1.html" for slug in ("fiction", "travel")} <= by_callback[None]
    assert len(by_callback["parse_book"]) == 20
    assert "/catalogue/page-1.html" not in by_callback[None]  # "previous" is not followed


def crawl_in_memory(
    site: DemoSite, spider: Spider, *, dedup_redirect_targets: bool
) -> tuple[list[Any], Counter[int]]:
    """A breadth-first crawl of ``site.pages`` driving the spider's callbacks, engine-free."""
    seen: set[bytes] = set()
    queue: deque[Request] = deque()
    items: list[Any] = []
    statuses: Counter[int] = Counter()

    def schedule(requests: Iterator[Any] | Any) -> None:
        for out in requests:
            if not isinstance(out, Request):
                items.append(out)
            elif out.fingerprint not in seen:
                seen.add(out.fingerprint)
                queue.append(out)

    schedule(spider.start_requests())
    while queue:
        request = queue.popleft()
        url = request.url
        page = site.pages.get(urlsplit(url).path)
        while page is not None and page.location is not None:
            statuses[page.status] += 1
            url = urljoin(url, page.location)
            target = request.replace(url=url).fingerprint
            if dedup_redirect_targets and target in seen:
                break
            seen.add(target)
            page = site.pages.get(urlsplit(url).path)
        if page is None:
            statuses[404] += 1
            continue
        if page.location is not None:  # a redirect to a page already crawled
            continue
        statuses[page.status] += 1
        response = Response(url, page.status, {"Content-Type": page.content_type}, page.body, request)
        schedule(getattr(spider, request.callback or "parse")(response) or ())
    return items, statuses


@pytest.mark.parametrize("dedup_redirect_targets", [True, False])
def test_spider_scrapes_exactly_the_expected_items(
    site: DemoSite, bookshop: ModuleType, dedup_redirect_targets: bool
) -> None:
    items, statuses = crawl_in_memory(
        site, make_spider(bookshop), dedup_redirect_targets=dedup_redirect_targets
    )
    key = lambda item: item["url"]  # noqa: E731
    assert sorted(items, key=key) == sorted(expected_items_for(site, BASE), key=key)
    assert statuses[404] == 1  # the broken link, nothing else
    assert (statuses[301], statuses[302]) == (1, 1)
