"""The benchmark crawl in Scrapy (run from its own virtualenv, bench/.work/venv-scrapy).

    BENCH_OUT=items.jsonl scrapy runspider bench/contenders/scrapy_spider.py \
        -a start_url=http://127.0.0.1:PORT/index.html [-a stats_path=stats.json]

Scrapy's defaults except: 64 concurrent requests overall and per domain, robots.txt not read, no
delay, no auto-throttle, WARNING logs, a jsonlines feed, no telnet console (it would listen on a
port; it costs nothing measurable). Crawl contract: see bench/site.py.

``-a start_urls_file=PATH`` starts at every URL of PATH (one a line) instead: the same site on
many hosts (bench/hosts.py). The pages it reports never count robots.txt files.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.http import Response

OUTPUT = os.environ.get("BENCH_OUT", "scrapy-items.jsonl")


class ShopSpider(scrapy.Spider):
    name = "bench-shop"
    custom_settings = {
        "CONCURRENT_REQUESTS": 64,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 64,
        "DOWNLOAD_DELAY": 0,
        "AUTOTHROTTLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "LOG_LEVEL": "WARNING",
        "TELNETCONSOLE_ENABLED": False,
        "FEEDS": {OUTPUT: {"format": "jsonlines", "encoding": "utf8", "overwrite": True}},
    }

    def __init__(
        self,
        start_url: str = "http://127.0.0.1:8080/index.html",
        stats_path: str = "",
        start_urls_file: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.start_url = start_url
        self.stats_path = stats_path
        # Read here, not in start(): an async generator should not block on a file.
        self.start_url_list = Path(start_urls_file).read_text("utf-8").split() if start_urls_file else []

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.start_url_list or [self.start_url]:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        yield from response.follow_all(css="li.next a, a.view-all", callback=self.parse)
        yield from response.follow_all(css="article.product_pod h3 a", callback=self.parse_product)

    def parse_product(self, response: Response) -> Iterator[Any]:
        main = response.css("div.product_main")
        sku = None
        for row in response.css("table#product-info tr"):
            if (row.css("th::text").get() or "").strip() == "SKU":
                sku = (row.css("td::text").get() or "").strip()
                break
        related = response.css("section.related-products article.product_pod h3 a")
        yield {
            "url": response.url,
            "title": (main.css("h1::text").get() or "").strip(),
            "price": (main.css("p.price_color::text").get() or "").strip(),
            "sku": sku,
            "availability": " ".join("".join(main.css("p.availability ::text").getall()).split()),
            "n_related": len(related),
        }
        yield from response.follow_all(related, callback=self.parse_product)

    def closed(self, reason: str) -> None:
        if not self.stats_path:
            return
        stats = self.crawler.stats.get_stats()
        with open(self.stats_path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "pages": stats.get("downloader/response_count", 0)
                    - stats.get("robotstxt/response_count", 0),
                    "items": stats.get("item_scraped_count", 0),
                    "errors": stats.get("log_count/ERROR", 0),
                    "finish_reason": reason,
                },
                f,
            )
