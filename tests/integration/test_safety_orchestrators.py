"""Running under an orchestrator: SIGTERM with a deadline, then the same command on the next pod.

A real crawl process gets SIGTERM while a slow page is in flight. Within ``shutdown_timeout`` it
stops gracefully (exit code 3); past it, by force (exit code 4). Either way the job is left
resumable, and the next run writes every item exactly once.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import Site
from crawlspiders.safety import crawl_argv, finish, read_items, run, start, summary_value

SPIDER = '''
from urllib.parse import parse_qs, urlsplit

from crawlkit import Request, Spider


class Orchestrated(Spider):
    """``count`` pages of 0.1 s, and one of ``stuck`` seconds first."""

    name = "orchestrated"
    base = ""
    count = "40"
    stuck = "0"

    def start_requests(self):
        if float(self.stuck):
            yield Request(f"{self.base}/slow?delay={self.stuck}&i=999")
        for i in range(int(self.count)):
            yield Request(f"{self.base}/slow?delay=0.1&i={i}")

    def parse(self, response):
        yield {"i": int(parse_qs(urlsplit(response.url).query)["i"][0])}
'''

COUNT = 40


def wait_for_pages(site: Site, done: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while sum(1 for e in site.log.entries("/slow") if e.status == 200) < done:
        if time.monotonic() > deadline:
            raise AssertionError(f"fewer than {done} pages were served in {timeout} s")
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shutdown_timeout", "stuck", "code", "reason"),
    [(10.0, 1.0, 3, "SIGTERM"), (0.3, 2.5, 4, "SIGTERM (shutdown timeout)")],
    ids=["graceful", "forced"],
)
def test_sigterm_stops_within_the_shutdown_timeout_and_the_job_resumes_exactly_once(
    site: Site, tmp_path: Path, shutdown_timeout: float, stuck: float, code: int, reason: str
) -> None:
    spider = tmp_path / "orchestrated_spider.py"
    spider.write_text(SPIDER)
    out = tmp_path / "items.jsonl"
    argv = crawl_argv(
        spider, out, tmp_path / "job", "-a", f"base={site.base}", "-a", f"count={COUNT}",
        "-a", f"stuck={stuck}", "--concurrency", "4", "-s", "parse_workers=1",
        "-s", f"shutdown_timeout={shutdown_timeout}",
    )  # fmt: skip
    proc = start(argv, tmp_path)
    wait_for_pages(site, 6)
    assert site.log.in_flight("/slow") > 0  # the slow page, at least, is in flight
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    first = finish(proc, timeout=30, started=signalled)
    assert first.code == code, first.stderr
    assert "Traceback" not in first.stderr
    assert summary_value(first.stderr, "stopped because") == reason
    # Stopped within the deadline (plus the time to close the parser workers and checkpoint).
    assert first.seconds < shutdown_timeout + 3, f"took {first.seconds:.1f} s"
    if code == 4:
        assert first.seconds >= shutdown_timeout
        assert 999 not in {item["i"] for item in read_items(out)}  # the stuck page was cut off
    kept = read_items(out)
    assert 6 <= len(kept) < COUNT + 1

    second = run(argv, tmp_path)
    assert second.code == 0, second.stderr
    counts = Counter(item["i"] for item in read_items(out))
    assert set(counts) == {*range(COUNT), 999} and set(counts.values()) == {1}
