"""A small generated bookshop that crawlkit serves on 127.0.0.1 for demos and end-to-end tests.

The README's tutorial and the end-to-end tests need a site that is big enough to show concurrency
(hundreds of pages), awkward in the ways real sites are (relative links, duplicate links, redirects,
a broken link, a page in a legacy encoding, gzip) and yet fully known in advance, so a crawl's
output can be checked item by item. Everything is generated in memory from a seed: the same seed
gives byte-identical pages, and ``DemoSite.expected_items`` lists exactly what the example spider
(``spiders/bookshop.py``) must scrape.

Run it with ``python -m crawlkit.demo --port 8080``; it only ever binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import random
import re
import signal
import sys
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

from aiohttp import web

__all__ = [
    "BOOKS_PER_PAGE",
    "CATALOGUE_REDIRECT",
    "MISSING_BOOK",
    "DemoSite",
    "Page",
    "expected_items_for",
    "generate",
    "main",
    "make_app",
    "running",
    "serve",
]

BOOKS_PER_PAGE = 20
CATALOGUE_REDIRECT = "/catalogue/"
MISSING_BOOK = "/book/0-missing.html"
LOCAL_HOST = "127.0.0.1"
SHOP_NAME = "Les Livres d’Émile"  # noqa: RUF001
_HTML = "text/html; charset=utf-8"
_LEGACY_TITLE = "Café Crème — Éclairs"

BookItem = dict[str, str | float]


@dataclass(frozen=True, slots=True)
class Page:
    """One HTTP answer: what the server sends for a path, exactly (``body`` is already encoded)."""

    status: int
    content_type: str
    body: bytes
    location: str | None = None


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


@dataclass(frozen=True, slots=True)
class _Category:
    name: str
    slug: str
    genre: str


@dataclass(frozen=True, slots=True)
class _Book:
    id: int
    title: str
    category: _Category
    price_pence: int
    stock: int
    upc: str
    rating: int
    description: str
    availability_html: str

    @property
    def path(self) -> str:
        return f"/book/{self.id}-{_slugify(self.title)}.html"

    @property
    def price(self) -> str:
        return _pounds(self.price_pence)

    @property
    def availability(self) -> str:
        return f"In stock ({self.stock} available)" if self.stock else "Out of stock"


_CATEGORIES = (
    _Category("Fiction", "fiction", "novel"),
    _Category("Poésie", "poesie", "collection of poems"),
    _Category("Crime & Mystery", "crime-mystery", "thriller"),
    _Category("Cuisine & Pâtisserie", "cuisine-patisserie", "cookbook"),
    _Category("Travel", "travel", "travel memoir"),
    _Category("Kinderbücher", "kinderbucher", "picture book"),
)
_ADJECTIVES = (
    "Silent", "Crimson", "Forgotten", "Naïve", "Gilded", "Hollow", "Distant", "Midnight",
    "Bitter", "Luminous", "Wandering", "Secret", "Broken", "Quiet", "Last", "Paper",
)  # fmt: skip
_NOUNS = (
    "Garden", "Lighthouse", "Café", "Orchard", "Cartographer", "Fiancée", "Harbour", "Atlas",
    "Mirror", "Sonata", "Château", "Winter", "Archive", "Bridge", "Märchen", "Piñata",
)  # fmt: skip
_PLACES = (
    "Zürich", "Montréal", "São Paulo", "Kraków", "Reykjavík", "Málaga", "Lübeck", "Besançon",
    "Nîmes", "Genève",
)  # fmt: skip
_NAMES = ("Émile", "Zoë", "Jürgen", "Chloé", "Agnès", "Søren", "Inès", "Björn", "Renée", "Noël")
_TITLE_PATTERNS = (
    "The {adj} {noun}",
    "{noun} in {place}",
    "{name}’s {noun}",  # noqa: RUF001
    "Letters from {place}",
    "The {noun} of {place}: A Memoir",
    "“{adj} {noun}” — Stories",
    "{adj} {noun}s & Other Tales",
    "A {noun} for {name}",
)
_MOODS = ("tender", "ferocious", "wry", "bittersweet", "sprawling", "razor-sharp", "dreamlike", "über-cool")
_PLOTS = (
    "must confront a long-buried secret",
    "inherits a shop nobody wants",
    "follows a map drawn by a stranger",
    "learns to cook her grandmother’s crème brûlée",  # noqa: RUF001
    "chases a stolen manuscript across three borders",
    "spends one impossible summer by the sea",
)
_PAPERS = ("Le Monde", "Die Zeit", "The Guardian", "El País", "Corriere della Sera")
_PRAISE = ("Unputdownable", "A quiet triumph", "Achingly beautiful", "Wickedly funny", "Pure joie de vivre")
_LANGUAGES = ("French", "German", "Portuguese", "Danish", "Spanish")
_RATINGS = ("One", "Two", "Three", "Four", "Five")
_GAPS = (" ", "  ", "\n      ", "\t", " \n ")


def _slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def _pounds(pence: int) -> str:
    return f"£{pence // 100}.{pence % 100:02d}"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _category_page(category: _Category, number: int) -> str:
    return f"/category/{category.slug}/page-{number}.html"


def _pages_needed(count: int) -> int:
    return max(1, -(-count // BOOKS_PER_PAGE))


def _make_title(rng: random.Random) -> str:
    return rng.choice(_TITLE_PATTERNS).format(
        adj=rng.choice(_ADJECTIVES),
        noun=rng.choice(_NOUNS),
        place=rng.choice(_PLACES),
        name=rng.choice(_NAMES),
    )


def _make_description(rng: random.Random, category: _Category) -> str:
    sentences = [
        f"A {rng.choice(_MOODS)} {category.genre} in which {rng.choice(_NAMES)} {rng.choice(_PLOTS)}.",
        f"“{rng.choice(_PRAISE)}” — {rng.choice(_PAPERS)}.",
        f"Translated from the {rng.choice(_LANGUAGES)} by {rng.choice(_NAMES)} Dubois.",
        f"First published in {rng.randint(1951, 2019)}; this edition has a new afterword.",
    ]
    return " ".join(rng.sample(sentences, rng.randint(2, 4)))


def _availability_html(rng: random.Random, stock: int) -> str:
    """Availability text with the ragged whitespace templating engines leave behind."""
    words = ["In", "stock", f"({stock}", "available)"] if stock else ["Out", "of", "stock"]
    text = "".join(rng.choice(_GAPS) + word for word in words)
    return f'<p class="availability">\n            <span class="icon-stock"></span>{text}\n          </p>'


def _make_book(
    rng: random.Random, book_id: int, title: str | None = None, category: _Category | None = None
) -> _Book:
    category = category or rng.choice(_CATEGORIES)
    stock = rng.choice((0, *range(1, 23)))
    return _Book(
        id=book_id,
        title=title or _make_title(rng),
        category=category,
        price_pence=rng.randint(450, 5999),
        stock=stock,
        upc=f"{rng.getrandbits(64):016x}",
        rating=rng.randint(1, 5),
        description=_make_description(rng, category),
        availability_html=_availability_html(rng, stock),
    )


def _layout(title: str, body: str, *, body_class: str, charset: str = "utf-8") -> str:
    """The chrome every page shares: header, category navigation and footer."""
    categories = "\n".join(
        f'          <li><a href="{_category_page(c, 1)}">{_esc(c.name)}</a></li>' for c in _CATEGORIES
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="{charset}">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{_esc(title)} | {_esc(SHOP_NAME)}</title>
  <link rel="stylesheet" href="/static/shop.css">
</head>
<body class="{body_class}">
  <header class="site-header">
    <div class="container">
      <a class="brand" href="/">{_esc(SHOP_NAME)}</a>
      <span class="tagline">Second-hand &amp; rare books — since 1987</span>
    </div>
  </header>
  <div class="container page">
    <aside class="sidebar">
      <nav class="categories" aria-label="Categories">
        <h2>Browse</h2>
        <ul>
          <li><a href="{CATALOGUE_REDIRECT}">All books</a></li>
{categories}
        </ul>
      </nav>
    </aside>
    <main class="content">
{body}
    </main>
  </div>
  <footer class="site-footer">
    <div class="container">
      <p>© {_esc(SHOP_NAME)} — a demo shop served by crawlkit. Every book and price here is invented.</p>
    </div>
  </footer>
</body>
</html>
"""


def _product_card(book: _Book, href: str) -> str:
    short = book.title if len(book.title) <= 28 else book.title[:26].rstrip() + "…"
    return f"""        <li class="col">
          <article class="product">
            <a class="cover-link" href="{_esc(href)}"><div class="cover cover-{book.id % 8}"></div></a>
            <p class="star-rating {_RATINGS[book.rating - 1]}"></p>
            <h3><a href="{_esc(href)}" title="{_esc(book.title)}">{_esc(short)}</a></h3>
            <div class="product-price">
              <p class="price">{book.price}</p>
              <p class="stock">{_esc(book.availability)}</p>
            </div>
          </article>
        </li>"""


def _missing_card() -> str:
    return f"""        <li class="col">
          <article class="product withdrawn">
            <div class="cover cover-0"></div>
            <h3><a href="..{MISSING_BOOK}" title="Withdrawn title">Withdrawn title</a></h3>
            <div class="product-price"><p class="stock">No longer available</p></div>
          </article>
        </li>"""


def _listing(heading: str, cards: list[str], number: int, total: int, note: str) -> str:
    pager = []
    if number > 1:
        pager.append(f'<li class="previous"><a href="page-{number - 1}.html">« previous</a></li>')
    pager.append(f'<li class="current">Page {number} of {total}</li>')
    if number < total:
        pager.append(f'<li class="next"><a href="page-{number + 1}.html">next »</a></li>')
    items = "\n".join(cards) if cards else '        <li class="empty">No books here yet.</li>'
    return f"""      <nav aria-label="Breadcrumb">
        <ol class="breadcrumb"><li><a href="/">Home</a></li><li class="active">{_esc(heading)}</li></ol>
      </nav>
      <h1 class="page-title">{_esc(heading)}</h1>
      <p class="result-count">{_esc(note)}</p>
      <ol class="products">
{items}
      </ol>
      <ul class="pager">
        {" ".join(pager)}
      </ul>"""


def _book_page(book: _Book, related: list[_Book]) -> str:
    excl = round(book.price_pence / 1.2)
    links = "\n".join(
        f'          <li><a href="{r.path.removeprefix("/book/")}">{_esc(r.title)}</a></li>' for r in related
    )
    category = f'<a href="..{_category_page(book.category, 1)}">{_esc(book.category.name)}</a>'
    return f"""      <nav aria-label="Breadcrumb">
        <ol class="breadcrumb">
          <li><a href="/">Home</a></li><li>{category}</li><li class="active">{_esc(book.title)}</li>
        </ol>
      </nav>
      <article class="product-page">
        <div class="product-main">
          <div class="cover cover-{book.id % 8}" aria-hidden="true"></div>
          <h1>{_esc(book.title)}</h1>
          <p class="price">{book.price}</p>
          {book.availability_html}
          <p class="star-rating {_RATINGS[book.rating - 1]}">Rated {book.rating} out of 5</p>
        </div>
        <section id="product_description">
          <h2>Product description</h2>
          <p class="description">{_esc(book.description)}</p>
        </section>
        <section class="product-information">
          <h2>Product information</h2>
          <table class="info">
            <tr><th>UPC</th><td>{book.upc}</td></tr>
            <tr><th>Product type</th><td>Books</td></tr>
            <tr><th>Price (excl. tax)</th><td>{_pounds(excl)}</td></tr>
            <tr><th>Tax</th><td>{_pounds(book.price_pence - excl)}</td></tr>
            <tr><th>Availability</th><td>{_esc(book.availability)}</td></tr>
            <tr><th>Number of reviews</th><td>0</td></tr>
          </table>
        </section>
        <section class="related">
          <h2>You might also like</h2>
          <ul>
{links}
          </ul>
        </section>
      </article>"""


def _html_page(text: str, encoding: str = "utf-8") -> Page:
    if encoding == "utf-8":
        return Page(200, _HTML, text.encode())
    # No charset in the header on purpose: a crawler must find it in the <meta> tag.
    return Page(200, "text/html", text.encode(encoding))


def _redirect(status: int, target: str) -> Page:
    body = f'<!DOCTYPE html>\n<title>Moved</title>\n<p>Moved to <a href="{target}">{target}</a>.</p>\n'
    return Page(status, _HTML, body.encode(), location=target)


_CSS = """body{margin:0;font:16px/1.5 Georgia,serif;color:#222;background:#faf7f2}
.container{max-width:1100px;margin:0 auto;padding:0 1rem}
.site-header{background:#3b2f2f;color:#fff;padding:1rem 0}.site-header a{color:#fff;text-decoration:none}
.brand{font-size:1.6rem;margin-right:1rem}.page{display:flex;gap:2rem;padding-top:1.5rem}
.sidebar{flex:0 0 200px}.content{flex:1}.products{list-style:none;padding:0;display:grid;
grid-template-columns:repeat(auto-fill,minmax(180px,1fr));gap:1rem}
.cover{height:150px;background:#c9b79c;border-radius:4px}.price{color:#2a7a2a;font-weight:bold}
.pager{list-style:none;display:flex;gap:1rem;padding:0}.breadcrumb{list-style:none;display:flex;gap:.5rem;padding:0}
.breadcrumb li+li:before{content:"/";margin-right:.5rem}.info th{text-align:left;padding-right:1rem}
.site-footer{margin-top:3rem;padding:1rem 0;border-top:1px solid #ddd;color:#666}
"""


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
    legacy_category = _CATEGORIES[3]
    books = [
        _make_book(rng, i, _LEGACY_TITLE, legacy_category) if i == legacy_id else _make_book(rng, i)
        for i in range(1, n_books + 1)
    ]
    go_book = books[go_id - 1]
    go_path = f"/go/{go_id}"

    def href(book: _Book, prefix: str) -> str:
        return go_path if book.id == go_id else prefix + book.path.removeprefix("/")

    pages: dict[str, Page] = {
        "/robots.txt": Page(200, "text/plain; charset=utf-8", b"User-agent: *\nDisallow:\n"),
        "/static/shop.css": Page(200, "text/css; charset=utf-8", _CSS.encode()),
        CATALOGUE_REDIRECT: _redirect(301, "/catalogue/page-1.html"),
        go_path: _redirect(302, go_book.path),
    }

    featured = [b for b in books[:5] if b.id != go_id][:4]
    tiles = "\n".join(
        f'        <li><a class="tile" href="{_category_page(c, 1)[1:]}">{_esc(c.name)}</a></li>'
        for c in _CATEGORIES
    )
    home = f"""      <section class="hero">
        <h1>Welcome to {_esc(SHOP_NAME)}</h1>
        <p>{n_books} second-hand books in {len(_CATEGORIES)} categories, from Zürich to São Paulo.</p>
        <p><a class="button catalogue" href="{CATALOGUE_REDIRECT}">Browse the whole catalogue</a></p>
      </section>
      <h2>Categories</h2>
      <ul class="tiles">
{tiles}
      </ul>
      <h2>Staff picks</h2>
      <ol class="products">
{chr(10).join(_product_card(b, href(b, "")) for b in featured)}
      </ol>"""
    pages["/"] = _html_page(_layout("Home", home, body_class="home"))

    total = _pages_needed(n_books)
    missing_on = rng.randint(1, total)
    for number in range(1, total + 1):
        chunk = books[(number - 1) * BOOKS_PER_PAGE : number * BOOKS_PER_PAGE]
        cards = [_product_card(b, href(b, "../")) for b in chunk]
        if number == missing_on:
            cards.insert(len(cards) // 2, _missing_card())
        note = f"{n_books} books — showing {len(chunk)} on this page."
        body = _listing("All books", cards, number, total, note)
        pages[f"/catalogue/page-{number}.html"] = _html_page(_layout("All books", body, body_class="listing"))

    by_category: dict[str, list[_Book]] = {c.slug: [] for c in _CATEGORIES}
    for book in books:
        by_category[book.category.slug].append(book)
    for category in _CATEGORIES:
        members = by_category[category.slug]
        cat_total = _pages_needed(len(members))
        for number in range(1, cat_total + 1):
            chunk = members[(number - 1) * BOOKS_PER_PAGE : number * BOOKS_PER_PAGE]
            cards = [_product_card(b, href(b, "../../")) for b in chunk]
            note = f"{len(members)} books in {category.name}."
            body = _listing(category.name, cards, number, cat_total, note)
            page = _layout(category.name, body, body_class="listing category")
            pages[_category_page(category, number)] = _html_page(page)

    items: list[BookItem] = []
    for book in books:
        pool = [b for b in by_category[book.category.slug] if b.id not in (book.id, go_id)]
        if len(pool) < 3:
            pool = [b for b in books if b.id not in (book.id, go_id)]
        related = rng.sample(pool, 3)
        encoding = "cp1252" if book.id == legacy_id else "utf-8"
        charset = "windows-1252" if book.id == legacy_id else "utf-8"
        page = _layout(book.title, _book_page(book, related), body_class="product", charset=charset)
        pages[book.path] = _html_page(page, encoding)
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


_NOT_FOUND = Page(
    404,
    _HTML,
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>\n'
    b'<body><h1>Page not found</h1><p><a href="/">Back to the shop</a></p></body></html>\n',
)


def make_app(site: DemoSite) -> web.Application:
    """An aiohttp application answering from ``site.pages`` (404 for any other path).

    Compression is negotiated per request, preferring gzip, so crawls exercise decompression.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        page = site.pages.get(request.path, _NOT_FOUND)
        headers = {"Content-Type": page.content_type}
        if page.location is not None:
            headers["Location"] = page.location
        response = web.Response(status=page.status, body=page.body, headers=headers)
        accepted = request.headers.get("Accept-Encoding", "").lower()
        if "gzip" in accepted:
            response.enable_compression(web.ContentCoding.gzip)
        elif "deflate" in accepted:
            response.enable_compression(web.ContentCoding.deflate)
        return response

    app = web.Application()
    app.router.add_get("/{path:.*}", handle)
    return app


def _check_host(host: str) -> None:
    if host != LOCAL_HOST:
        raise ValueError(f"the demo site only binds {LOCAL_HOST}, not {host!r}")


@contextlib.asynccontextmanager
async def running(site: DemoSite, host: str = LOCAL_HOST, port: int = 0) -> AsyncIterator[str]:
    """Serve ``site`` while the block runs; yields its root URL (``http://127.0.0.1:PORT/``)."""
    _check_host(host)
    runner = web.AppRunner(make_app(site), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}/"
    finally:
        await runner.cleanup()


async def _serve_until_signalled(host: str, port: int, n_books: int, seed: int) -> None:
    site = generate(n_books, seed)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    async with running(site, host, port) as url:
        for sig in signals:
            try:
                loop.add_signal_handler(sig, stop.set)
            except NotImplementedError:  # event loops without signal support (Windows)
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        print(f"serving {url}", flush=True)
        try:
            await stop.wait()
        finally:
            for sig in signals:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)


def serve(host: str = LOCAL_HOST, port: int = 0, n_books: int = 600, seed: int = 7) -> None:
    """Serve a freshly generated site until SIGINT or SIGTERM; prints ``serving URL`` once listening."""
    _check_host(host)
    asyncio.run(_serve_until_signalled(host, port, n_books, seed))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m crawlkit.demo [--port N] [--books N] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m crawlkit.demo", description="Serve the generated demo bookshop on 127.0.0.1."
    )
    parser.add_argument("--host", default=LOCAL_HOST, help=f"only {LOCAL_HOST} is accepted")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default: 8080)")
    parser.add_argument("--books", type=int, default=600, help="number of books (default: 600)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default: 7)")
    args = parser.parse_args(argv)
    if args.host != LOCAL_HOST:
        parser.error(f"--host: the demo site only binds {LOCAL_HOST}, not {args.host!r}")
    if args.books < 10:
        parser.error("--books must be at least 10")
    try:
        serve(args.host, args.port, args.books, args.seed)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
