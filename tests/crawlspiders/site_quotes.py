"""The quotes and authors of the ``quotes`` site mirror, by following every link.

Made the way ``crawlkit new`` makes a spider (follow every link; ``allowed_domains`` keeps the
crawl on the site, away from the footer's links to goodreads.com and zyte.com), with one item per
quote of each listing page (the paginated home page, tag pages) and one per author page.
``base`` is the mirror's address (``http://127.0.0.1:PORT``).
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class QuotesSpider(Spider):
    name = "site_quotes"
    allowed_domains = ["127.0.0.1"]
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base + "/")

    def parse(self, response: Response) -> Iterator[Any]:
        for quote in response.css("div.quote"):
            yield {
                "kind": "quote",
                "listing": response.url,
                "text": quote.css("span.text")[0].text(strip=True),
                "author": quote.css("small.author")[0].text(strip=True),
                "tags": [tag.text(strip=True) for tag in quote.css("a.tag")],
            }
        author = response.css_first("div.author-details")
        if author is not None:
            yield {
                "kind": "author",
                "url": response.url,
                "name": author.css("h3.author-title")[0].text(strip=True),
                "born_date": author.css("span.author-born-date")[0].text(strip=True),
                "born_location": author.css("span.author-born-location")[0].text(strip=True),
            }
        yield from response.follow_all(css="a[href]")
