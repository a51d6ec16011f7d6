"""The re-crawl tests' spider that starts from the sitemap of ``support/versionsite.py``.

``-a base=http://127.0.0.1:PORT``; each page listed is parsed by ``parse_page``.
"""

from collections.abc import Iterator
from typing import Any, ClassVar

from crawlkit import Request, Response, Spider


class VersionedSitemap(Spider):
    name = "versioned_sitemap"
    base = ""
    sitemap_callback: ClassVar[str] = "parse_page"

    def start_requests(self) -> Iterator[Request]:
        # As Spider.start_requests() asks for sitemap_urls, with the base given at run time.
        yield Request(
            f"{self.base}/sitemap.xml", "_parse_sitemap", meta={"sitemap_depth": 0, "allow_binary": True}
        )

    def parse_page(self, response: Response) -> Iterator[Any]:
        n = int(response.url.rsplit("/", 1)[1])
        title = response.css_first("h1").text()
        yield {"n": n, "title": title, "price": int(response.css_first("span.price").text())}
