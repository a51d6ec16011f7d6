"""Spiders that misbehave on purpose, for the safety tests: they leak, hang, block, or carry secrets.

Used in-process (``crawl(LeakyPages, ...)``) and, subclassed in a small file, through
``crawlkit runspider`` in a subprocess. Spider arguments arrive as strings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from crawlkit import Request, Response, Spider
from crawlspiders.cli_spiders import query_param

log = logging.getLogger("safety_spiders")

# What a leaky callback keeps: it lives in the parser worker process, for as long as it does.
KEPT: list[bytes] = []


class LeakyPages(Spider):
    """``count`` pages (``{path}?i=N``, ``/ok`` by default), one item each, with the worker's pid.

    Each callback keeps ``leak_mb`` MiB of touched memory in a module-level list (a classic leak:
    a cache that is never cleared); the page numbered ``hang`` makes its callback sleep for an
    hour; ``slow`` seconds are spent in every callback.
    """

    base = ""
    path = "/ok"
    count = "40"
    leak_mb = "0"
    hang = ""
    slow = "0"
    custom_settings = {"parse_workers": 2}

    def start_requests(self) -> Iterator[Request]:
        joiner = "&" if "?" in self.path else "?"
        for i in range(int(self.count)):
            yield Request(f"{self.base}{self.path}{joiner}i={i}")

    def parse(self, response: Response) -> Iterator[Any]:
        i = query_param(response.url, "i")
        if i == self.hang:
            time.sleep(3600)
        if float(self.slow):
            time.sleep(float(self.slow))
        if int(self.leak_mb):
            KEPT.append(b"\x01" * (int(self.leak_mb) << 20))
        yield {"i": int(i), "pid": os.getpid()}


class TwoCallbacks(Spider):
    """Callbacks for the parser pool's tests: a busy one that takes ``slow`` seconds a page, a
    quick one, and one that hangs for an hour. Each item says which callback made it."""

    slow = "0.05"

    def parse_slow(self, response: Response) -> Iterator[Any]:
        time.sleep(float(self.slow))
        yield {"callback": "parse_slow", "url": response.url}

    def parse_quick(self, response: Response) -> Iterator[Any]:
        yield {"callback": "parse_quick", "url": response.url}

    def parse_hang(self, response: Response) -> Iterator[Any]:
        time.sleep(3600)
        yield {"callback": "parse_hang", "url": response.url}


class NoStart(Spider):
    """A spider whose constructor raises, as one does that opens a resource it cannot reach."""

    def __init__(self, **kwargs: Any) -> None:
        raise RuntimeError("the spider's database is unreachable")


class BlockingPipeline:
    """Blocks the event loop for 0.6 s on the first item: what a synchronous database call does."""

    def __init__(self) -> None:
        self.blocked = False

    def process_item(self, item: Any, spider: Spider) -> Any:
        if not self.blocked:
            self.blocked = True
            time.sleep(0.6)
        return item


class PoliteAsyncPipeline:
    """Waits as long, the right way: the event loop goes on meanwhile."""

    async def process_item(self, item: Any, spider: Spider) -> Any:
        await asyncio.sleep(0.6 if item.get("i") == 0 else 0)
        return item


class SecretPages(Spider):
    """Requests that carry credentials every way there is, and a callback that shows them off.

    ``base`` is the site's base URL and ``secret_base`` the same with ``user:PASSWORD@`` in it;
    ``token`` and ``cookie`` are the secret values of the Authorization and Cookie headers.
    """

    base = ""
    secret_base = ""
    token = ""
    cookie = ""
    custom_settings = {"parse_workers": 1, "max_retries": 1, "retry_backoff_base": 0.01}

    def start_requests(self) -> Iterator[Request]:
        headers = {"Authorization": f"Bearer {self.token}", "Cookie": f"session={self.cookie}"}
        # Credentials in the URL (aiohttp turns them into Basic auth)...
        yield Request(f"{self.secret_base}/echo?via=url")
        yield Request(f"{self.secret_base}/status/404?via=url")
        yield Request(f"{self.secret_base}/callback-raises?via=url")
        # ... in headers ...
        yield Request(f"{self.base}/echo?via=headers", headers=headers)
        yield Request(f"{self.base}/status/503?via=headers", headers=headers)
        yield Request(f"{self.base}/callback-raises?via=headers", headers=headers)
        # ... and towards a host that refuses the connection.
        refused = self.secret_base.rsplit(":", 1)[0] + ":1"
        yield Request(f"{refused}/refused", dont_retry=True)

    def parse(self, response: Response) -> Iterator[Any]:
        request = response.request
        log.info("parsing %s (asked for %s with headers %r)", response.url, request.url, request.headers)
        if "/callback-raises" in response.url:
            raise ValueError(f"cannot parse {request.url} (sent with {request.headers!r})")
        yield {"url": response.url, "status": response.status}


class LockedMeta(Spider):
    """Six listing pages; one of them also yields a request whose meta holds a lock."""

    name = "locked_meta"
    base = ""

    def start_requests(self) -> Iterator[Request]:
        yield Request(self.base + "/", "parse_start")

    def parse_start(self, response: Response) -> Iterator[Any]:
        for i in range(6):
            yield response.follow(f"/list/{i}", callback="parse_list")

    def parse_list(self, response: Response) -> Iterator[Any]:
        time.sleep(0.05)  # the listings queue up for the one worker and go in one batch
        yield {"list": response.url}
        yield response.follow(response.url.replace("/list/", "/item/"), callback="parse_item")
        if response.url.endswith("/list/3"):
            yield Request(self.base + "/locked", "parse_item", meta={"lock": threading.Lock()})

    def parse_item(self, response: Response) -> Iterator[Any]:
        yield {"item": response.url}
