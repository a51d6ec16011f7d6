"""How to unit-test a spider with ``crawlkit.testing``: an example that uses the public API only.

It tests the example spider (``spiders/bookshop.py``) on the demo bookshop's generated pages,
both as saved HTML and served for real by a local fixture server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawlkit.demo import DemoSite, expected_items_for, generate, make_app
from crawlkit.testing import fetch_response, fixture_server, load_spider, run_callback

Bookshop = load_spider(Path(__file__).resolve().parents[2] / "spiders" / "bookshop.py")
BASE = "http://shop.test/"


@pytest.fixture(scope="module")
def shop() -> DemoSite:
    return generate(n_books=60)


@pytest.fixture(scope="module")
def shop_url(shop: DemoSite) -> Iterator[str]:
    with fixture_server(make_app(shop)) as url:
        yield url + "/"


def test_parse_book_on_saved_html(shop: DemoSite) -> None:
    expected = expected_items_for(shop, BASE)[0]
    path = str(expected["url"]).removeprefix(BASE.rstrip("/"))
    html = shop.pages[path].body  # what a saved page holds: bytes, encoding found as a crawl would
    result = run_callback(Bookshop, html, url=str(expected["url"]), callback="parse_book", base_url=BASE)
    assert result.items == [expected]
    # Related books are followed with the same callback.
    assert result.requests and {r.callback for r in result.requests} == {"parse_book"}
    assert all(url.startswith(BASE + "book/") for url in result.urls)


def test_parse_book_decodes_a_legacy_encoding(shop: DemoSite) -> None:
    page = shop.pages[shop.legacy_book].body  # windows-1252, declared in a <meta> tag
    result = run_callback(Bookshop, page, url=BASE + shop.legacy_book.lstrip("/"), callback="parse_book")
    assert result.records[0]["title"] == "Café Crème — Éclairs"


def test_a_listing_page_served_for_real(shop: DemoSite, shop_url: str) -> None:
    response = fetch_response(shop_url + "catalogue/page-1.html")  # crawlkit's own fetcher, gzip and all
    assert response.status == 200
    result = run_callback(Bookshop, response, base_url=shop_url)
    assert result.items == []
    books = [r for r in result.requests if r.callback == "parse_book"]
    assert len(books) == 20
    assert all(r.url.startswith((shop_url + "book/", shop_url + "go/")) for r in books)  # go/: a redirect
    assert shop_url + "catalogue/page-2.html" in result.urls  # the next page, with parse


def test_every_book_page_served_for_real_gives_its_expected_item(shop: DemoSite, shop_url: str) -> None:
    for expected in expected_items_for(shop, shop_url)[:10]:
        result = run_callback(Bookshop, fetch_response(str(expected["url"])), callback="parse_book")
        assert result.items == [expected]


def test_a_folder_of_saved_pages(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<h1>Hi</h1><a href="/about.html">about</a>')
    with fixture_server(tmp_path) as url:
        response = fetch_response(url + "/")
        assert response.css_first("h1").text() == "Hi"
        assert fetch_response(url + "/missing.html").status == 404
    with fixture_server({"/x": "<p>mapped</p>"}) as url:
        assert fetch_response(url + "/x").css_first("p").text() == "mapped"
