"""The generated demo bookshop: deterministic, big enough, and awkward in the promised ways."""

from __future__ import annotations

import asyncio
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest
from selectolax.lexbor import LexborHTMLParser

import crawlkit.demo as demo_site
from crawlkit.demo import CATALOGUE_REDIRECT, MISSING_BOOK, DemoSite, expected_items_for, generate
from crawlkit.http import Request, Response

ROOT = "http://127.0.0.1:8080/"


@pytest.fixture(scope="module")
def site() -> DemoSite:
    return generate()


def links(site: DemoSite, path: str) -> set[str]:
    """Paths of every <a href> on a page, resolved the way a browser would."""
    page = site.pages[path]
    response = Response(
        urljoin(ROOT, path), page.status, {"Content-Type": page.content_type}, page.body, Request(ROOT)
    )
    hrefs = (node.attributes.get("href") for node in response.css("a[href]"))
    return {urlsplit(urljoin(response.url, href)).path for href in hrefs if href}


def book_paths(site: DemoSite) -> set[str]:
    return {path for path, page in site.pages.items() if path.startswith("/book/") and page.status == 200}


def listing_paths(site: DemoSite) -> list[str]:
    return [p for p in site.pages if p.startswith(("/catalogue/page-", "/category/"))]


def test_same_seed_gives_identical_bytes() -> None:
    first, second = generate(seed=11), generate(seed=11)
    assert first.pages == second.pages
    assert first.expected_items == second.expected_items


def test_another_seed_gives_another_site() -> None:
    assert generate(seed=1).pages["/"].body != generate(seed=2).pages["/"].body


def test_default_site_has_at_least_500_pages(site: DemoSite) -> None:
    assert len(site.pages) >= 500
    assert len(book_paths(site)) == 600


def test_too_few_books_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 10"):
        generate(n_books=3)


def test_one_expected_item_per_book_page(site: DemoSite) -> None:
    assert len(site.expected_items) == len(book_paths(site))
    assert {item["url"] for item in site.expected_items} == book_paths(site)
    for item in site.expected_items:
        assert set(item) == {"url", "title", "price", "upc", "availability", "category"}
        assert isinstance(item["price"], float)


def test_expected_items_for_makes_urls_absolute(site: DemoSite) -> None:
    items = expected_items_for(site, "http://127.0.0.1:4321/")
    assert len(items) == len(site.expected_items)
    assert all(str(item["url"]).startswith("http://127.0.0.1:4321/book/") for item in items)
    assert str(site.expected_items[0]["url"]).startswith("/book/")


def test_every_book_is_reachable_from_the_home_page(site: DemoSite) -> None:
    seen, queue, missing = {"/"}, deque(["/"]), set()
    while queue:
        path = queue.popleft()
        page = site.pages.get(path)
        if page is None:
            missing.add(path)
            continue
        targets = {page.location} if page.location else links(site, path) if page.status == 200 else set()
        for target in targets - seen:
            seen.add(target)
            queue.append(target)
    assert book_paths(site) <= seen
    assert missing == {MISSING_BOOK}


def test_home_links_to_the_catalogue_redirect_and_categories(site: DemoSite) -> None:
    home = links(site, "/")
    assert CATALOGUE_REDIRECT in home
    assert len({p for p in home if p.startswith("/category/")}) == 6
    redirect = site.pages[CATALOGUE_REDIRECT]
    assert (redirect.status, redirect.location) == (301, "/catalogue/page-1.html")
    assert site.pages["/catalogue/page-1.html"].status == 200


def test_pagination_links_are_relative(site: DemoSite) -> None:
    body = site.pages["/catalogue/page-1.html"].body
    assert b'<li class="next"><a href="page-2.html">' in body
    assert b'href="../book/' in body


def test_go_link_redirects_to_a_book_and_is_linked_from_a_listing(site: DemoSite) -> None:
    page = site.pages[site.redirected_book]
    assert page.status == 302
    assert page.location in book_paths(site)
    assert any(site.redirected_book in links(site, p) for p in listing_paths(site))


def test_broken_link_is_linked_but_not_served(site: DemoSite) -> None:
    assert MISSING_BOOK not in site.pages
    assert any(MISSING_BOOK in links(site, p) for p in listing_paths(site))


def test_book_pages_link_to_three_related_books(site: DemoSite) -> None:
    path = next(iter(sorted(book_paths(site))))
    tree = LexborHTMLParser(site.pages[path].body)
    related = [node.attributes["href"] for node in tree.css("section.related a")]
    assert len(related) == 3
    assert all(urljoin(path, str(href)) in book_paths(site) for href in related)


def test_legacy_page_is_windows_1252_declared_only_in_meta(site: DemoSite) -> None:
    page = site.pages[site.legacy_book]
    assert page.content_type == "text/html"
    assert b'<meta charset="windows-1252">' in page.body[:1024]
    with pytest.raises(UnicodeDecodeError):
        page.body.decode("utf-8")
    assert "<h1>Café Crème — Éclairs</h1>" in page.body.decode("cp1252")
    item = next(i for i in site.expected_items if i["url"] == site.legacy_book)
    assert item["title"] == "Café Crème — Éclairs"


def test_crawlkit_response_decodes_the_legacy_page(site: DemoSite) -> None:
    page = site.pages[site.legacy_book]
    url = urljoin(ROOT, site.legacy_book)
    response = Response(url, 200, {"Content-Type": page.content_type}, page.body, Request(url))
    assert response.encoding == "cp1252"
    assert response.css_first("h1").text(strip=True) == "Café Crème — Éclairs"


def test_other_html_pages_are_utf8_with_a_charset_header(site: DemoSite) -> None:
    for path, page in site.pages.items():
        if path != site.legacy_book and page.content_type.startswith("text/html"):
            assert page.content_type == "text/html; charset=utf-8"
            page.body.decode("utf-8")


def test_titles_use_non_ascii_text(site: DemoSite) -> None:
    titles = [str(item["title"]) for item in site.expected_items]
    assert sum(not title.isascii() for title in titles) > 50


def test_only_localhost_is_accepted() -> None:
    with pytest.raises(SystemExit) as exc:
        demo_site.main(["--host", "0.0.0.0", "--port", "0"])
    assert exc.value.code == 2
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        demo_site.serve(host="localhost")

    async def enter() -> None:
        async with demo_site.running(generate(n_books=10), host="0.0.0.0"):
            pass

    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        asyncio.run(enter())
