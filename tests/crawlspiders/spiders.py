"""Small spiders for the tests; each takes the test site's address as the ``base`` argument."""

from __future__ import annotations

import dataclasses
import datetime
import os
from collections.abc import Iterator
from typing import Any

from crawlkit import CloseSpider, DropItem, Request, Response, Spider


class GraphSpider(Spider):
    """Follows every link of the generated link graph (and the junk links beside them)."""

    name = "graph"
    allowed_domains = ["127.0.0.1"]
    base = ""
    size = 1000

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/graph/0?size={self.size}&fanout=5&seed=0")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"n": int(response.css_first("span.n").text()), "url": response.url}
        yield from response.follow_all(css="a.graph")
        yield from response.follow_all(css="a.other")


class UrlListSpider(Spider):
    """Fetches the paths it is given (``paths``, comma-separated) and yields one item per page."""

    name = "urls"
    base = ""
    paths = ""

    def start_requests(self) -> Iterator[Request]:
        for path in self.paths.split(","):
            yield Request(self.base + path)

    def parse(self, response: Response) -> Iterator[Any]:
        if response.url.endswith("/callback-raises"):
            yield {"partial": True, "url": response.url}
            raise ValueError("this page makes the callback raise")
        if response.url.endswith("/callback-exits"):
            os._exit(3)
        title = response.css_first("title")
        yield {
            "url": response.url,
            "request_url": response.request.url,
            "status": response.status,
            "title": title.text(strip=True) if title is not None else None,
            "text": response.css_first("body").text(strip=True) if response.css_first("body") else "",
        }


class DepthSpider(Spider):
    name = "depth"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/depth/0")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "depth": response.request.depth}
        yield from response.follow_all(css="a")


class ShopChainSpider(Spider):
    """Listings linking items and the next listing (``/shop/list``), as a shop's pagination."""

    name = "shop-chain"
    base = ""
    pages = "10"
    items = "20"

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/shop/list/0?pages={self.pages}&items={self.items}")

    def parse(self, response: Response) -> Iterator[Any]:
        yield from response.follow_all(css="a.item", callback=self.parse_item)
        yield from response.follow_all(css="a.next")

    def parse_item(self, response: Response) -> Iterator[Any]:
        yield {"item": response.css_first("span.item").text()}


class MetaSpider(Spider):
    """Passes data along with meta and cb_kwargs, through a named callback."""

    name = "meta"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/ok", meta={"trail": ["start"]})

    def parse(self, response: Response) -> Iterator[Any]:
        yield response.follow(
            "/status/200",
            callback=self.parse_next,
            meta={"trail": [*response.meta["trail"], "ok"]},
            cb_kwargs={"origin": response.url},
        )

    def parse_next(self, response: Response, origin: str) -> Iterator[Any]:
        yield {"trail": response.meta["trail"], "origin": origin, "status": response.status}


class StateInCallbackSpider(Spider):
    name = "state_in_callback"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        self.state["started"] = True  # fine: main process
        yield Request(f"{self.base}/ok")

    def parse(self, response: Response) -> Iterator[Any]:
        self.state["pages"] = 1  # wrong: a worker process
        yield {"url": response.url}


class ClosingSpider(Spider):
    """Asks to close after its first page."""

    name = "closing"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        for i in range(50):
            yield Request(f"{self.base}/slow?delay=0.05&i={i}")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        raise CloseSpider("enough")


class Uppercase:
    """A pipeline: upper-cases titles, drops items without one, fails on 'boom'."""

    def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any] | None:
        if item.get("title") == "boom":
            raise RuntimeError("pipeline bug")
        if not item.get("title"):
            raise DropItem("no title")
        return {**item, "title": item["title"].upper()}


class AsyncTagger:
    async def process_item(self, item: dict[str, Any], spider: Spider) -> dict[str, Any]:
        return {**item, "tagged": spider.name}


class RetryControlSpider(Spider):
    """Per-request retry controls: dont_retry, and max_retries above and below the setting."""

    name = "retry_control"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/status/503?r=never", dont_retry=True)
        yield Request(f"{self.base}/status/503?r=once", max_retries=1)
        yield Request(f"{self.base}/status/503?r=five", max_retries=5)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}


@dataclasses.dataclass
class Stamped:
    url: str
    seen: datetime.datetime
    tags: tuple[str, ...] = ()


class DataclassSpider(Spider):
    name = "dataclass_items"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/ok")

    def parse(self, response: Response) -> Iterator[Any]:
        when = datetime.datetime(2026, 11, 26, 12, 30, tzinfo=datetime.UTC)
        yield Stamped(response.url, when, ("a", "ü"))


class LinkEchoSpider(Spider):
    """Follows every ``<a>`` of a page; a link of class ``unsendable`` carries a meta that cannot
    be pickled, so the outcome holding it cannot be sent from a parser worker."""

    name = "link-echo"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        for link in response.css("a"):
            unsendable = "unsendable" in (link.attributes.get("class") or "")
            yield response.follow(link, meta={"unsendable": lambda: None} if unsendable else {})


class FollowAllSpider(Spider):
    """Follows every ``<a href>`` with ``follow_all``; one item per page, its URL."""

    name = "follow-all"

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a[href]", deny_extensions=())
