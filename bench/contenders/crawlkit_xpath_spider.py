"""The benchmark crawl as a crawlkit spider that selects with XPath (``response.xpath``).

    crawlkit runspider bench/contenders/crawlkit_xpath_spider.py -o items.jsonl --overwrite \
        -a start_url=http://127.0.0.1:PORT/index.html \
        -s concurrency=64 -s concurrency_per_host=64 --frontier memory --log-level WARNING

The same crawl and items as ``crawlkit_spider.py``, written as a ported Scrapy spider would be:
every selection through ``response.xpath``, which is parsel over lxml, the library Scrapy's
selectors are. Each page is parsed by lxml, not Lexbor, so this measures what a spider pays for
selecting with parsel in crawlkit, beside Scrapy's spider (the same parsel, there by CSS).
"""

from collections.abc import Iterator
from typing import Any

from crawlkit.http import Request, Response
from crawlkit.spider import Spider

# The element with a class, as CSS's ".name" means it (a whole word of the class attribute).
_PRODUCT = "//article[contains(concat(' ', normalize-space(@class), ' '), ' product_pod ')]/h3/a"


class ShopSpider(Spider):
    name = "bench-shop-xpath"
    start_url = "http://127.0.0.1:8080/index.html"

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Request]:
        # The home page and the listings: pagination, then the products listed.
        yield from response.follow_all(
            xpath="//li[contains(concat(' ', normalize-space(@class), ' '), ' next ')]/a"
            " | //a[contains(concat(' ', normalize-space(@class), ' '), ' view-all ')]"
        )
        yield from response.follow_all(xpath=_PRODUCT, callback=self.parse_product)

    def parse_product(self, response: Response) -> Iterator[Any]:
        main = response.xpath("//div[contains(concat(' ', normalize-space(@class), ' '), ' product_main ')]")
        sku = None
        for row in response.xpath("//table[@id='product-info']//tr"):
            if (row.xpath("th/text()").get() or "").strip() == "SKU":
                sku = (row.xpath("td/text()").get() or "").strip()
                break
        related = response.xpath(
            "//section[contains(concat(' ', normalize-space(@class), ' '), ' related-products ')]" + _PRODUCT
        )
        price = main.xpath(".//p[contains(concat(' ', @class, ' '), ' price_color ')]/text()")
        availability = main.xpath(".//p[contains(concat(' ', @class, ' '), ' availability ')]//text()")
        yield {
            "url": response.url,
            "title": (main.xpath(".//h1/text()").get() or "").strip(),
            "price": (price.get() or "").strip(),
            "sku": sku,
            "availability": " ".join("".join(availability.getall()).split()),
            "n_related": len(related),
        }
        yield from response.follow_all(related, callback=self.parse_product)
