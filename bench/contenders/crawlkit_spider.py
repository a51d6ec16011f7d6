"""The benchmark crawl as a crawlkit spider, written the way the crawlkit docs teach.

    crawlkit runspider bench/contenders/crawlkit_spider.py -o items.jsonl --overwrite \
        -a start_url=http://127.0.0.1:PORT/index.html \
        -s concurrency=64 -s concurrency_per_host=64 --frontier memory --log-level WARNING

Crawl contract (see bench/site.py): start at /index.html, follow ``li.next a``, ``a.view-all``
and ``article.product_pod h3 a``; every product page yields one item.

``-a start_urls_file=PATH`` starts at every URL of PATH (one a line) instead: the same site on
many hosts (bench/hosts.py).
"""

from collections.abc import Iterator
from typing import Any

from crawlkit.http import Request, Response
from crawlkit.spider import Spider


class ShopSpider(Spider):
    name = "bench-shop"
    start_url = "http://127.0.0.1:8080/index.html"
    start_urls_file = ""

    def start_requests(self) -> Iterator[Request]:
        if not self.start_urls_file:
            yield Request(self.start_url)
            return
        with open(self.start_urls_file, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield Request(line.strip())

    def parse(self, response: Response) -> Iterator[Request]:
        # The home page and the listings: pagination, then the products listed.
        yield from response.follow_all(css="li.next a, a.view-all")
        yield from response.follow_all(css="article.product_pod h3 a", callback=self.parse_product)

    def parse_product(self, response: Response) -> Iterator[Any]:
        main = response.css_first("div.product_main")
        sku = None
        for row in response.css("table#product-info tr"):
            if row.css_first("th").text(strip=True) == "SKU":
                sku = row.css_first("td").text(strip=True)
                break
        related = response.css("section.related-products article.product_pod h3 a")
        yield {
            "url": response.url,
            "title": main.css_first("h1").text(strip=True),
            "price": main.css_first("p.price_color").text(strip=True),
            "sku": sku,
            "availability": " ".join(main.css_first("p.availability").text().split()),
            "n_related": len(related),
        }
        yield from response.follow_all(related, callback=self.parse_product)
