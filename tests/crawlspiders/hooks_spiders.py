"""Spiders, middlewares and an extension written the Scrapy way, for the hooks tests.

Middlewares and extensions run in the main process: the ones here record what they saw in
``CALLS`` and ``EVENTS``, which the in-process tests read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import Failure, IgnoreRequest, Request, Response, Spider

CALLS: list[tuple[str, ...]] = []
EVENTS: list[tuple[Any, ...]] = []


class ApiShopSpider(Spider):
    """Logs in, walks the catalogue and reads each product from the API; failures go to an errback."""

    name = "api_shop"
    base = ""
    api_key = "k3y-0f-the-api"
    user = "alice"

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/login?user={self.user}", callback=self.after_login)

    def after_login(self, response: Response) -> Iterator[Any]:
        yield response.follow("/catalogue", callback=self.parse_catalogue)

    def parse_catalogue(self, response: Response) -> Iterator[Any]:
        for href in response.css("a.api::attr(href)").getall():
            yield response.follow(href, callback=self.parse_product, errback=self.api_failed)
        next_page = response.css("a.next::attr(href)").get()
        if next_page is not None:
            yield response.follow(next_page, callback=self.parse_catalogue)

    def parse_product(self, response: Response) -> Iterator[Any]:
        yield {"kind": "product", **response.json()}

    def api_failed(self, failure: Failure) -> Iterator[Any]:
        yield {
            "kind": "failure",
            "url": failure.request.url,
            "reason": failure.reason,
            "exception": failure.exception,
            "message": failure.message,
            "status": failure.response.status if failure.response is not None else None,
        }


class ApiKeyMiddleware:
    """Adds the API key the spider names to the requests for the API."""

    def __init__(self, key: str) -> None:
        self.key = key

    @classmethod
    def from_crawler(cls, crawler: Any) -> ApiKeyMiddleware:
        return cls(crawler.spider.api_key)

    def process_request(self, request: Request) -> None:
        if "/api/" in request.url:
            request.headers = {**(request.headers or {}), "X-Api-Key": self.key}


class TwoSessionsSpider(Spider):
    """Two users logged in at once, each in a cookie jar of its own."""

    name = "two_sessions"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        for user in ("alice", "bob"):
            yield Request(
                f"{self.base}/login?user={user}",
                callback=self.logged_in,
                meta={"cookiejar": user},
                cookies={"flavour": f"{user}-flavour"},
            )

    def logged_in(self, response: Response) -> Iterator[Any]:
        jar = response.meta["cookiejar"]
        for n in range(3):
            yield Request(
                f"{self.base}/whoami?jar={jar}&n={n}", callback=self.whoami, meta={"cookiejar": jar}
            )
        yield Request(f"{self.base}/whoami?jar=default", callback=self.whoami)

    def whoami(self, response: Response) -> Iterator[Any]:
        yield {"jar": response.meta.get("cookiejar"), **response.json()}


# -- middlewares that record the order of calls, and what each return value does -------------


class Recorder:
    label = "?"

    def process_request(self, request: Request) -> None:
        CALLS.append(("request", self.label, request.url.rsplit("/", 1)[-1]))

    async def process_response(self, request: Request, response: Response) -> None:
        CALLS.append(("response", self.label, request.url.rsplit("/", 1)[-1], str(response.status)))

    def process_exception(self, request: Request, exception: BaseException) -> None:
        CALLS.append(("exception", self.label, request.url.rsplit("/", 1)[-1], type(exception).__name__))


class First(Recorder):
    label = "first"


class Second(Recorder):
    label = "second"


class Steering:
    """What each return value does: ``/canned`` answered without a fetch, ``/old`` replaced by
    ``/new``, a refused connection rescued with a response, ``/boom`` raises, ``/skip`` ignored,
    and the API's refusal swapped for a request to ``/echo/after-refusal``."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings  # Class(settings) when there is no from_crawler

    async def process_request(self, request: Request) -> Request | Response | None:
        name = request.url.rsplit("/", 1)[-1]
        if name == "canned":
            return Response(request.url, 200, {"Content-Type": "text/html"}, b"<h1>canned</h1>", request)
        if name == "old":
            return request.replace(url=request.url.replace("/old", "/new"))
        if name == "boom":
            raise RuntimeError("the middleware broke")
        if name == "skip":
            raise IgnoreRequest("not wanted")
        return None

    def process_response(self, request: Request, response: Response) -> Request | Response | None:
        if response.status in (401, 403):
            return Request(request.url.split("/api/")[0] + "/echo/after-refusal")
        return None

    def process_exception(self, request: Request, exception: BaseException) -> Response | None:
        return Response(request.url, 200, {"Content-Type": "text/html"}, b"<h1>rescued</h1>", request)


class EchoSpider(Spider):
    """Yields the heading of every page it gets, and records failures through its errback."""

    name = "echo"
    urls: list[str] = []

    def start_requests(self) -> Iterator[Request]:
        for url in self.urls:
            yield Request(url, errback=self.failed, dont_filter=True)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "h1": response.css("h1::text").get()}

    def failed(self, failure: Failure) -> Iterator[Any]:
        yield {"url": failure.request.url, "failed": failure.reason}


# -- an extension that listens to crawl events ------------------------------------------------


class EventLog:
    """Subscribes to every crawl event; one handler raises, which must not stop the crawl."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> EventLog:
        ext = cls()
        ext.crawler = crawler
        signals = crawler.signals
        signals.connect(ext.item_scraped, "item_scraped")
        signals.connect(ext.item_dropped, "item_dropped")
        signals.connect(ext.request_failed, "request_failed")
        signals.connect(ext.spider_idle, "spider_idle")
        signals.connect(ext.spider_closed, "spider_closed")
        signals.connect(ext.broken, "item_scraped")
        return ext

    crawler: Any = None
    idled = False

    async def item_scraped(self, item: Any) -> None:
        EVENTS.append(("item_scraped", item.get("url")))

    def item_dropped(self, item: Any, reason: str) -> None:
        EVENTS.append(("item_dropped", item.get("url"), reason))

    def request_failed(self, request: Request, failure: Failure) -> None:
        EVENTS.append(("request_failed", request.url, failure.reason))

    async def spider_idle(self) -> None:
        EVENTS.append(("spider_idle",))
        if not self.idled:  # once: one more page, scheduled when the crawl ran dry
            self.idled = True
            await self.crawler.schedule(Request(self.crawler.spider.urls[0].rsplit("/", 1)[0] + "/at-idle"))

    def spider_closed(self, reason: str) -> None:
        EVENTS.append(("spider_closed", reason))

    def broken(self, item: Any) -> None:
        raise ValueError("a handler with a bug")


class DropEchoes:
    """A pipeline that drops the page named ``drop-me``."""

    def process_item(self, item: Any, spider: Spider) -> Any:
        return None if str(item.get("url", "")).endswith("/drop-me") else item
