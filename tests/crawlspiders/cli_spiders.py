"""Base spiders for the command-line and signal tests.

The tests write small ``spiders/*.py`` files into a temporary project folder whose spiders subclass
these (``class Slow(SlowPages): name = "slow"``), so that ``crawlkit crawl NAME`` finds them there.
Spider arguments arrive as strings (``-a count=40``); each spider converts its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawlkit import Request, Response, Spider


def query_param(url: str, name: str) -> str:
    """One query parameter of ``url`` ('' if it is absent)."""
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else ""


class SlowPages(Spider):
    """Fetches ``count`` distinct slow pages (``/slow?delay=D&i=N``); one item per page."""

    base = ""
    count = "40"
    delay = "0.3"
    custom_settings = {"parse_workers": 2}

    def start_requests(self) -> Iterator[Request]:
        for i in range(int(self.count)):
            yield Request(f"{self.base}/slow?delay={self.delay}&i={i}")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"i": int(query_param(response.url, "i")), "url": response.url}


class SlowStartPages(SlowPages):
    """SlowPages whose ``opened()`` hook (main process) touches ``marker``, then takes ``open_delay`` s."""

    marker = ""
    open_delay = "3"

    async def opened(self) -> None:
        if self.marker:
            await asyncio.to_thread(Path(self.marker).touch)
        await asyncio.sleep(float(self.open_delay))


class PathPages(Spider):
    """Fetches the comma-separated ``paths`` under ``base``; one item per page, with ``tag``."""

    base = ""
    paths = "/ok"
    tag = ""
    custom_settings = {"parse_workers": 1}

    def start_requests(self) -> Iterator[Request]:
        for path in self.paths.split(","):
            yield Request(self.base + path)

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url, "status": response.status, "tag": self.tag}
