"""The bookshop's catalogue: categories, books and the seeded randomness that invents them.

Titles, descriptions and names carry non-ASCII text on purpose, and the availability markup has
the ragged whitespace templating engines leave behind, so a crawl of the shop meets both.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass

from ._page import pounds

BOOKS_PER_PAGE = 20
CATALOGUE_REDIRECT = "/catalogue/"
MISSING_BOOK = "/book/0-missing.html"
SHOP_NAME = "Les Livres d’Émile"  # noqa: RUF001
LEGACY_TITLE = "Café Crème — Éclairs"

BookItem = dict[str, str | float]


@dataclass(frozen=True, slots=True)
class Category:
    name: str
    slug: str
    genre: str


@dataclass(frozen=True, slots=True)
class Book:
    id: int
    title: str
    category: Category
    price_pence: int
    stock: int
    upc: str
    rating: int
    description: str
    availability_html: str

    @property
    def path(self) -> str:
        return f"/book/{self.id}-{slugify(self.title)}.html"

    @property
    def price(self) -> str:
        return pounds(self.price_pence)

    @property
    def availability(self) -> str:
        return f"In stock ({self.stock} available)" if self.stock else "Out of stock"


CATEGORIES = (
    Category("Fiction", "fiction", "novel"),
    Category("Poésie", "poesie", "collection of poems"),
    Category("Crime & Mystery", "crime-mystery", "thriller"),
    Category("Cuisine & Pâtisserie", "cuisine-patisserie", "cookbook"),
    Category("Travel", "travel", "travel memoir"),
    Category("Kinderbücher", "kinderbucher", "picture book"),
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
RATINGS = ("One", "Two", "Three", "Four", "Five")
_GAPS = (" ", "  ", "\n      ", "\t", " \n ")


def slugify(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")


def category_page(category: Category, number: int) -> str:
    return f"/category/{category.slug}/page-{number}.html"


def pages_needed(count: int) -> int:
    return max(1, -(-count // BOOKS_PER_PAGE))


def _make_title(rng: random.Random) -> str:
    return rng.choice(_TITLE_PATTERNS).format(
        adj=rng.choice(_ADJECTIVES),
        noun=rng.choice(_NOUNS),
        place=rng.choice(_PLACES),
        name=rng.choice(_NAMES),
    )


def _make_description(rng: random.Random, category: Category) -> str:
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


def make_book(
    rng: random.Random, book_id: int, title: str | None = None, category: Category | None = None
) -> Book:
    category = category or rng.choice(CATEGORIES)
    stock = rng.choice((0, *range(1, 23)))
    return Book(
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
