"""The bookshop's HTML: the shared chrome, listing pages with their product cards, and book pages."""

from __future__ import annotations

from ._bookshop_catalogue import (
    CATALOGUE_REDIRECT,
    CATEGORIES,
    MISSING_BOOK,
    RATINGS,
    SHOP_NAME,
    Book,
    category_page,
)
from ._page import escape as _esc
from ._page import pounds as _pounds


def layout(title: str, body: str, *, body_class: str, charset: str = "utf-8") -> str:
    """The chrome every page shares: header, category navigation and footer."""
    categories = "\n".join(
        f'          <li><a href="{category_page(c, 1)}">{_esc(c.name)}</a></li>' for c in CATEGORIES
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


def product_card(book: Book, href: str) -> str:
    short = book.title if len(book.title) <= 28 else book.title[:26].rstrip() + "…"
    return f"""        <li class="col">
          <article class="product">
            <a class="cover-link" href="{_esc(href)}"><div class="cover cover-{book.id % 8}"></div></a>
            <p class="star-rating {RATINGS[book.rating - 1]}"></p>
            <h3><a href="{_esc(href)}" title="{_esc(book.title)}">{_esc(short)}</a></h3>
            <div class="product-price">
              <p class="price">{book.price}</p>
              <p class="stock">{_esc(book.availability)}</p>
            </div>
          </article>
        </li>"""


def missing_card() -> str:
    return f"""        <li class="col">
          <article class="product withdrawn">
            <div class="cover cover-0"></div>
            <h3><a href="..{MISSING_BOOK}" title="Withdrawn title">Withdrawn title</a></h3>
            <div class="product-price"><p class="stock">No longer available</p></div>
          </article>
        </li>"""


def listing(heading: str, cards: list[str], number: int, total: int, note: str) -> str:
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


def book_page(book: Book, related: list[Book]) -> str:
    excl = round(book.price_pence / 1.2)
    links = "\n".join(
        f'          <li><a href="{r.path.removeprefix("/book/")}">{_esc(r.title)}</a></li>' for r in related
    )
    category = f'<a href="..{category_page(book.category, 1)}">{_esc(book.category.name)}</a>'
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
          <p class="star-rating {RATINGS[book.rating - 1]}">Rated {book.rating} out of 5</p>
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


CSS = """body{margin:0;font:16px/1.5 Georgia,serif;color:#222;background:#faf7f2}
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
