"""The real-world-pages crawl (bench/readability.py) as a crawlkit spider, written as the docs teach.

    crawlkit runspider bench/contenders/readability_spider.py -o items.jsonl --overwrite \
        -a start_url=http://127.0.0.1:PORT/index/0.html \
        -s concurrency=64 -s concurrency_per_host=64 --frontier memory --log-level WARNING

Crawl contract: start at ``/index/0.html``; an index page links to the corpus pages of one copy
(``a.page``) and to the next index page (``a.next``). Every corpus page yields one item: its URL,
how many links it has (``a[href]``, made absolute) and the length of its visible text (the
``<body>`` text without scripts and styles). The corpus pages' own links point at outside sites
and are not followed.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit.http import Request, Response
from crawlkit.spider import Spider


class ReadabilitySpider(Spider):
    name = "bench-readability"
    allowed_domains = ["127.0.0.1"]
    start_url = "http://127.0.0.1:8080/index/0.html"

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.start_url)

    def parse(self, response: Response) -> Iterator[Request]:
        # An index page: the next index page, then the corpus pages it lists.
        yield from response.follow_all(css="a.next")
        yield from response.follow_all(css="a.page", callback=self.parse_page)

    def parse_page(self, response: Response) -> Iterator[Any]:
        links = []
        for a in response.css("a[href]"):
            try:
                links.append(response.urljoin(a.attributes.get("href") or ""))
            except ValueError:  # a malformed href (a bad port, a broken IPv6 literal): not a link
                continue
        # The visible text: the body's text without what scripts, styles and templates hold.
        tree = response.tree
        tree.strip_tags(["script", "style", "noscript", "template"])
        text = tree.body.text(separator=" ", strip=True) if tree.body is not None else ""
        yield {"url": response.url, "n_links": len(links), "text_len": len(text)}
