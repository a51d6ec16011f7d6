"""The benchmark shop's catalogue: its vocabulary, its products and the text that fills its pages.

Everything depends only on (seed, product id): each product and each page has its own
``random.Random`` seeded with a string, so a page's bytes do not depend on which process writes it.
The shop is meant to be full of non-ASCII text: en dashes, multiplication signs, curly quotes.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from ._page import pounds

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
REVIEWERS = [
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
STARS = ["One", "Two", "Three", "Four", "Five"]
MONTHS = _words("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec")

DEPARTMENTS = {
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
        return pounds(self.pence)

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
    department = rng.choice(list(DEPARTMENTS))
    return Product(
        pid=pid,
        title=title,
        pence=rng.randrange(195, 38_000),
        stock=0 if rng.random() < 0.1 else rng.randint(1, 60),
        sku="HH-" + hashlib.sha256(f"sku|{seed}|{pid}".encode()).hexdigest()[:12].upper(),
        stars=rng.choice(STARS),
        department=department,
        section=rng.choice(DEPARTMENTS[department]),
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
