"""The spider of the HTTP cache and re-crawl tests (``support/versionsite.py``).

``-a base=http://127.0.0.1:PORT``; ``-a extra=1`` also asks for ``/ban`` (403) and ``/err`` (500);
``-a tag=T`` adds ``"tag": T`` to each item (tells an item parsed now from one stored before).
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class Versioned(Spider):
    name = "versioned"
    base = ""
    extra = ""
    tag = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/")
        if self.extra:
            yield Request(f"{self.base}/ban")
            yield Request(f"{self.base}/err")

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a.page", callback=self.parse_page)

    def parse_page(self, response: Response) -> Iterator[Any]:
        n = int(response.url.rsplit("/", 1)[1])
        title = response.css_first("h1").text()
        item: dict[str, Any] = {"n": n, "title": title, "price": int(response.css_first("span.price").text())}
        if self.tag:
            item["tag"] = self.tag
        yield item


class StampRun:
    """A pipeline: ``"piped": TAG`` on each item, the tag of the run whose pipelines it passed."""

    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        return {**item, "piped": getattr(spider, "tag", "")}
