"""Live progress: periodic log lines when stderr is not a terminal, a rich display when it is."""

from __future__ import annotations

import logging
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Site
from crawlkit import CrawlStats, crawl
from crawlkit.core._progress import ProgressSampler
from crawlspiders.cli_spiders import SlowPages
from support.procs import bare_env, reap


def test_log_lines_when_stderr_is_not_a_terminal(
    site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = {"frontier": "memory", "parse_workers": 1, "concurrency": 4, "progress_interval": 0.2}
    with caplog.at_level(logging.INFO, logger="crawlkit.progress"):
        stats = crawl(
            SlowPages,
            tmp_out,
            settings=settings,
            handle_signals=False,
            base=site.base,
            count="24",
            delay="0.15",
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "crawlkit.progress"]
    assert len(lines) >= 3, lines  # "auto" chose log lines: pytest's stderr is no terminal
    pattern = re.compile(
        r"progress: (\d+) pages \([\d.]+/s\), (\d+) items \([\d.]+/s\), queue (\d+), in flight (\d+), "
        r"retries 0, errors 0, busiest hosts: (.*), ETA (\S+), elapsed \d+:\d\d"
    )
    parsed = [pattern.fullmatch(line) for line in lines]
    assert all(parsed), lines
    pages = [int(m.group(1)) for m in parsed if m]
    assert pages == sorted(pages) and pages[-1] <= stats.pages
    assert any(m.group(5).startswith("127.0.0.1") for m in parsed if m)  # it served pages
    assert all(int(m.group(4)) <= 4 for m in parsed if m)


def test_the_busiest_hosts_are_those_that_served_pages_lately(
    site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Fast answers, spaced by the host's delay: a request is in flight only a few milliseconds
    # of each 0.2 s, so a sample of requests in flight at one instant nearly always saw none.
    settings = {
        "frontier": "memory",
        "parse_workers": 1,
        "concurrency": 4,
        "concurrency_per_host": 1,
        "download_delay": 0.2,
        "progress_interval": 0.3,
    }
    with caplog.at_level(logging.INFO, logger="crawlkit.progress"):
        stats = crawl(
            SlowPages, tmp_out, settings=settings, handle_signals=False, base=site.base, count="15", delay="0"
        )
    assert stats.pages == 15
    lines = [r.getMessage() for r in caplog.records if r.name == "crawlkit.progress"]
    found = [re.search(r"progress: (\d+) pages .*busiest hosts: (.*), ETA", line) for line in lines]
    served = [m.group(2) for m in found if m and int(m.group(1)) > 0]
    assert len(served) >= 3, lines
    # Every window since the first page had responses from the one host: it is named each time.
    for hosts in served:
        named = re.fullmatch(r"127\.0\.0\.1 (\d+\.\d)/s", hosts)
        assert named and float(named.group(1)) > 0, lines


def test_off_shows_nothing(site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = {"frontier": "memory", "parse_workers": 0, "progress": "off", "progress_interval": 0.05}
    with caplog.at_level(logging.INFO, logger="crawlkit.progress"):
        crawl(
            SlowPages,
            tmp_out,
            settings=settings,
            handle_signals=False,
            base=site.base,
            count="4",
            delay="0.1",
        )
    assert not [r for r in caplog.records if r.name == "crawlkit.progress"]


SPIDER = """
from crawlspiders.cli_spiders import SlowPages


class Slow(SlowPages):
    name = "slow"
"""


def test_a_rich_display_on_a_terminal(site: Site, tmp_path: Path) -> None:
    spider = tmp_path / "slow_spider.py"
    spider.write_text(SPIDER)
    cmd = [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", "out.jsonl",
        "-a", f"base={site.base}", "-a", "count=20", "-a", "delay=0.15", "--concurrency", "4",
        "--frontier", "memory",
    ]  # fmt: skip
    master, slave = pty.openpty()
    env = bare_env(TERM="xterm", COLUMNS="120")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = bytearray()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        reap(proc)
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))
    assert proc.returncode == 0, text
    for label in ("pages", "items", "queue", "in flight", "retries", "errors", "ETA", "busiest hosts"):
        assert label in text
    assert "progress: " not in text  # the display, not log lines
    assert "crawl summary" in text


def test_eta_is_known_only_while_the_queue_shrinks() -> None:
    queue = list(range(100))
    stats = CrawlStats()
    sampler = ProgressSampler(stats, queue, lambda: 0)
    before = time.monotonic()
    sampler.sample()
    time.sleep(0.1)
    del queue[:50]
    stats.pages = 50
    shrinking = sampler.sample()
    took = time.monotonic() - before
    # 50 drained in the time between the samples, 50 left: the ETA is that time again, however
    # long a loaded machine made it.
    assert shrinking.eta is not None and 0.1 <= shrinking.eta <= took
    assert shrinking.pages_per_s == pytest.approx(50 / shrinking.eta)
    queue.extend(range(500))
    time.sleep(0.05)
    assert sampler.sample().eta is None  # growing again: unknown


def test_the_first_sample_has_the_rates_since_the_crawl_began() -> None:
    stats = CrawlStats()
    stats.started -= 2.0  # the crawl began two seconds ago and has fetched 100 pages since
    stats.pages, stats.items = 100, 40
    first = ProgressSampler(stats, [], lambda: 0).sample()
    assert first.pages_per_s == pytest.approx(100 / stats.elapsed, rel=0.1)
    assert first.items_per_s == pytest.approx(40 / stats.elapsed, rel=0.1)
    assert first.eta is None  # one reading says nothing about the queue's drain
