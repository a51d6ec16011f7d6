"""The benchmark shop's HTML: the chrome every page repeats, and the home, listing and product pages.

The page shapes are the benchmark's contract (see ``bench/site.py``): ``li.next a`` and
``a.view-all`` paginate, ``article.product_pod h3 a`` leads to products, ``div.product_main``
marks a product page. Product pages are padded with reviews to 30-60 KB, as real shops' are.
Every figure in bench/README.md was measured on exactly these bytes, so any change here makes a
new benchmark that no longer compares with the old figures.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import json
import random

from ._bench_catalogue import (
    DEPARTMENTS,
    MAX_PRODUCT_BYTES,
    MIN_PRODUCT_BYTES,
    MONTHS,
    N_RELATED,
    PER_PAGE,
    REVIEWERS,
    SHOP,
    STARS,
    Product,
    paragraph,
    product,
    sentence,
    slug,
)
from ._page import escape as esc


def _navigation() -> str:
    rows = [
        '<nav id="site-nav" class="site-nav" aria-label="Shop by department">\n<ul class="site-nav__menu">\n'
    ]
    for d, (dept, sections) in enumerate(DEPARTMENTS.items(), start=1):
        rows.append(
            f'<li class="site-nav__dept" data-dept="{d}"><a class="site-nav__top" '
            f'href="/shop/{slug(dept)}/" aria-expanded="false">{esc(dept)}</a>\n'
            f'<div class="site-nav__panel"><ul class="site-nav__list">\n'
        )
        for s, section in enumerate(sections, start=1):
            rows.append(
                f'<li><a href="/shop/{slug(dept)}/{slug(section)}/" data-ga="nav:{d}:{s}">'
                f"{esc(section)}</a></li>\n"
            )
        rows.append(
            f'</ul><a class="site-nav__all" href="/shop/{slug(dept)}/all/">Everything in {esc(dept)} →</a>'
            "</div></li>\n"
        )
    rows.append("</ul>\n</nav>\n")
    return "".join(rows)


NAVIGATION = _navigation()

HEADER = f"""<div class="notice-bar" role="note">
Free UK delivery over £40 · Gift wrapping at checkout · Tak for besøget!</div>
<header class="masthead">
<a class="masthead__logo" href="/index.html" title="{esc(SHOP)} – home">
<svg viewBox="0 0 40 40" width="40" height="40" aria-hidden="true">
<circle cx="20" cy="20" r="18" fill="#8a5a2b"/>
<path d="M10 26h20M14 14h12v12H14z" stroke="#fff" fill="none"/></svg>
<span>{esc(SHOP)}</span></a>
<form class="masthead__search" action="/search/" method="get" role="search">
<label for="q" class="visually-hidden">Search the shop</label>
<input id="q" name="q" type="search" placeholder="Jugs, boards, linen…" autocomplete="off">
<button type="submit">Search</button></form>
<ul class="masthead__tools"><li><a href="/account/">Account</a></li>
<li><a href="/wishlist/">Wishlist (0)</a></li>
<li><a href="/basket/" class="basket-link">Basket <span class="basket-count">0</span></a></li></ul>
</header>
"""

_FOOTER_LINKS = {
    "Help": ["Delivery", "Returns", "Track an order", "Care guides", "Contact", "FAQs", "Gift cards"],
    "About": ["Our makers", "Journal", "Workshops", "Stockists", "Careers", "Press", "Impact report"],
    "Departments": list(DEPARTMENTS)[:8],
    "Small print": ["Terms", "Privacy", "Cookies", "Accessibility", "Modern slavery", "Sitemap"],
}


def _footer() -> str:
    rows = ['<footer class="site-footer">\n<div class="site-footer__cols">\n']
    for heading, links in _FOOTER_LINKS.items():
        rows.append(f"<section><h4>{esc(heading)}</h4><ul>\n")
        rows.extend(f'<li><a href="/help/{slug(link)}/">{esc(link)}</a></li>\n' for link in links)
        rows.append("</ul></section>\n")
    rows.append(
        '</div>\n<form class="newsletter" action="/newsletter/" method="post">'
        '<label for="nl">Letters from the workshop – once a month, never more</label>'
        '<input id="nl" type="email" name="email" placeholder="name@example.org">'
        '<button type="submit">Sign up</button></form>\n'
        f'<p class="legal">© 2009–2025 {esc(SHOP)} Ltd · Company no. 06841127 · '
        "Registered office: 4 Quay Street, Falmouth TR11 3HH · Tak, merci, diolch, grazie ✓</p>\n"
        "</footer>\n"
    )
    return "".join(rows)


FOOTER = _footer()

STYLE = """<style>
:root{--ink:#2b2118;--paper:#fbf7f1;--clay:#8a5a2b;--moss:#4f6b3a;--rust:#a4431c;--line:#e8dfd2}
*{box-sizing:border-box}
body{margin:0;background:var(--paper);color:var(--ink);font:16px/1.55 "Source Serif 4",Georgia,serif}
a{color:var(--clay)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.notice-bar{background:var(--ink);color:#fff;text-align:center;font-size:.8rem;padding:4px}
.masthead{display:flex;gap:24px;align-items:center;padding:14px 24px;border-bottom:1px solid var(--line)}
.site-nav__menu{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:0 24px;gap:18px}
.site-nav__dept{position:relative}
.site-nav__panel{display:none;position:absolute;z-index:9;background:#fff;padding:12px 18px;min-width:240px;
  box-shadow:0 10px 30px rgba(43,33,24,.15)}
.site-nav__dept:hover .site-nav__panel{display:block}
.site-nav__list{list-style:none;padding:0;columns:2}
.crumbs{display:flex;gap:8px;list-style:none;font-size:.85rem;padding:10px 24px}
.crumbs li+li:before{content:"/";margin-right:8px;color:#998}
.product_main h1{font-size:1.9rem;margin:.3em 0}
.price_color{font-size:1.4rem;color:var(--moss);font-weight:600}
.availability.instock{color:var(--moss)}.availability.outofstock{color:var(--rust)}
.product_pod{background:#fff;border:1px solid var(--line);padding:14px;border-radius:4px}
.product_pod h3{font-size:1rem}
#product-info th{text-align:left;width:40%;font-weight:500}
#product-info td,#product-info th{border-bottom:1px solid var(--line);padding:6px 8px}
.review{padding:16px 0;border-bottom:1px solid var(--line)}
.review__meta{font-size:.8rem;color:#7a6f63}
.site-footer{margin-top:60px;background:#2b2118;color:#eadfce;padding:40px 24px}
.site-footer a{color:#eadfce}
@media(max-width:720px){.masthead{flex-wrap:wrap}.site-nav__menu{flex-direction:column}}
</style>
"""

ANALYTICS = """<script>
(function(w,d){var q=w.hhq=w.hhq||[];q.push(['page',d.body?d.body.getAttribute('data-kind'):'',%d]);
function send(){try{navigator.sendBeacon('/metrics/beacon',JSON.stringify(q.splice(0,q.length)))}catch(e){}}
d.addEventListener('visibilitychange',function(){if(d.visibilityState==='hidden'){send()}});
d.querySelectorAll('form[data-ajax]').forEach(function(f){f.addEventListener('submit',function(ev){ev.preventDefault();
var b=f.querySelector('button');b.disabled=true;
fetch(f.action,{method:'POST',body:new FormData(f),credentials:'same-origin'})
.then(function(r){return r.json()})
.then(function(j){var c=d.querySelector('.basket-count');if(c){c.textContent=j.count}})
.catch(function(){}).finally(function(){b.disabled=false})})});
w.addEventListener('load',function(){var t=performance.timing;
q.push(['load',t.loadEventStart-t.navigationStart])});
})(window,document);
</script>
"""


def head(title: str, description: str, path: str, extra: str = "") -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-GB" dir="ltr">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)} · {esc(SHOP)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="description" content="{esc(description)}">\n'
        '<meta name="robots" content="index,follow">\n<meta name="theme-color" content="#8a5a2b">\n'
        f'<meta property="og:site_name" content="{esc(SHOP)}">\n'
        f'<meta property="og:title" content="{esc(title)}">\n'
        f'<meta property="og:url" content="https://www.harbourandhearth.example{path}">\n'
        f'<link rel="canonical" href="https://www.harbourandhearth.example{path}">\n'
        '<link rel="preconnect" href="https://static.harbourandhearth.example" crossorigin>\n'
        '<link rel="preload" href="/static/fonts/source-serif-4.woff2" as="font" type="font/woff2" '
        "crossorigin>\n"
        '<link rel="stylesheet" href="/static/css/shop.3f9c2a.css" media="all">\n'
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">\n'
        '<link rel="alternate" hreflang="da" href="https://da.harbourandhearth.example/">\n'
        f"{STYLE}{extra}"
        '<script src="/static/js/vendor.81ab77.js" defer></script>\n'
        '<script src="/static/js/shop.c0ffee.js" defer></script>\n'
        "</head>\n"
    )


def pod(p: Product, href: str, rng: random.Random, *, with_form: bool) -> str:
    short = p.title if len(p.title) <= 36 else p.title[:35].rstrip() + "…"
    stock = (
        '<p class="instock availability"><i class="icon-ok"></i> In stock</p>'
        if p.stock
        else '<p class="outofstock availability"><i class="icon-remove"></i> Sold out</p>'
    )
    form = (
        f'<form action="/basket/add/{p.pid}/" method="post" data-ajax>'
        '<input type="hidden" name="qty" value="1">'
        f'<button type="submit" class="btn-add">Add to basket</button></form>'
        if with_form
        else ""
    )
    return (
        f'<article class="product_pod" data-id="{p.pid}">\n'
        f'<div class="image_container"><a href="{href}"><img src="/media/{p.image[:2]}/{p.image}-s.jpg" '
        f'alt="{esc(p.title)}" width="240" height="300" loading="lazy"></a></div>\n'
        f'<p class="star-rating {p.stars}" aria-label="{p.stars} stars"></p>\n'
        f'<h3><a href="{href}" title="{esc(p.title)}">{esc(short)}</a></h3>\n'
        f'<div class="product_price"><p class="price_color">{p.price}</p>{stock}{form}</div>\n'
        f'<p class="pod-note">{esc(sentence(rng, 4, 9))}</p>\n'
        "</article>\n"
    )


_AVAILABILITY_LAYOUTS = [
    "\n    {icon}\n    {text}\n",
    "\n\t\t{icon}\n\t\t\t{text}\n\t",
    "{icon}  {text}  ",
    "\n{icon}\n\n   {text}\n\n",
    "\r\n        {icon}\r\n        {text}\r\n    ",
]


def availability_html(p: Product, rng: random.Random) -> str:
    """The availability paragraph: the same text, laid out with whitespace that varies by page."""
    text = p.availability
    if p.stock and rng.random() < 0.5:
        text = text.replace(" (", "  \n      (", 1)  # also split the text itself across lines
    cls, icon = ("instock", "icon-ok") if p.stock else ("outofstock", "icon-remove")
    layout = rng.choice(_AVAILABILITY_LAYOUTS)
    inner = layout.format(icon=f'<i class="{icon}"></i>', text=text)
    return f'<p class="{cls} availability">{inner}</p>\n'


# ------------------------------------------------------------------------------------ pages


def product_page(seed: int, n: int, pid: int) -> tuple[bytes, dict[str, object]]:
    p = product(seed, pid)
    rng = random.Random(f"page|{seed}|{pid}")
    target = rng.randint(MIN_PRODUCT_BYTES + 1_000, MAX_PRODUCT_BYTES - 3_500)
    related: list[int] = []
    while len(related) < N_RELATED:
        r = rng.randint(1, n)
        if r != pid and r not in related:
            related.append(r)
    description = [paragraph(rng, 3, 8) for _ in range(rng.randint(3, 6))]
    ex_vat = round(p.pence / 1.2)
    vat = p.pence - ex_vat
    ld = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "Product",
            "name": p.title,
            "sku": p.sku,
            "brand": p.title.split(" ")[0],
            "image": f"https://static.harbourandhearth.example/media/{p.image}.jpg",
            "description": description[0][:180],
            "offers": {
                "@type": "Offer",
                "price": f"{p.pence / 100:.2f}",
                "priceCurrency": "GBP",
                "availability": "https://schema.org/" + ("InStock" if p.stock else "OutOfStock"),
            },
        },
        ensure_ascii=False,
    ).replace("</", "<\\/")
    extra = (
        '<meta property="og:type" content="product">\n'
        f'<meta property="product:price:amount" content="{p.pence / 100:.2f}">\n'
        '<meta property="product:price:currency" content="GBP">\n'
        f'<script type="application/ld+json">{ld}</script>\n'
    )
    top: list[str] = [
        head(p.title, description[0][:150], p.path, extra),
        f'<body class="page page--product" data-kind="product" data-id="{pid}">\n',
        HEADER,
        NAVIGATION,
        '<main id="content">\n<ol class="crumbs">\n<li><a href="/index.html">Home</a></li>\n'
        f'<li><a href="/shop/{slug(p.department)}/">{esc(p.department)}</a></li>\n'
        f'<li><a href="/shop/{slug(p.department)}/{slug(p.section)}/">{esc(p.section)}</a></li>\n'
        f'<li aria-current="page">{esc(p.title)}</li>\n</ol>\n'
        '<div class="product-layout">\n<div class="gallery" data-carousel>\n',
    ]
    media = f"/media/{p.image[:2]}/{p.image}"
    top.extend(
        f'<figure class="gallery__item{" is-active" if k == 0 else ""}">'
        f'<img src="{media}-{k}.jpg" srcset="{media}-{k}@2x.jpg 2x" '
        f'alt="{esc(p.title)}, view {k + 1}" width="640" height="800"></figure>\n'
        for k in range(rng.randint(3, 6))
    )
    top.append(
        '</div>\n<div class="product_main">\n'
        f"<h1>{esc(p.title)}</h1>\n"
        f'<p class="price_color">{p.price}</p>\n'
        + availability_html(p, rng)
        + f'<p class="star-rating {p.stars}"><span class="visually-hidden">{p.stars} out of five</span></p>\n'
        f'<form action="/basket/add/{pid}/" method="post" class="add-to-basket" data-ajax>'
        f'<input type="hidden" name="csrf" value="{rng.getrandbits(160):040x}">'
        '<label for="qty">Quantity</label><input id="qty" type="number" name="qty" value="1" min="1">'
        '<button type="submit">Add to basket</button></form>\n'
        '<p class="reassure">Dispatched within 2 working days · 60-day returns · Plastic-free packaging</p>\n'
        "</div>\n</div>\n"
        '<section class="description"><h2>About this piece</h2>\n'
    )
    top.extend(f"<p>{esc(text)}</p>\n" for text in description)
    info_rows = [
        ("Maker", p.title.split(" ")[0]),
        ("Department", p.department),
        ("SKU", p.sku),
        ("Price (excl. VAT)", f"£{ex_vat // 100}.{ex_vat % 100:02d}"),
        ("VAT", f"£{vat // 100}.{vat % 100:02d}"),
        ("Price (incl. VAT)", p.price),
        ("Availability", p.availability),
        ("Weight", f"{rng.randint(40, 6000)} g"),
        ("Size", f"{rng.randint(4, 80)} × {rng.randint(4, 80)} × {rng.randint(1, 50)} cm"),
        (
            "Made in",
            rng.choice(["Cornwall", "Jutland", "Bohemia", "Galicia", "Småland", "Kerry", "Anatolia"]),
        ),
    ]
    top.append(
        '</section>\n<section class="details"><h2>Details</h2>\n'
        '<table id="product-info" class="details__table">\n'
    )
    top.extend(f"<tr><th>{esc(th)}</th><td>{esc(td)}</td></tr>\n" for th, td in info_rows)
    top.append("<tr><th>Reviews</th><td>%%REVIEWS%%</td></tr>\n</table>\n</section>\n")

    bottom: list[str] = [
        '<section class="related-products"><h2>You may also like</h2>\n<ol class="related-products__list">\n'
    ]
    bottom.extend(
        "<li>\n" + pod(product(seed, r), f"/catalogue/product-{r}.html", rng, with_form=False) + "</li>\n"
        for r in related
    )
    bottom.append("</ol>\n</section>\n</main>\n")
    bottom.append(FOOTER)
    bottom.append(ANALYTICS % pid)
    bottom.append("</body>\n</html>\n")

    size = sum(len(s.encode()) for s in top) + sum(len(s.encode()) for s in bottom) + 120
    reviews = ['<section id="reviews" class="reviews"><h2>What customers say</h2>\n']
    count = 0
    while size < target and count < 80:
        count += 1
        body = "".join(f"<p>{esc(paragraph(rng, 2, 5))}</p>" for _ in range(rng.randint(1, 3)))
        review = (
            f'<article class="review" id="review-{count}"><p class="star-rating {rng.choice(STARS)}"></p>'
            f"<h3>{esc(sentence(rng, 3, 8))}</h3>"
            f'<p class="review__meta">{esc(rng.choice(REVIEWERS))} · '
            f"<time>{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(2015, 2025)}</time>"
            " · verified buyer</p>"
            f'{body}<p class="review__vote"><a href="/reviews/{pid}/{count}/helpful/" rel="nofollow">'
            f"Helpful? ({rng.randint(0, 90)})</a></p></article>\n"
        )
        reviews.append(review)
        size += len(review.encode())
    if not count:
        reviews.append('<p class="reviews__empty">No reviews yet.</p>\n')
    reviews.append("</section>\n")
    text = "".join(top).replace("%%REVIEWS%%", str(count)) + "".join(reviews) + "".join(bottom)
    expected: dict[str, object] = {
        "url": p.path,
        "title": p.title,
        "price": p.price,
        "sku": p.sku,
        "availability": p.availability,
        "n_related": len(related),
    }
    return text.encode(), expected


def listing_page(seed: int, n: int, k: int, pages: int) -> bytes:
    rng = random.Random(f"listing|{seed}|{k}")
    first, last = (k - 1) * PER_PAGE + 1, min(n, k * PER_PAGE)
    parts = [
        head(
            f"All products, page {k} of {pages}",
            f"Everything we sell: {n} pieces, page {k}.",
            f"/catalogue/page-{k}.html",
        ),
        f'<body class="page page--listing" data-kind="listing" data-page="{k}">\n',
        HEADER,
        NAVIGATION,
        '<main id="content">\n<ol class="crumbs"><li><a href="/index.html">Home</a></li>'
        '<li aria-current="page">All products</li></ol>\n<div class="listing-layout">\n'
        '<aside class="filters"><h2>Filter</h2>\n<ul class="filters__list">\n',
    ]
    parts.extend(
        f'<li><label><input type="checkbox" name="dept" value="{slug(d)}"> {esc(d)} '
        f'<span class="count">{rng.randint(40, 1200)}</span></label></li>\n'
        for d in DEPARTMENTS
    )
    parts.append(
        '</ul>\n<p><a class="view-all" href="page-1.html">View all products</a></p>\n</aside>\n'
        f'<section class="results"><h1>All products</h1>\n<p class="results__count">Showing {first}–{last} '
        f'of {n}</p>\n<ol class="results__grid">\n'
    )
    parts.extend(
        "<li>\n" + pod(product(seed, pid), f"product-{pid}.html", rng, with_form=True) + "</li>\n"
        for pid in range(first, last + 1)
    )
    parts.append('</ol>\n<nav class="paging"><ul class="pager">\n')
    if k > 1:
        parts.append(f'<li class="previous"><a href="page-{k - 1}.html">‹ previous</a></li>\n')
    parts.append(f'<li class="current">Page {k} of {pages}</li>\n')
    if k < pages:
        parts.append(f'<li class="next"><a href="page-{k + 1}.html">next ›</a></li>\n')
    parts.append("</ul></nav>\n</section>\n</div>\n</main>\n")
    parts.append(FOOTER)
    parts.append(ANALYTICS % k)
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode()


def index_page(seed: int, n: int) -> bytes:
    rng = random.Random(f"index|{seed}")
    featured = sorted(rng.sample(range(1, n + 1), min(8, n)))
    parts = [
        head(
            f"{SHOP} – things for the kitchen, table & garden",
            "Made slowly, by people we know.",
            "/index.html",
        ),
        '<body class="page page--home" data-kind="home">\n',
        HEADER,
        NAVIGATION,
        '<main id="content">\n<section class="hero"><h1>The winter table</h1>'
        "<p>Stoneware, linen &amp; copper from twenty-two workshops – Tromsø to Cádiz.</p>"
        '<a class="view-all button" href="catalogue/page-1.html">Shop everything</a></section>\n'
        '<section class="featured"><h2>Picked this week</h2>\n<ol class="featured__grid">\n',
    ]
    parts.extend(
        "<li>\n" + pod(product(seed, pid), f"catalogue/product-{pid}.html", rng, with_form=True) + "</li>\n"
        for pid in featured
    )
    parts.append("</ol>\n</section>\n</main>\n")
    parts.append(FOOTER)
    parts.append(ANALYTICS % 0)
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode()
