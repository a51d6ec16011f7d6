"""One response with a huge output, and output that cannot cross to the main process.

A sitemap of hundreds of thousands of URLs must stream from the parser worker to the frontier in
parts, with the crawl's memory bounded and the event loop never blocked for long; a page killed
half-way through its output must resume with each item written once; a request that cannot be
pickled must fail alone, by its URL, and not take its batch's pages with it.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from crawlkit import crawl
from crawlspiders.safety import crawl_argv, finish, read_items, start, summary_value
from crawlspiders.safety_spiders import LockedMeta
from support.misbehaving import page, serve
from support.procs import reaped, wait_for_lines

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")

MIB = 1024 * 1024
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'

SITEMAP_SPIDER = """\
from crawlkit import Spider
from crawlkit.spider._sitemaps import sitemap_request


class BigSitemap(Spider):
    name = "big_sitemap"
    sitemap_callback = "parse_page"
    base = ""

    def start_requests(self):
        yield sitemap_request(self.base + "/sitemap.xml.gz")

    def parse_page(self, response):
        yield {"url": response.url}
"""


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 for any that is gone)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                pids += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def stalls(stderr: str) -> list[float]:
    """The event-loop stalls the watchdog reported, in seconds."""
    return [float(s) for s in re.findall(r"event loop (?:was|has been) blocked for ([0-9.]+) s", stderr)]


@pytest.mark.slow
def test_a_sitemap_of_600k_urls_streams_to_the_frontier_with_memory_bounded(tmp_path: Path) -> None:
    count = 600_000

    def routes(base: list[str], blob: list[bytes]) -> list[web.RouteDef]:
        async def sitemap(request: web.Request) -> web.Response:
            return web.Response(body=blob[0], content_type="application/x-gzip")

        async def leaf(request: web.Request) -> web.Response:
            return page(request.path)

        return [web.get("/sitemap.xml.gz", sitemap), web.get("/p/{n}", leaf)]

    base: list[str] = []
    blob: list[bytes] = []
    with serve(routes(base, blob)) as server:
        base.append(server.base)
        body = "".join(f"<url><loc>{server.base}/p/{i}</loc></url>" for i in range(count))
        blob.append(gzip.compress(f'<?xml version="1.0"?><urlset {NS}>{body}</urlset>'.encode()))
        spider = tmp_path / "big_sitemap.py"
        spider.write_text(SITEMAP_SPIDER)
        out = tmp_path / "items.jsonl"
        argv = crawl_argv(
            spider, out, tmp_path / "job", "-a", f"base={server.base}",
            # The whole tree took 0.8 GB for this sitemap (1.5 GB for 1.25 M URLs) when its
            # requests crossed as one list; streamed, it takes about a third of the ceiling.
            "-s", "max_memory_mb=600", "-s", "close_after_items=50", "-s", "shutdown_timeout=600",
        )  # fmt: skip
        began = time.monotonic()
        proc = start(argv, tmp_path)
        peak = 0
        with reaped(proc):
            while proc.poll() is None and time.monotonic() - began < 300:
                peak = max(peak, tree_rss(proc.pid))
                time.sleep(0.05)
            result = finish(proc, timeout=10, started=began)
    assert result.code == 0, result.stderr
    # Stopped after 50 items, but only once the sitemap's page was parsed and committed whole.
    assert summary_value(result.stderr, "stopped because") == "close_after_items (50)"
    assert summary_value(result.stderr, "requests queued") == str(count + 1)
    assert summary_value(result.stderr, "failures") == "0"
    assert peak < 450 * MIB, f"the crawl took {peak // MIB} MiB"
    # Unpickling one list of 600,000 requests blocked the loop for seconds; a part takes a few ms.
    assert max(stalls(result.stderr), default=0.0) < 1.0, result.stderr


STREAMING_SPIDER = """\
import os
import time

from crawlkit import Request, Spider


class Streaming(Spider):
    name = "streaming"
    base = ""
    release = ""

    def start_requests(self):
        yield Request(self.base + "/big", "parse_big")
        for i in range(40):
            yield Request(self.base + f"/p/{i}", "parse_small")

    def parse_big(self, response):
        for i in range(5000):
            if i == 3000:
                # Part of the output is out; the rest waits until the test says so.
                while not os.path.exists(self.release):
                    time.sleep(0.02)
            yield {"big": i, "pad": "x" * 200}

    def parse_small(self, response):
        time.sleep(0.01)
        yield {"small": response.url}
"""


@pytest.mark.slow
def test_a_page_killed_half_way_through_its_output_resumes_with_each_item_once(tmp_path: Path) -> None:
    async def any_page(request: web.Request) -> web.Response:
        return page(request.path)

    with serve([web.get("/{tail:.*}", any_page)]) as server:
        spider = tmp_path / "streaming.py"
        spider.write_text(STREAMING_SPIDER)
        out = tmp_path / "items.jsonl"
        release = tmp_path / "release"
        argv = crawl_argv(
            spider, out, tmp_path / "job", "-a", f"base={server.base}", "-a", f"release={release}",
            "-s", "parse_workers=2", "-s", "commit_interval=0.1", "-s", "parse_timeout=0",
        )  # fmt: skip
        proc = start(argv, tmp_path)
        with reaped(proc):
            # Items of the big page reach the file while its callback is still running (it
            # cannot finish until the release file exists): they came in parts.
            wait_for_lines(out, 1500, proc, timeout=60)
            time.sleep(0.5)  # checkpoints are due every 0.1 s meanwhile
            proc.send_signal(signal.SIGKILL)
            # The parser worker notices its main process is gone when it writes next: let it.
            release.touch()
            first = finish(proc, timeout=30)
        assert first.code == -signal.SIGKILL
        second = finish(start(argv, tmp_path), timeout=120)
    assert second.code == 0, second.stderr
    items = read_items(out)
    big = Counter(item["big"] for item in items if "big" in item)
    small = Counter(item["small"] for item in items if "small" in item)
    assert set(big) == set(range(5000)) and set(big.values()) == {1}
    assert len(small) == 40 and set(small.values()) == {1}


def test_an_unpicklable_request_fails_alone_by_its_url(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async def any_page(request: web.Request) -> web.Response:
        return page(request.path)

    with serve([web.get("/{tail:.*}", any_page)]) as server:
        out = tmp_path / "items.jsonl"
        stats = crawl(
            LockedMeta,
            out,
            settings={"frontier": "memory", "parse_workers": 1, "concurrency": 8},
            handle_signals=False,
            base=server.base,
        )
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    # Every listing of the batch committed, with its item and its link; the locked request alone
    # failed, and was never fetched.
    for kind in ("list", "item"):
        got = sorted(item[kind] for item in items if kind in item)
        assert got == [server.url(f"/{kind}/{i}") for i in range(6)]
    assert [h.path_qs for h in server.hits("/locked")] == []
    assert stats.failures == {"request_not_picklable": 1}
    assert stats.pages_failed == 1
    logged = capfd.readouterr().err
    assert f"request for {server.url('/locked')} cannot be sent to the main process" in logged
