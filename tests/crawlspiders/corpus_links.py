"""A spider for ``tests/integration/test_corpus.py``: every link of a page, resolved, and its text.

It follows nothing: the item says what each ``<a href>`` resolved to, what ``follow_all`` would
request (with and without its default extension filter) and which hrefs ``urljoin`` rejected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class CorpusLinks(Spider):
    name = "corpus_links"
    base = ""
    paths = ""

    def start_requests(self) -> Iterator[Request]:
        for path in self.paths.split(","):
            yield Request(self.base + path)

    def parse(self, response: Response) -> Iterator[Any]:
        hrefs: list[str] = []
        joined: list[str | None] = []
        errors: list[str] = []
        for node in response.css("a[href]"):
            href = node.attributes.get("href") or ""
            hrefs.append(href)
            try:
                joined.append(response.urljoin(href))
            except Exception as exc:  # recorded: the test asserts there is none
                joined.append(None)
                errors.append(f"{href!r}: {type(exc).__name__}: {exc}")
        title = response.css_first("title")
        body = response.css_first("body")
        yield {
            "url": response.url,
            "title": title.text(strip=True) if title is not None else None,
            "text_length": len(body.text()) if body is not None else 0,
            "hrefs": hrefs,
            "joined": joined,
            "urljoin_errors": errors,
            "followed": [r.url for r in response.follow_all(css="a[href]", deny_extensions=())],
            "followed_default": [r.url for r in response.follow_all(css="a[href]")],
        }
