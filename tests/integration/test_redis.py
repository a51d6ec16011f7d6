"""Shared crawls end to end: real ``crawlkit`` worker processes on one real redis-server.

Every test crawls the local test site with several worker processes, then merges their parts with
``crawlkit export`` and checks that every page's item is there exactly once: after a worker is
SIGKILLed in mid-crawl, and after Redis itself is killed and started again. Per-host politeness is
measured on the server side, across all workers together.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from conftest import Site
from crawlkit.core._shared import JobStatus, job_status
from support import procs
from support.procs import start
from support.redisserver import RedisServer, delete_job, redis_server_binary, require_redis, unique_job
from support.testsite import reachable

GRAPH_SPIDER = Path(__file__).parent.parent / "crawlspiders" / "graph_spider.py"

SLOW_SPIDER = """
from crawlkit import Request, Spider


class Slow(Spider):
    name = "slow"
    base = ""

    def start_requests(self):
        # 40 pages of 0.3 s, two at a time: about 6 s, well past every worker's start-up, so
        # that the work is really shared even on a busy machine.
        for i in range(40):
            yield Request(f"{self.base}/slow?delay=0.3&i={i}")

    def parse(self, response):
        yield {"url": response.url}
"""

CRAWLKIT = [sys.executable, "-m", "crawlkit"]


def write_spider(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spider.py"
    path.write_text(text)
    return path


def worker_command(spider: Path, out: Path, url: str, job: str, *extra: str) -> list[str]:
    return [
        *CRAWLKIT, "runspider", str(spider), "-o", str(out), "--frontier", url,
        "-s", f"job_name={job}", "-s", "parse_workers=1", "--concurrency", "8",
        "-s", "commit_interval=0.3", "-s", "progress=off", "--log-level", "WARNING", *extra,
    ]  # fmt: skip


finish = functools.partial(procs.finish, timeout=100)


def export(url: str, job: str, tmp_path: Path) -> list[dict[str, object]]:
    merged = tmp_path / "all.jsonl"
    done = subprocess.run(
        [*CRAWLKIT, "export", job, "-o", str(merged), "--frontier", url],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"the crawl has finished" in done.stderr
    data = merged.read_bytes()
    assert data.endswith(b"\n")
    return [orjson.loads(line) for line in data.splitlines()]


def assert_exactly_once(items: list[dict[str, object]], size: int) -> None:
    counts = Counter(item["n"] for item in items)
    assert [n for n, c in counts.items() if c > 1] == []
    assert set(counts) == reachable(size)
    assert len(items) == size


def wait_until(condition: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.05)


def status(url: str, job: str) -> JobStatus:
    return job_status(url, job)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, with an append-only file, that it may kill."""
    if redis_server_binary() is None:
        require_redis("redis-server is not installed")
    data = tmp_path / "redis-data"
    data.mkdir()
    server = RedisServer(data, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_three_workers_write_every_item_exactly_once(
    site: Site, redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    spider = GRAPH_SPIDER
    out = tmp_path / "parts"
    cmd = worker_command(spider, out, redis_url, redis_job, "-a", f"base={site.base}", "--workers", "3")
    code, err = finish(start(cmd, tmp_path))
    assert code == 0, err
    assert err.count("crawl summary") == 3  # each worker reports, then the parent
    assert "exit 0" in err and f"crawlkit export {redis_job}" in err
    items = export(redis_url, redis_job, tmp_path)
    assert_exactly_once(items, 3000)
    parts = sorted(out.glob("part-*.jsonl"))
    assert len(parts) == 3
    assert all(part.stat().st_size > 0 for part in parts), "a worker got no work"
    assert site.log.count("/graph") == 3000  # nobody died: nothing was fetched twice


@pytest.mark.slow
def test_a_worker_killed_mid_crawl_loses_nothing_and_duplicates_nothing(
    site: Site, redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    spider = GRAPH_SPIDER
    out = tmp_path / "parts"
    procs = {
        worker: start(
            worker_command(
                spider, out, redis_url, redis_job, "-a", f"base={site.base}",
                "-s", f"worker_id={worker}", "-s", "lease_ttl=2", "-s", "download_delay=0.002",
            ),
            tmp_path,
        )
        for worker in ("w1", "w2", "w3")
    }  # fmt: skip
    victim = procs["w2"]

    def victim_committed() -> bool:
        parts = status(redis_url, redis_job).parts
        return "w2" in parts and parts["w2"][1] > 0

    wait_until("the victim's first commit", victim_committed)
    before = status(redis_url, redis_job)
    assert before.done < 2500, "the crawl was nearly over before the kill"
    victim.send_signal(signal.SIGKILL)
    assert finish(victim)[0] == -signal.SIGKILL
    for worker in ("w1", "w3"):
        code, err = finish(procs[worker])
        assert code == 0, f"{worker}: {err}"
    after = status(redis_url, redis_job)
    assert after.finished and after.leased == 0
    assert after.parts["w2"][1] > 0  # what it committed before it died stays in the output
    assert_exactly_once(export(redis_url, redis_job, tmp_path), 3000)


@pytest.mark.slow
def test_per_host_concurrency_holds_across_workers(
    site: Site, redis_url: str, redis_job: str, tmp_path: Path
) -> None:
    spider = write_spider(tmp_path, SLOW_SPIDER)
    out = tmp_path / "parts"
    # One request at a time per worker: no worker alone can reach the host's limit of 2, while
    # three together could pass it. (With more, the worker that frees a slot takes it again at
    # once, before the others poll, and may do all the work alone.)
    cmd = worker_command(
        spider, out, redis_url, redis_job, "-a", f"base={site.base}",
        "-s", "concurrency_per_host=2", "--concurrency", "1",
    )  # fmt: skip
    procs = [start([*cmd, "-s", f"worker_id=w{i}"], tmp_path) for i in range(3)]
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err
    assert site.log.count("/slow") == 40
    assert site.log.max_in_flight("/slow") == 2  # three workers of 1 each, one host: 2 at a time
    busy = [p for p in out.glob("part-*.jsonl") if p.stat().st_size > 0]
    assert len(busy) >= 2, "one worker did everything: the test proves nothing about sharing"
    assert len(export(redis_url, redis_job, tmp_path)) == 40


@pytest.mark.slow
def test_a_redis_restart_mid_crawl_is_survived(site: Site, own_redis: RedisServer, tmp_path: Path) -> None:
    job = unique_job("restart")
    size = 1200
    spider = GRAPH_SPIDER
    out = tmp_path / "parts"
    procs = [
        start(
            worker_command(
                spider, out, own_redis.url, job, "-a", f"base={site.base}", "-a", f"size={size}",
                "-s", f"worker_id=w{i}", "-s", "lease_ttl=3", "-s", "download_delay=0.002",
            ),
            tmp_path,
        )
        for i in range(2)
    ]  # fmt: skip
    wait_until("a few hundred pages", lambda: status(own_redis.url, job).done > 200)
    own_redis.kill()  # SIGKILL: only what the append-only file holds survives
    time.sleep(1.0)
    assert site.log.wait_idle(5)
    fetched_while_down = site.log.count("/graph")
    time.sleep(0.5)
    assert site.log.count("/graph") == fetched_while_down  # the workers wait; they lease nothing
    own_redis.start()
    errors = []
    for proc in procs:
        code, err = finish(proc)
        assert code == 0, err
        errors.append(err)
    assert any("unreachable" in err for err in errors)
    assert any("reachable again" in err for err in errors)
    assert_exactly_once(export(own_redis.url, job, tmp_path), size)
    delete_job(own_redis.url, job)


def test_an_unreachable_redis_is_a_clear_error_at_start(site: Site, tmp_path: Path) -> None:
    spider = GRAPH_SPIDER
    cmd = worker_command(
        spider, tmp_path / "parts", "redis://127.0.0.1:1/0", "nowhere", "-a", f"base={site.base}"
    )
    code, err = finish(start(cmd, tmp_path), timeout=60)
    assert code == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in err
    assert site.log.count("/graph") == 0


def test_reset_and_export_commands(
    redis_url: str, redis_job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from crawlkit.cli import main
    from crawlkit.frontier import HostLimits
    from crawlkit.frontier.redis import RedisFrontier
    from crawlkit.http import Request

    async def hold() -> RedisFrontier:
        worker = RedisFrontier(redis_url, redis_job, "w1", lambda h: HostLimits(1), spider_name="s")
        await worker.open()
        await worker.push([Request("http://a.example/")])
        return worker

    async def scenario() -> None:
        worker = await hold()
        try:
            assert main(["reset", redis_job, "--frontier", redis_url]) == 2
            assert "running worker(s) (w1)" in capsys.readouterr().err
            out = tmp_path / "all.jsonl"
            assert main(["export", redis_job, "-o", str(out), "--frontier", redis_url]) == 0
            assert "0 items from 0 parts" in capsys.readouterr().err and out.read_bytes() == b""
        finally:
            await worker.close()

    asyncio.run(scenario())
    assert main(["reset", redis_job, "--frontier", redis_url]) == 0
    assert "deleted" in capsys.readouterr().err
    assert not status(redis_url, redis_job).exists
    assert main(["export", redis_job, "-o", str(tmp_path / "x.jsonl"), "--frontier", redis_url]) == 2
    assert "there is no job" in capsys.readouterr().err
    assert main(["export", redis_job, "-o", str(tmp_path / "x.jsonl"), "--frontier", "memory"]) == 2
    assert "needs a Redis frontier" in capsys.readouterr().err
