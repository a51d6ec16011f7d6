"""A spider for ``tests/integration/test_corpus.py``: one item per page, with its text as decoded.

Run by ``crawlkit runspider`` (one spider per file) and by the Python API. ``base`` is the server
folder to fetch from; ``paths`` names the pages in it, comma-separated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class CorpusPages(Spider):
    name = "corpus_pages"
    base = ""
    paths = ""

    def start_requests(self) -> Iterator[Request]:
        for path in self.paths.split(","):
            yield Request(self.base + path)

    def parse(self, response: Response) -> Iterator[Any]:
        title = response.css_first("title")
        body = response.css_first("body")
        text = response.text
        yield {
            "url": response.url,
            "content_type": response.headers.get("Content-Type", ""),
            "encoding": response.encoding,
            "title": title.text() if title is not None else None,
            "body": body.text() if body is not None else None,
            "text_sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            "replacement_chars": text.count("\ufffd"),
        }
