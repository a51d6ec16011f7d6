#!/usr/bin/env python3
"""Generate the benchmark's static shop site, deterministically.

    python bench/site.py OUT --n 10000 --seed 42 [--jobs 2]

Writes under OUT:

* ``index.html`` -- home page; its ``a.view-all`` leads to ``catalogue/page-1.html``
* ``catalogue/page-K.html`` -- listings of 20 products (``article.product_pod h3 a``), chained by
  ``li.next a``; each also has an ``a.view-all`` back to page 1 (a duplicate the crawler must drop)
* ``catalogue/product-ID.html`` -- product pages of 30-60 KB: a head with meta, link and script
  tags, a ~110-link navigation menu, breadcrumb, ``div.product_main`` (``h1``, ``p.price_color``,
  ``p.availability`` with irregular whitespace), ``table#product-info`` (one row is SKU),
  description, reviews, 5 related products (``section.related-products article.product_pod h3 a``),
  footer; titles and text carry non-ASCII characters and HTML entities
* ``X.html.gz`` beside every page (gzip -6, for nginx's ``gzip_static``)
* ``expected.jsonl`` -- the item every product page must yield
* ``manifest.json`` -- written last: n, seed, SKUs, every page path, sizes

Everything depends only on (n, seed): each page has its own ``random.Random`` seeded with a
string, so the bytes are the same whatever ``--jobs`` is.

Crawl contract (what every contender does): start at ``/index.html``; follow ``li.next a``,
``a.view-all`` and ``article.product_pod h3 a``, de-duplicated; from every page that has
``div.product_main`` emit ``{url, title, price, sku, availability, n_related}``. Every other link
(menu, breadcrumb, footer, reviews, images) points at pages that do not exist.
"""

# The shop is meant to be full of non-ASCII text: en dashes, multiplication signs, curly quotes.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import itertools
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from multiprocessing import Pool

GENERATOR = "crawlkit-bench-site/1"
PER_PAGE = 20
N_RELATED = 5
SHOP = "Harbour & Hearth"
MIN_PRODUCT_BYTES = 30_000
MAX_PRODUCT_BYTES = 60_000

# ------------------------------------------------------------------------------------ vocabulary


def _words(text: str) -> list[str]:
    return text.split()


_COMMON = _words("""
a the and with for of to in on your this that it is our every from by at as or but so very
more most just also made keeps holds brings gives lets makes turns stays works fits looks feels
warm cool soft bright deep quiet calm honest simple careful sturdy light heavy small large tall
wide narrow round square smooth rough natural pale dark rich fresh clean slow easy quick gentle
oak ash elm beech walnut cherry maple pine birch teak linen cotton wool hemp jute leather cork
clay stone marble slate glass brass copper iron steel tin enamel porcelain stoneware earthenware
bowl plate cup mug jug jar pot pan tray board rack shelf hook basket box crate tin vase lamp
kitchen table shelf window hallway porch garden shed studio desk bench counter hearth fireside
morning evening weekend winter summer autumn spring supper breakfast lunch picnic harvest market
family friends guests neighbours children grandparents household everyday occasional seasonal
handmade turned thrown woven knitted stitched forged hammered glazed oiled waxed brushed polished
design shape form line edge rim base handle lid spout foot grain texture finish colour tone shade
water tea coffee bread soup stew herbs flowers fruit butter honey cheese oats salt pepper oil
care wash dry store stack hang pour serve carry keep share cook bake brew steep stir knead
maker workshop village coast valley river harbour island hill moor meadow orchard forest field
""")

_FOREIGN = [
    "café",
    "crème",
    "brûlée",
    "façade",
    "naïve",
    "jalapeño",
    "smörgåsbord",
    "Ærø",
    "Tromsø",
    "Škoda",
    "Dvořák",
    "Bílá",
    "Łódź",
    "Gdańsk",
    "Köln",
    "Düsseldorf",
    "Málaga",
    "Cádiz",
    "Açores",
    "Ürgüp",
    "İzmir",
    "Þingvellir",
    "Ísland",
    "Čaj",
    "piñón",
    "crêpe",
    "gâteau",
    "pâté",
    "déjà",
    "½ litre",
    "¾ cup",
    "90 °C",
    "2 × 3",
    "±1 mm",
    "“lovely”",
    "it’s",
    "—",
    "…",
    "✓",
    "★★★★☆",
]

_VOCAB = _COMMON + _FOREIGN
_CUM_WEIGHTS = list(
    itertools.accumulate([1.0 / (i + 12) for i in range(len(_COMMON))] + [0.005] * len(_FOREIGN))
)

_MAKERS = [
    "Aldeburgh Pottery",
    "Brønd & Kjær",
    "Cotswold Forge",
    "Dunmore Weavers",
    "Élan Atelier",
    "Fenwick & Daughters",
    "Gårdsbutik",
    "Halloran Joinery",
    "Île de Ré Linens",
    "Jökull Studio",
    "Kerrow Mill",
    "Lindqvist",
    "Moorcroft & Ng",
    "Nørrebro Works",
    "Orchard Lane",
    "Pádraig Ó Sé",
    "Quayside Co.",
    "Rosenthal Haus",
    "Saltmarsh",
    "Tŷ Gwyn Crafts",
    "Ulverston Tin",
    "Vézelay",
]
_QUALITIES = [
    "Hand-thrown",
    "Oiled",
    "Enamelled",
    "Waxed",
    "Forged",
    "Turned",
    "Stoneware",
    "Linen",
    "Recycled-Glass",
    "Brushed-Brass",
    "Ash-Wood",
    "Slate",
    "Copper",
    "Woollen",
    "Jute",
    "Cork",
    "Marble",
    "Speckled",
    "Rattan",
    "Cast-Iron",
    "Crackle-Glaze",
    "Washed-Cotton",
]
_OBJECTS = [
    "Milk Jug",
    "Tea Caddy",
    "Bread Board",
    "Butter Dish",
    "Pestle & Mortar",
    "Fruit Bowl",
    "Coat Hook",
    "Log Basket",
    "Table Runner",
    "Oven Glove",
    "Herb Planter",
    "Salad Servers",
    "Candle Holder",
    "Wall Shelf",
    "Storage Crate",
    "Coffee Scoop",
    "Honey Pot",
    "Egg Cup Set",
    "Soup Ladle",
    "Plant Mister",
    "Door Stop",
    "Tea Towel",
    "Cheese Knife",
    "Serving Platter",
    "Spice Rack",
    "Pitcher",
    "Utensil Pot",
    "Trivet",
    "Key Tray",
    "Hand Broom",
]
_EDITIONS = ["", "", "", "(Large)", "(Set of 2)", "– Ivory", "– Moss", "– Ochre", "– Ébène", "No. 3", "Mk II"]
_REVIEWERS = [
    "Aoife K.",
    "Björn S.",
    "Céline M.",
    "Dagmar W.",
    "Eoghan R.",
    "Françoise L.",
    "Gülşen A.",
    "Håkon B.",
    "Iñaki P.",
    "Jürgen T.",
    "Kasia Z.",
    "Lúcia F.",
    "Mihály V.",
    "Nuala O.",
    "Øystein H.",
    "Paweł D.",
    "Rhiannon E.",
    "Søren N.",
    "Thandiwe M.",
    "Yusuf Ç.",
]
_STARS = ["One", "Two", "Three", "Four", "Five"]
_MONTHS = _words("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec")

_DEPARTMENTS = {
    "Kitchen": [
        "Jugs",
        "Boards",
        "Bowls",
        "Knives",
        "Utensils",
        "Storage",
        "Linen",
        "Scales",
        "Tins",
        "Pans",
    ],
    "Dining": [
        "Plates",
        "Cups",
        "Glasses",
        "Cutlery",
        "Platters",
        "Napkins",
        "Runners",
        "Trivets",
        "Carafes",
    ],
    "Living": ["Cushions", "Throws", "Vases", "Clocks", "Mirrors", "Candles", "Frames", "Rugs", "Baskets"],
    "Bedroom": ["Bedding", "Pillows", "Blankets", "Lamps", "Hooks", "Trays", "Boxes", "Slippers", "Robes"],
    "Bathroom": ["Towels", "Soaps", "Brushes", "Mats", "Caddies", "Jars", "Robes", "Mirrors", "Stools"],
    "Garden": ["Planters", "Tools", "Gloves", "Seeds", "Lanterns", "Benches", "Feeders", "Hoses", "Pots"],
    "Workshop": ["Hand Tools", "Brushes", "Aprons", "Benches", "Clamps", "Oils", "Waxes", "Twine", "Tape"],
    "Pantry": ["Tea", "Coffee", "Honey", "Preserves", "Oils", "Salts", "Spices", "Biscuits", "Chocolate"],
    "Outdoors": ["Picnic", "Flasks", "Blankets", "Lanterns", "Knives", "Bags", "Chairs", "Stoves", "Mugs"],
    "Gifts": [
        "For Cooks",
        "For Gardeners",
        "For Hosts",
        "For Readers",
        "Under £20",
        "Under £50",
        "Hampers",
        "Cards",
        "Wrapping",
        "Vouchers",
        "Little Luxuries",
    ],
}


def slug(text: str) -> str:
    out: list[str] = []
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def esc(text: str) -> str:
    return html.escape(text, quote=True)


# ------------------------------------------------------------------------------------ products


@dataclass(frozen=True, slots=True)
class Product:
    pid: int
    title: str
    pence: int
    stock: int  # 0: out of stock
    sku: str
    stars: str
    department: str
    section: str
    image: str

    @property
    def price(self) -> str:
        return f"£{self.pence // 100}.{self.pence % 100:02d}"

    @property
    def availability(self) -> str:
        return f"In stock ({self.stock} available)" if self.stock else "Out of stock"

    @property
    def path(self) -> str:
        return f"/catalogue/product-{self.pid}.html"


def product(seed: int, pid: int) -> Product:
    """What every page shows about product ``pid`` (listings, related products, its own page)."""
    rng = random.Random(f"product|{seed}|{pid}")
    title = " ".join(
        part
        for part in (rng.choice(_MAKERS), rng.choice(_QUALITIES), rng.choice(_OBJECTS), rng.choice(_EDITIONS))
        if part
    )
    department = rng.choice(list(_DEPARTMENTS))
    return Product(
        pid=pid,
        title=title,
        pence=rng.randrange(195, 38_000),
        stock=0 if rng.random() < 0.1 else rng.randint(1, 60),
        sku="HH-" + hashlib.sha256(f"sku|{seed}|{pid}".encode()).hexdigest()[:12].upper(),
        stars=rng.choice(_STARS),
        department=department,
        section=rng.choice(_DEPARTMENTS[department]),
        image=hashlib.sha256(f"img|{seed}|{pid}".encode()).hexdigest()[:16],
    )


# ------------------------------------------------------------------------------------ shared chrome


def sentence(rng: random.Random, lo: int = 7, hi: int = 24) -> str:
    words = rng.choices(_VOCAB, cum_weights=_CUM_WEIGHTS, k=rng.randint(lo, hi))
    if len(words) > 6 and rng.random() < 0.3:
        words[rng.randint(2, len(words) - 3)] += ","
    text = " ".join(words)
    return text[:1].upper() + text[1:] + rng.choice(".....!?")


def paragraph(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(lo, hi)))


def _navigation() -> str:
    rows = [
        '<nav id="site-nav" class="site-nav" aria-label="Shop by department">\n<ul class="site-nav__menu">\n'
    ]
    for d, (dept, sections) in enumerate(_DEPARTMENTS.items(), start=1):
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
    "Departments": list(_DEPARTMENTS)[:8],
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
            f'<article class="review" id="review-{count}"><p class="star-rating {rng.choice(_STARS)}"></p>'
            f"<h3>{esc(sentence(rng, 3, 8))}</h3>"
            f'<p class="review__meta">{esc(rng.choice(_REVIEWERS))} · '
            f"<time>{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(2015, 2025)}</time>"
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
        for d in _DEPARTMENTS
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


# ------------------------------------------------------------------------------------ writing


def write_page(out: str, rel: str, data: bytes) -> tuple[int, int]:
    """Write ``rel`` and ``rel.gz``; return (plain bytes, gzip bytes)."""
    packed = gzip.compress(data, compresslevel=6, mtime=0)
    path = os.path.join(out, rel)
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".gz", "wb") as f:
        f.write(packed)
    return len(data), len(packed)


def _write_products(job: tuple[str, int, int, int, int]) -> list[tuple[dict[str, object], int, int]]:
    out, seed, n, lo, hi = job
    done = []
    for pid in range(lo, hi):
        data, expected = product_page(seed, n, pid)
        raw, packed = write_page(out, f"catalogue/product-{pid}.html", data)
        done.append((expected, raw, packed))
    return done


def _write_listings(job: tuple[str, int, int, int, int, int]) -> list[tuple[int, int]]:
    out, seed, n, pages, lo, hi = job
    return [
        write_page(out, f"catalogue/page-{k}.html", listing_page(seed, n, k, pages)) for k in range(lo, hi)
    ]


def generate(out: str, n: int, seed: int, jobs: int) -> dict[str, object]:
    started = time.perf_counter()
    os.makedirs(os.path.join(out, "catalogue"), exist_ok=True)
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # its presence marks a complete site
    pages = (n + PER_PAGE - 1) // PER_PAGE
    step = 200
    product_jobs = [(out, seed, n, lo, min(n + 1, lo + step)) for lo in range(1, n + 1, step)]
    listing_jobs = [(out, seed, n, pages, lo, min(pages + 1, lo + step)) for lo in range(1, pages + 1, step)]
    raw_total, gz_total = write_page(out, "index.html", index_page(seed, n))
    if jobs > 1:
        with Pool(jobs) as pool:
            listing_sizes = pool.map(_write_listings, listing_jobs)
            product_results = pool.map(_write_products, product_jobs)
    else:
        listing_sizes = [_write_listings(j) for j in listing_jobs]
        product_results = [_write_products(j) for j in product_jobs]
    for chunk in listing_sizes:
        for raw, packed in chunk:
            raw_total += raw
            gz_total += packed
    expected: list[dict[str, object]] = []
    product_sizes: list[int] = []
    for result in product_results:
        for item, raw, packed in result:
            expected.append(item)
            product_sizes.append(raw)
            raw_total += raw
            gz_total += packed
    skus = [str(e["sku"]) for e in expected]
    if len(set(skus)) != len(skus):
        raise SystemExit("two products got the same SKU; use another --seed")
    with open(os.path.join(out, "expected.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in expected)
    paths = (
        ["/index.html"]
        + [f"/catalogue/page-{k}.html" for k in range(1, pages + 1)]
        + [f"/catalogue/product-{pid}.html" for pid in range(1, n + 1)]
    )
    product_sizes.sort()
    manifest: dict[str, object] = {
        "generator": GENERATOR,
        "n": n,
        "seed": seed,
        "per_page": PER_PAGE,
        "listing_pages": pages,
        "pages_total": len(paths),
        "bytes_html": raw_total,
        "bytes_gzip": gz_total,
        "product_bytes": {
            "min": product_sizes[0],
            "median": product_sizes[len(product_sizes) // 2],
            "max": product_sizes[-1],
        },
        "skus": sorted(skus),
        "paths": paths,
    }
    with open(manifest_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"site.py: {len(paths)} pages in {time.perf_counter() - started:.1f} s -> {out}", file=sys.stderr)
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output folder")
    ap.add_argument("--n", type=int, default=10_000, help="number of products (default 10000)")
    ap.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    args = ap.parse_args(argv)
    if args.n < N_RELATED + 1:
        ap.error(f"--n must be at least {N_RELATED + 1}")
    manifest = generate(args.out, args.n, args.seed, args.jobs)
    print(json.dumps({k: v for k, v in manifest.items() if k not in ("skus", "paths")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
