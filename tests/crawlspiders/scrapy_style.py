"""A spider written as a Scrapy user writes it: log in with a form, XPath, ``::attr``, JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import FormRequest, JsonRequest, Request, Response, Spider


class LoginShopSpider(Spider):
    name = "login_shop"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/login")

    def parse(self, response: Response) -> Iterator[Any]:
        yield FormRequest.from_response(
            response,
            formid="login",
            formdata={"username": "scrapy", "password": "s3cret"},
            clickdata={"value": "login"},
            callback=self.parse_catalogue,
        )

    def parse_catalogue(self, response: Response) -> Iterator[Any]:
        for href in response.xpath("//a[@class='product']/@href").getall():
            yield response.follow(href, callback=self.parse_product)
        next_page = response.css("li.next a::attr(href)").get()
        if next_page is not None:
            yield response.follow(next_page, callback=self.parse_catalogue)

    def parse_product(self, response: Response) -> Iterator[Any]:
        item = {
            "url": response.url,
            "name": response.xpath("//h1/text()").get(),
            "sku": response.xpath("//th[text()='SKU']/following-sibling::td/text()").get(),
            "price": response.css("p.price::text").re_first(r"[\d.]+"),
        }
        api = response.urljoin(response.css("#app::attr(data-api)").get())
        pid = int(response.url.rsplit("/", 1)[1])
        yield JsonRequest(api, data={"id": pid}, callback=self.parse_stock, cb_kwargs={"item": item})

    def parse_stock(self, response: Response, item: dict[str, Any]) -> Iterator[Any]:
        item["stock"] = response.json()["stock"]
        yield item
