"""The bookshop that ``python -m crawlkit.demo`` serves: ``generate()`` builds every page in memory.

The README's tutorial and the end-to-end tests need a site that is big enough to show concurrency
(hundreds of pages), awkward in the ways real sites are (relative links, duplicate links, redirects,
a broken link, a page in a legacy encoding, gzip) and yet fully known in advance, so a crawl's
output can be checked item by item. Everything is generated from a seed: the same seed gives
byte-identical pages, and ``DemoSite.expected_items`` lists exactly what the example spider
(``spiders/bookshop.py``) must scrape.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import urljoin

from ._bookshop_catalogue import (
    BOOKS_PER_PAGE,
    CATALOGUE_REDIRECT,
    CATEGORIES,
    LEGACY_TITLE,
    SHOP_NAME,
    Book,
    BookItem,
    category_page,
    make_book,
    pages_needed,
)
from ._bookshop_html import CSS, book_page, layout, listing, missing_card, product_card
from ._page import Page, html_page, redirect_page
from ._page import escape as _esc

__all__ = ["DemoSite", "expected_items_for", "generate"]


@dataclass(frozen=True, slots=True)
class DemoSite:
    """The whole generated site and the items a correct crawl of it yields.

    ``pages`` maps a path to its answer; any other path is a 404. ``expected_items`` holds one item
    per book page with ``url`` as a path, because the port is only known once the server runs (see
    ``expected_items_for``). ``legacy_book`` is the windows-1252 page and ``redirected_book`` the
    ``/go/<id>`` path that redirects to a book; tests use them to find those pages.
    """

    pages: dict[str, Page]
    expected_items: list[BookItem]
    legacy_book: str
    redirected_book: str


def generate(n_books: int = 600, seed: int = 7) -> DemoSite:
    """Build the whole site in memory; the same arguments always give byte-identical pages.

    Every book is reachable both from the catalogue and from its category's listing, except the one
    behind ``/go/<id>``: it is linked only through that redirect (from both listings), so the set of
    expected items does not depend on whether a crawler deduplicates redirect targets.
    """
    if n_books < 10:
        raise ValueError(f"n_books must be at least 10, got {n_books}")
    rng = random.Random(seed)
    legacy_id, go_id = rng.sample(range(1, n_books + 1), 2)
    legacy_category = CATEGORIES[3]
    books = [
        make_book(rng, i, LEGACY_TITLE, legacy_category) if i == legacy_id else make_book(rng, i)
        for i in range(1, n_books + 1)
    ]
    go_book = books[go_id - 1]
    go_path = f"/go/{go_id}"

    def href(book: Book, prefix: str) -> str:
        return go_path if book.id == go_id else prefix + book.path.removeprefix("/")

    pages: dict[str, Page] = {
        "/robots.txt": Page(200, "text/plain; charset=utf-8", b"User-agent: *\nDisallow:\n"),
        "/static/shop.css": Page(200, "text/css; charset=utf-8", CSS.encode()),
        CATALOGUE_REDIRECT: redirect_page(301, "/catalogue/page-1.html"),
        go_path: redirect_page(302, go_book.path),
    }

    featured = [b for b in books[:5] if b.id != go_id][:4]
    tiles = "\n".join(
        f'        <li><a class="tile" href="{category_page(c, 1)[1:]}">{_esc(c.name)}</a></li>'
        for c in CATEGORIES
    )
    home = f"""      <section class="hero">
        <h1>Welcome to {_esc(SHOP_NAME)}</h1>
        <p>{n_books} second-hand books in {len(CATEGORIES)} categories, from Zürich to São Paulo.</p>
        <p><a class="button catalogue" href="{CATALOGUE_REDIRECT}">Browse the whole catalogue</a></p>
      </section>
      <h2>Categories</h2>
      <ul class="tiles">
{tiles}
      </ul>
      <h2>Staff picks</h2>
      <ol class="products">
{chr(10).join(product_card(b, href(b, "")) for b in featured)}
      </ol>"""
    pages["/"] = html_page(layout("Home", home, body_class="home"))

    total = pages_needed(n_books)
    missing_on = rng.randint(1, total)
    for number in range(1, total + 1):
        chunk = books[(number - 1) * BOOKS_PER_PAGE : number * BOOKS_PER_PAGE]
        cards = [product_card(b, href(b, "../")) for b in chunk]
        if number == missing_on:
            cards.insert(len(cards) // 2, missing_card())
        note = f"{n_books} books — showing {len(chunk)} on this page."
        body = listing("All books", cards, number, total, note)
        pages[f"/catalogue/page-{number}.html"] = html_page(layout("All books", body, body_class="listing"))

    by_category: dict[str, list[Book]] = {c.slug: [] for c in CATEGORIES}
    for book in books:
        by_category[book.category.slug].append(book)
    for category in CATEGORIES:
        members = by_category[category.slug]
        cat_total = pages_needed(len(members))
        for number in range(1, cat_total + 1):
            chunk = members[(number - 1) * BOOKS_PER_PAGE : number * BOOKS_PER_PAGE]
            cards = [product_card(b, href(b, "../../")) for b in chunk]
            note = f"{len(members)} books in {category.name}."
            body = listing(category.name, cards, number, cat_total, note)
            page = layout(category.name, body, body_class="listing category")
            pages[category_page(category, number)] = html_page(page)

    items: list[BookItem] = []
    for book in books:
        pool = [b for b in by_category[book.category.slug] if b.id not in (book.id, go_id)]
        if len(pool) < 3:
            pool = [b for b in books if b.id not in (book.id, go_id)]
        related = rng.sample(pool, 3)
        encoding = "cp1252" if book.id == legacy_id else "utf-8"
        charset = "windows-1252" if book.id == legacy_id else "utf-8"
        page = layout(book.title, book_page(book, related), body_class="product", charset=charset)
        pages[book.path] = html_page(page, encoding)
        items.append(
            {
                "url": book.path,
                "title": book.title,
                "price": book.price_pence / 100,
                "upc": book.upc,
                "availability": book.availability,
                "category": book.category.name,
            }
        )
    return DemoSite(pages, items, legacy_book=books[legacy_id - 1].path, redirected_book=go_path)


def expected_items_for(site: DemoSite, base_url: str) -> list[BookItem]:
    """``site.expected_items`` with each ``url`` made absolute against where the site is served."""
    return [{**item, "url": urljoin(base_url, str(item["url"]))} for item in site.expected_items]
