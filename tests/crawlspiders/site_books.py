"""The book catalogue of the ``books`` site mirror, scraped the way docs/tutorial.md teaches.

Run by tests/integration/test_real_sites.py with ``crawlkit runspider``; ``-a base=http://127.0.0.1:PORT``
points it at the mirror served on loopback. Only crawlkit and the standard library are imported,
as in a user's own spider file.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class BooksSpider(Spider):
    name = "site_books"
    allowed_domains = ["127.0.0.1"]
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base + "/")

    def parse(self, response: Response) -> Iterator[Any]:
        # A listing page (the home page, a category, a page of either): its books, then every other
        # link (categories, subcategories, pages); links seen before are not fetched again.
        yield from response.follow_all(css="a.product-link", callback=self.parse_book)
        yield from response.follow_all(css="a[href]")

    def parse_book(self, response: Response) -> Iterator[Any]:
        info = {
            dt.text(strip=True): dd.text(strip=True)
            for dt, dd in zip(response.css("dl.row dt"), response.css("dl.row dd"), strict=True)
        }
        lines = [p.text(strip=True) for p in response.css("p.mb-0")]
        price = next(line for line in lines if line.startswith("Price:"))
        availability = info.get("Availability", "")  # out-of-stock books have none
        yield {
            "url": response.url,
            "title": response.css_first("h1").text(strip=True),
            "price": float(price.removeprefix("Price:").strip().lstrip("£")),
            "in_stock": "In stock" in lines,
            "available": int(availability.split("(")[1].split()[0]) if "(" in availability else 0,
            "upc": info["UPC"],
            "rating": len(response.css("div.rating span.star.filled")),
            "category": response.css("ol.breadcrumb a")[-1].text(strip=True),
        }
