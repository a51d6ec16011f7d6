"""Spiders that render their pages in headless Chromium, for the tests of ``support.rendershop``.

Used in-process (``crawl(RenderShopSpider, ..., base=...)``) and through ``crawlkit runspider``
in a subprocess (the kill -9 test). Spider arguments arrive as strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider

# The product's own data, as the page's script received it from the shop's API.
PRODUCT_DATA = "JSON.parse(document.getElementById('data').textContent)"


class RenderShopSpider(Spider):
    """Every product of the render shop: the lists need a click and a scroll, products a script.

    With ``extras="1"`` it also renders a page that never loads (it fails alone, not retried), and
    checks cookies both ways: the crawl's cookie reaches the rendered ``/echo``, and a cookie its
    script sets reaches a plain (aiohttp) request to ``/api/echo`` afterwards.
    """

    name = "rendershop"
    render = True
    base = ""
    extras = ""
    lists = "more,scroll"  # the product lists to crawl
    screenshot_of = "0"  # the product whose render also takes a screenshot
    custom_settings = {"parse_workers": 2, "browser_concurrency": 2, "concurrency": 4}

    def start_requests(self) -> Iterator[Request]:
        lists = self.lists.split(",")
        if "more" in lists:
            yield Request(
                f"{self.base}/more",
                self.parse_list,
                wait_for="a.product",
                actions=[{"click": "button#more", "repeat": 10}],
            )
        if "scroll" in lists:
            yield Request(
                f"{self.base}/scroll",
                self.parse_list,
                wait_for="a.product",
                actions=[{"scroll": "bottom", "max_steps": 20}],
            )
        if self.extras:
            yield Request(f"{self.base}/hang", self.parse_list, render_timeout=2, max_retries=0)
            yield Request(
                f"{self.base}/echo",
                self.parse_echo,
                cookies={"sid": "abc"},
                wait_for="#echo:not(:empty)",
                actions=[
                    {"evaluate": "JSON.parse(document.getElementById('echo').textContent)", "as": "echo"},
                    {"evaluate": "document.cookie = 'seen=1; path=/'", "as": "set"},
                ],
            )

    def parse_list(self, response: Response) -> Iterator[Request]:
        for link in response.css("a.product"):
            pid = link.attrs["href"].rsplit("/", 1)[1]
            yield response.follow(
                link,
                self.parse_product,
                wait_for="h1.ready",
                actions=[{"evaluate": PRODUCT_DATA, "as": "product"}],
                screenshot=pid == self.screenshot_of,
            )

    def parse_product(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {
            "id": int(response.url.rsplit("/", 1)[1]),
            "name": response.css_first("h1").text(strip=True),
            "data": response.meta["render"]["product"],
            "screenshot": response.meta.get("screenshot"),
        }

    def parse_echo(self, response: Response) -> Iterator[Any]:
        yield {"echo": "rendered", "cookies": response.meta["render"]["echo"]["cookies"]}
        yield Request(f"{self.base}/api/echo", self.parse_api_echo, render=False)

    def parse_api_echo(self, response: Response) -> Iterator[dict[str, Any]]:
        yield {"echo": "plain", "cookies": response.json()["cookies"]}


class SlowRenderShopSpider(RenderShopSpider):
    """The button's list, a page at a time: a crawl long enough to be killed in the middle."""

    name = "rendershop_slow"
    lists = "more"
    custom_settings = {
        "parse_workers": 1,
        "browser_concurrency": 1,
        "concurrency": 2,
        "download_delay": 0.1,
        "commit_interval": 0.2,
    }


class ProxiedProductSpider(Spider):
    """Three product pages rendered in the browser, for a crawl whose sessions go through a proxy."""

    name = "proxied_products"
    render = True
    base = ""
    custom_settings = {"parse_workers": 1, "browser_concurrency": 1, "concurrency": 2}

    def start_requests(self) -> Iterator[Request]:
        for pid in range(3):
            yield Request(f"{self.base}/product/{pid}", self.parse_product, wait_for="h1.ready")

    def parse_product(self, response: Response) -> Iterator[dict[str, object]]:
        yield {"url": response.url, "name": response.css("h1::text").get()}
