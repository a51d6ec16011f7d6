"""Spiders for the politeness and limits tests (robots.txt, redirects, binary, cookies, sitemaps)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from crawlkit import Request, Response, Spider


class UrlsSpider(Spider):
    """Fetches absolute URLs (``urls``, space-separated); one item per page with its title."""

    name = "polite_urls"
    urls = ""

    def start_requests(self) -> Iterator[Request]:
        for url in self.urls.split():
            yield Request(url)

    def parse(self, response: Response) -> Iterator[Any]:
        title = response.css_first("title")
        yield {
            "url": response.url,
            "request_url": response.request.url,
            "title": title.text(strip=True) if title is not None else None,
        }


class TrustingUrlsSpider(UrlsSpider):
    """``UrlsSpider`` with TLS verification turned off, as a spider can."""

    name = "polite_trusting"
    custom_settings = {"verify_tls": False}


class LinksSpider(Spider):
    """Starts at ``start`` and follows every link (``follow_all``); one item per page."""

    name = "polite_links"
    start = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.start)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a")


class OnsiteLinksSpider(LinksSpider):
    name = "polite_onsite_links"
    allowed_domains = ["127.0.0.1"]


class BinarySpider(Spider):
    """One binary response not asked for, one asked for (body read), one whose text is read."""

    name = "polite_binary"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/binary?type=image/png&n=1")
        yield Request(f"{self.base}/binary?type=application/pdf&n=2", meta={"allow_binary": True})
        yield Request(
            f"{self.base}/binary?type=image/png&n=3", meta={"allow_binary": True, "read_text": True}
        )
        yield Request(f"{self.base}/ok")

    def parse(self, response: Response) -> Iterator[Any]:
        if response.meta.get("read_text"):
            yield {"url": response.url, "text": response.text}  # raises NotTextError
            return
        if response.meta.get("allow_binary"):
            yield {"url": response.url, "size": len(response.body), "magic": response.body[:4].hex()}
            return
        yield {"url": response.url, "title": response.css_first("title").text(strip=True)}


class CookieSpider(Spider):
    """A cookie set by one host, then echo pages on that host and on another (``other``)."""

    name = "polite_cookies"
    base = ""
    other = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/set-cookie?name=session&value=s3cret")

    def parse(self, response: Response) -> Iterator[Any]:
        yield Request(f"{self.base}/echo?h=same", callback=self.parse_echo)
        yield Request(f"{self.other}/echo?h=other", callback=self.parse_echo)

    def parse_echo(self, response: Response) -> Iterator[Any]:
        echo = orjson.loads(response.body)
        yield {"url": response.url, "cookie": echo["headers"].get("Cookie")}


class PostRedirectSpider(Spider):
    """POSTs a body to redirects of each code; the echo page says what arrived."""

    name = "polite_post_redirect"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        for code in (301, 302, 303, 307, 308):
            yield Request(
                f"{self.base}/redirect-to?url=/echo%3Fcode%3D{code}&code={code}",
                method="POST",
                body=b"payload=1",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                meta={"code": code},
            )

    def parse(self, response: Response) -> Iterator[Any]:
        echo = orjson.loads(response.body)
        yield {
            "code": response.meta["code"],
            "method": echo["method"],
            "body": echo["body"],
            "url": response.url,
        }


class SitemapSpider(Spider):
    """Crawls what sitemaps list; ``sitemap_urls`` and ``follow_robots`` come as arguments."""

    name = "polite_sitemaps"
    sitemap_callback = "parse_page"
    sitemaps = ""
    follow_robots = ""
    start = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sitemap_urls = self.sitemaps.split()  # type: ignore[misc]
        self.sitemap_follow_robots = bool(self.follow_robots)  # type: ignore[misc]
        self.start_urls = [self.start] if self.start else []  # type: ignore[misc]

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "start": True}

    def parse_page(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "lastmod": response.meta.get("sitemap_lastmod")}
