"""Base spiders for the command-line and signal tests.

The tests write small ``spiders/*.py`` files into a temporary project folder whose spiders subclass
these (``class Slow(SlowPages): name = "slow"``), so that ``crawlkit crawl NAME`` finds them there.
Spider arguments arrive as strings (``-a count=40``); each spider converts its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, urlsplit

from crawlkit import Request, Response, Spider

P = ParamSpec("P")
T = TypeVar("T")


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


class BigItemPages(SlowPages):
    """SlowPages whose page number ``big`` yields four items of 70 KB; every other page one item.

    The big page's items pass ``flush_bytes`` (256 KiB) alone, so the engine flushes the output
    right after that page's commit. With ``marker`` set, :class:`HoldFirstWrite` holds that flush
    until the file ``release`` exists. No periodic checkpoint comes in between (``commit_interval``).
    """

    big = "10"
    marker = ""
    release = ""
    custom_settings = {
        "parse_workers": 2,
        "commit_interval": 600,
        "pipelines": ["crawlspiders.cli_spiders:HoldFirstWrite"],
    }

    def parse(self, response: Response) -> Iterator[Any]:
        i = int(query_param(response.url, "i"))
        if i != int(self.big):
            yield {"i": i, "k": 0, "text": ""}
            return
        for k in range(4):
            yield {"i": i, "k": k, "text": "x" * 70_000}


class _HeldExecutor(ThreadPoolExecutor):
    """A thread pool whose first job after ``armed`` is set waits for the file ``release``.

    ``marker`` is created when that job is submitted: its submitter is then about to wait for it.
    """

    def __init__(self, marker: Path, release: Path) -> None:
        super().__init__(max_workers=4, thread_name_prefix="held")
        self.marker = marker
        self.release = release
        self.armed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if not self.armed:
            return super().submit(fn, *args, **kwargs)
        self.armed = False
        self.marker.touch()
        release = self.release

        def held() -> T:
            deadline = time.monotonic() + 60
            while not release.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return fn(*args, **kwargs)

        return super().submit(held)


class HoldFirstWrite:
    """Holds the crawl's first thread job after the big page's last item: the output's flush.

    The engine's output writes (and gzip compression, CSV encoding of many items) run in the event
    loop's default executor; this pipeline puts one there whose first job after the item waits
    for ``spider.release``. A test can then stop the crawl while a flush is under way, every time.
    """

    def __init__(self) -> None:
        self.executor: _HeldExecutor | None = None

    def open_spider(self, spider: Any) -> None:
        if spider.marker:
            self.executor = _HeldExecutor(Path(spider.marker), Path(spider.release))
            asyncio.get_running_loop().set_default_executor(self.executor)

    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        if self.executor is not None and item["text"] and item["k"] == 3:
            self.executor.armed = True
        return item
