"""The Scrapy tutorial's quotes spider, ported line by line.

docs/from-scrapy.md ("A spider ported, line by line") shows it beside the Scrapy original.

Quotes from the paginated listing of quotes.toscrape.com, and one item per author:
``crawlkit crawl quotes -o quotes.jsonl``.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Response, Spider


class QuotesSpider(Spider):
    name = "quotes"
    start_urls = ["https://quotes.toscrape.com/"]
    custom_settings = {"concurrency_per_host": 4}

    def parse(self, response: Response) -> Iterator[Any]:
        for quote in response.css("div.quote"):
            yield {
                "text": quote.css("span.text::text").get(),
                "author": quote.css("small.author::text").get(),
                "tags": quote.css("div.tags a.tag::text").getall(),
            }

        author_page_links = response.css(".author + a")
        yield from response.follow_all(author_page_links, self.parse_author)

        pagination_links = response.css("li.next a")
        self.logger.debug("%s: %d next page link(s)", response.url, len(pagination_links))
        yield from response.follow_all(pagination_links, self.parse)

    def parse_author(self, response: Response) -> Iterator[Any]:
        def extract_with_css(query: str) -> str:
            return response.css(query).get(default="").strip()

        yield {
            "name": extract_with_css("h3.author-title::text"),
            "birthdate": extract_with_css(".author-born-date::text"),
            "bio": extract_with_css(".author-description::text"),
        }
