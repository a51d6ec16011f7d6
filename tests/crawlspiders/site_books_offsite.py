"""A spider that asks for everything a page of the ``books`` mirror refers to, kept on the mirror by port.

It follows every link, every stylesheet (the pages load Bootstrap from cdn.jsdelivr.net) and the
search form's action (``http://127.0.0.1:8801/search``: the same host as the mirror, another port).
Only ``allowed_domains`` keeps it on the mirror, and only a port can tell the mirror from the
search form, so it names the mirror's ``host:port``, taken from ``base``.
"""

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from crawlkit import Request, Response, Spider


class BooksOffsiteSpider(Spider):
    name = "site_books_offsite"
    base = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allowed_domains = [urlsplit(self.base).netloc]  # type: ignore[misc]

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base + "/")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
        yield from response.follow_all(css="a[href]")
        yield from response.follow_all(css="link[href]", deny_extensions=())
        actions = [form.attributes.get("action") or "" for form in response.css("form[action]")]
        yield from response.follow_all([action for action in actions if action])
