"""The first checkpoint does not wait a whole ``commit_interval``: real crawls, a real database.

A fresh job records its first committed page at once; a resumed job records its resume at once.
Both run with ``commit_interval = 60``, so a checkpoint seen within seconds is the first one.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from pathlib import Path

from conftest import Site
from support.procs import reaped, start, wait_for

SPIDER = """
from crawlkit import Request, Spider


class Slow(Spider):
    name = "slow_checkpoint"
    base = ""
    count = "20"
    delay = "0.2"
    custom_settings = {"parse_workers": 1}

    def start_requests(self):
        for i in range(int(self.count)):
            yield Request(f"{self.base}/slow?delay={self.delay}&i={i}")

    def parse(self, response):
        yield {"url": response.url}
"""


def command(tmp_path: Path, site: Site, delay: float, interval: float = 60) -> list[str]:
    spider = tmp_path / "slow_spider.py"
    spider.write_text(SPIDER)
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", str(tmp_path / "out.jsonl"),
        "--job-dir", str(tmp_path / "job"), "--frontier", "sqlite", "-a", f"base={site.base}",
        "-a", f"delay={delay}", "--concurrency", "2", "-s", f"commit_interval={interval}",
        "-s", "progress=off", "--log-level", "WARNING",
    ]  # fmt: skip


def checkpoint(tmp_path: Path) -> tuple[float | None, int, int]:
    """The frontier database's last checkpoint: its time (None: none yet), the output offset it
    recorded, and whether it recorded the seeding as finished."""
    db = tmp_path / "job" / "frontier.sqlite"
    if not db.exists():
        return None, 0, 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT checkpointed, output_offset, seeded FROM meta WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # created, its tables not yet; or locked for a moment
        return None, 0, 0
    return (row[0], int(row[1]), int(row[2])) if row is not None else (None, 0, 0)


def test_a_fresh_crawl_checkpoints_its_first_committed_page_at_once(site: Site, tmp_path: Path) -> None:
    proc = start(command(tmp_path, site, 0.2), tmp_path)
    with reaped(proc):
        # 20 pages of 0.2 s, two at a time: about 2 s of crawl, far less than commit_interval.
        wait_for(lambda: checkpoint(tmp_path)[0] is not None or proc.poll() is not None, 30, "a checkpoint")
        assert proc.poll() is None, "the crawl ended before its first checkpoint"
        when, offset, _ = checkpoint(tmp_path)
        assert offset > 0  # items are durable before the crawl ends
        assert site.log.count("/slow") < 20
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert when is not None


def test_a_resumed_crawl_checkpoints_at_once(site: Site, tmp_path: Path) -> None:
    # A job whose pages take 60 s, seeded and checkpointed (every 0.2 s here), then killed: pending.
    first = start(command(tmp_path, site, 60, interval=0.2), tmp_path)
    with reaped(first):
        wait_for(lambda: checkpoint(tmp_path)[2] == 1 or first.poll() is not None, 30, "a seeded checkpoint")
        assert first.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait()
    before = checkpoint(tmp_path)[0]
    # Resumed with commit_interval = 60: no page can commit before it is killed; the resume does.
    second = start(command(tmp_path, site, 60), tmp_path)
    with reaped(second):
        wait_for(lambda: checkpoint(tmp_path)[0] != before or second.poll() is not None, 30, "a checkpoint")
        assert second.poll() is None, "the resumed crawl ended"
        second.send_signal(signal.SIGKILL)
        second.wait()
