"""Durability: a real crawl process killed at random moments resumes with every item exactly once."""

from __future__ import annotations

import functools
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from conftest import Site
from support import procs
from support.procs import start, wait_for_lines
from support.testsite import reachable

SPIDER = Path(__file__).parent.parent / "crawlspiders" / "graph_spider.py"

SIZE = 2500


def crawl_command(site: Site, out: Path, job: Path, spider_file: Path) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider_file), "-o", str(out),
        "--job-dir", str(job), "-a", f"base={site.base}", "-a", f"size={SIZE}",
        "--concurrency", "8", "-s", "commit_interval=0.2", "-s", "parse_workers=2",
        "-s", "download_delay=0.004",  # about 250 pages/s: the crawl lasts long enough to interrupt
        "--log-level", "WARNING",
    ]  # fmt: skip


finish = functools.partial(procs.finish, timeout=120)


def read_items(out: Path) -> list[dict[str, object]]:
    data = out.read_bytes() if out.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]  # every line must parse


@pytest.mark.slow
def test_hard_kills_and_signals_lose_nothing_and_duplicate_nothing(site: Site, tmp_path: Path) -> None:
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = crawl_command(site, out, job, SPIDER)
    rng = random.Random(20261126)
    # Ten SIGKILLs at seeded random moments; among them one SIGINT, one SIGTERM, and one forced
    # stop (SIGINT twice), which cancels work in flight.
    plan: list[signal.Signals | str] = [signal.SIGKILL] * 10 + [signal.SIGINT, signal.SIGTERM, "twice"]
    rng.shuffle(plan)
    interrupted = 0
    for sig in plan:
        fetched = site.log.count("/graph")
        proc = start(cmd, tmp_path)
        # Kill at a random moment of the crawl proper, however long start-up takes on a busy
        # machine: from the first new fetch on. The whole crawl lasts about 10 s.
        deadline = time.monotonic() + 60
        while site.log.count("/graph") == fetched and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.8))
        if proc.poll() is not None:
            break  # the crawl finished before this signal: nothing left to interrupt
        if sig == "twice":
            proc.send_signal(signal.SIGINT)
            time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
        else:
            proc.send_signal(sig)
        code, err = finish(proc)
        interrupted += 1
        if sig == signal.SIGKILL:
            assert code == -signal.SIGKILL
        elif sig == "twice":
            assert code in (3, 4), err  # forced, unless the in-flight work finished first
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
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = crawl_command(site, out, job, SPIDER)
    proc = start(cmd, tmp_path)
    wait_for_lines(out, 200, proc)
    time.sleep(0.5)  # past a checkpoint (commit_interval is 0.2 s)
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
    out, job = tmp_path / "items.jsonl", tmp_path / "job"
    cmd = [part if part != f"size={SIZE}" else "size=50" for part in crawl_command(site, out, job, SPIDER)]
    code, err = finish(start(cmd, tmp_path))
    assert code == 0, err
    fetched = site.log.count("/graph")
    size = out.stat().st_size
    code, err = finish(start([*cmd[:-2], "--log-level", "INFO"], tmp_path))
    assert code == 0 and "already finished" in err
    assert site.log.count("/graph") == fetched and out.stat().st_size == size
