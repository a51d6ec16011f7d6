"""The link-graph spider that the subprocess tests run with ``crawlkit runspider``.

``-a base=http://127.0.0.1:PORT`` points it at the test site; ``-a size=N`` picks the graph.
"""

from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider


class Graph(Spider):
    name = "graph"
    allowed_domains = ["127.0.0.1"]
    base = ""
    size = "3000"

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/graph/0?size={self.size}&fanout=5&seed=0")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"n": int(response.css_first("span.n").text()), "url": response.url}
        yield from response.follow_all(css="a.graph")
