"""Spiders of the crawls through proxies and sessions (tests/integration/test_identities_crawl.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class DefendedShopSpider(Spider):
    """Every page of a defended site: one item a page, whatever answered it."""

    name = "defended"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/list")

    def parse(self, response: Response) -> Iterator[Any]:
        for link in response.css("a"):
            yield response.follow(link.attrs["href"], callback=self.parse_page)

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        title = response.css_first("title")
        yield {"url": response.url, "title": title.text(strip=True) if title else None}
