"""Scrape every book of the demo bookshop.

Serve the shop with ``python -m crawlkit.demo --port 8080``, then run ``crawlkit crawl bookshop``
(add ``-a base_url=http://127.0.0.1:PORT/`` if it listens elsewhere).
"""

from collections.abc import Iterator
from typing import Any

from crawlkit.http import Request, Response
from crawlkit.spider import Spider


class Bookshop(Spider):
    name = "bookshop"
    base_url = "http://127.0.0.1:8080/"

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base_url)

    def parse(self, response: Response) -> Iterator[Request]:
        # Categories, the catalogue and the next listing page; then every book on this listing.
        yield from response.follow_all(css="nav a, li.next a")
        yield from response.follow_all(css="article.product h3 a", callback=self.parse_book)

    def parse_book(self, response: Response) -> Iterator[Any]:
        yield {
            "url": response.url,
            "title": response.css_first("h1").text(strip=True),
            "price": float(response.css_first("p.price").text(strip=True).lstrip("£")),
            "upc": response.css_first("table.info td").text(strip=True),
            "availability": " ".join(response.css_first("p.availability").text().split()),
            "category": response.css("ol.breadcrumb a")[-1].text(strip=True),
        }
        yield from response.follow_all(css="section.related a", callback=self.parse_book)
