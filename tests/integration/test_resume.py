"""Durability: a real crawl process killed at random moments resumes with every item exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import Site
from testsite.app import reachable

SPIDER = '''
from crawlkit import Request, Spider


class Graph(Spider):
    name = "graph"
    allowed_domains = ["127.0.0.1"]
    base = ""
    size = "2500"

    def start_requests(self):
        yield Request(f"{self.base}/graph/0?size={self.size}&fanout=5&seed=0")

    def parse(self, response):
        yield {"n": int(response.css_first("span.n").text()), "url": response.url}
        yield from response.follow_all(css="a.graph")
'''

SIZE = 2500


def crawl_command(site: Site, out: Path, job: Path, spider_file: Path) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider_file), "-o", str(out),
        "--job-dir", str(job), "-a", f"base={site.base}", "-a", f"size={SIZE}",
        "--concurrency", "8", "-s", "commit_interval=0.2", "-s", "parse_workers=2",
        "-s", "download_delay=0.004",  # about 250 pages/s: the crawl lasts long enough to interrupt
        "--log-level", "WARNING",
    ]  # fmt: skip


def start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode(errors="replace")


def read_items(out: Path) -> list[dict[str, object]]:
    data = out.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]  # every line must parse


@pytest.mark.slow
def test_hard_kills_and_signals_lose_nothing_and_duplicate_nothing(site: Site, tmp_path: Path) -> None:
    spider_file = tmp_path / "graph_spider.py"
    spider_file.write_text(SPIDER)
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = crawl_command(site, out, job, spider_file)
    rng = random.Random(20261126)
    # Ten SIGKILLs at seeded random moments, one SIGINT and one SIGTERM among them.
    plan = [signal.SIGKILL] * 10 + [signal.SIGINT, signal.SIGTERM]
    rng.shuffle(plan)
    interrupted = 0
    for sig in plan:
        proc = start(cmd, tmp_path)
        time.sleep(rng.uniform(0.5, 1.3))  # start-up takes ~0.4 s; the crawl runs for seconds
        if proc.poll() is not None:
            break  # the crawl finished before this signal: nothing left to interrupt
        proc.send_signal(sig)
        code, err = finish(proc)
        interrupted += 1
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL
        else:
            assert code == 3, err  # a graceful stop
            assert "crawl summary" in err
        read_items(out)  # valid JSONL after every stop, hard or not
    assert interrupted >= 10, "the crawl finished too early to be interrupted ten times"
    code, err = finish(start(cmd, tmp_path))
    assert code == 0, err
    items = read_items(out)
    counts = Counter(item["n"] for item in items)
    assert set(counts) == reachable(SIZE)
    assert [n for n, c in counts.items() if c > 1] == []
    assert len(items) == SIZE


@pytest.mark.slow
def test_a_torn_last_line_is_cut_and_its_page_fetched_again(site: Site, tmp_path: Path) -> None:
    spider_file = tmp_path / "graph_spider.py"
    spider_file.write_text(SPIDER)
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = crawl_command(site, out, job, spider_file)
    proc = start(cmd, tmp_path)
    time.sleep(1.2)
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    before = out.stat().st_size
    with out.open("ab") as f:  # what power loss in the middle of a write leaves behind
        f.write(b'{"n": 0, "url": "http://torn')
    code, err = finish(start(cmd, tmp_path))
    assert code == 0, err
    assert "uncommitted bytes" in err
    items = read_items(out)
    assert sorted(item["n"] for item in items) == sorted(reachable(SIZE))
    assert before > 0


def test_resuming_a_finished_crawl_does_nothing(site: Site, tmp_path: Path) -> None:
    spider_file = tmp_path / "graph_spider.py"
    spider_file.write_text(SPIDER.replace('size = "2500"', 'size = "50"'))
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = [part if part != f"size={SIZE}" else "size=50" for part in crawl_command(site, out, job, spider_file)]
    code, err = finish(start(cmd, tmp_path))
    assert code == 0, err
    fetched = site.log.count("/graph")
    size = out.stat().st_size
    code, err = finish(start([*cmd[:-2], "--log-level", "INFO"], tmp_path))
    assert code == 0 and "already finished" in err
    assert site.log.count("/graph") == fetched and out.stat().st_size == size


