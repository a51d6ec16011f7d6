"""Plain spiders for the exporter, CLI-tool and user-error tests (importable by parser workers).

Each crawls the test site's link graph (``/graph/N``): ``base`` and ``size`` arrive as spider
arguments (strings, as ``-a`` gives them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


def graph_start(base: str, size: str) -> str:
    return f"{base}/graph/0?size={size}&fanout=5&seed=0"


class GraphBase(Spider):
    base = ""
    size = "40"
    allowed_domains = ["127.0.0.1"]

    def start_requests(self) -> Iterator[Request]:
        yield Request(graph_start(self.base, self.size))

    def page(self, response: Response) -> dict[str, Any]:
        return {
            "n": response.css_first("span.n").text(),
            "title": response.css_first("h1.title").text(),
            "url": response.url,
        }


class GraphItems(GraphBase):
    """One plain item per graph page, with a nested list and a missing field now and then."""

    name = "graph_items"

    def parse(self, response: Response) -> Iterator[Any]:
        item = self.page(response)
        item["n"] = int(item["n"])
        item["tags"] = ["even"] if item["n"] % 2 == 0 else []
        if item["n"] % 7 == 0:
            item["note"] = 'a "quoted", comma\nand a newline'
        yield item
        yield from response.follow_all(css="a.graph")


class WrongCallback(GraphBase):
    """Names a callback that does not exist, from its first page."""

    name = "wrong_callback"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"n": 0}
        yield response.follow("/ok", callback="parse_itme")

    def parse_item(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}


class WrongSelector(GraphBase):
    """Uses an XPath where crawlkit wants CSS."""

    name = "wrong_selector"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"title": response.css_first("//h1").text()}


class BuggyCallbacks(GraphBase):
    """Follows the whole graph, but ``parse_page`` raises on every page: one bug, many pages.

    Pages whose number ends in 3 fail in ``parse`` with a LookupError (of two lines) instead: a second bug.
    """

    name = "buggy_callbacks"

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a.graph")
        if response.css_first("span.n").text().endswith("3"):
            raise LookupError("no such field\nsecond line of the message")
        yield from self.parse_page(response)

    def parse_page(self, response: Response) -> Iterator[Any]:
        raise ValueError(f"price missing on page {response.css_first('span.n').text()}")
        yield {}
