"""frontier.open_frontier: the one place where the ``frontier`` setting becomes a backend."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from crawlkit import Settings
from crawlkit.fetch import CrawlHostPolicy
from crawlkit.frontier import (
    MemoryFrontier,
    SharedCrawlWorker,
    SqliteFrontier,
    frontier_kind,
    open_frontier,
)


def settings(frontier: str) -> Settings:
    return Settings(frontier=frontier, depth_limit=3)


@pytest.mark.parametrize(
    ("setting", "kind"),
    [
        ("memory", "memory"),
        ("sqlite", "sqlite"),
        ("redis://127.0.0.1:6379/0", "redis"),
        ("rediss://h:1/0", "redis"),
        ("unix:///tmp/redis.sock", "redis"),
    ],
)
def test_frontier_kind(setting: str, kind: str) -> None:
    assert frontier_kind(setting) == kind


def test_memory() -> None:
    s = settings("memory")
    assert isinstance(open_frontier(s, CrawlHostPolicy.from_settings(s)), MemoryFrontier)


def test_sqlite_lives_in_the_given_database(tmp_path: Path) -> None:
    s = settings("sqlite")
    database = tmp_path / "frontier.sqlite"
    frontier = open_frontier(s, CrawlHostPolicy.from_settings(s), spider_name="x", database=database)
    assert isinstance(frontier, SqliteFrontier)

    async def open_and_close() -> None:
        await frontier.open()
        await frontier.close()

    asyncio.run(open_and_close())
    assert database.is_file()


def test_sqlite_without_a_database_is_refused() -> None:
    s = settings("sqlite")
    with pytest.raises(ValueError, match="database"):
        open_frontier(s, CrawlHostPolicy.from_settings(s))


def test_redis_is_a_worker_of_the_shared_crawl(tmp_path: Path) -> None:
    pytest.importorskip("redis")
    from crawlkit.frontier.redis import RedisFrontier

    s = settings("redis://127.0.0.1:9/0")  # not contacted: nothing is opened
    shared = SharedCrawlWorker("job1", "w1", tmp_path / "part-w1.jsonl")
    frontier = open_frontier(s, CrawlHostPolicy.from_settings(s), spider_name="x", shared=shared)
    assert isinstance(frontier, RedisFrontier)
    assert (frontier.job, frontier.worker_id) == ("job1", "w1")
    with pytest.raises(ValueError, match="shared crawl"):
        open_frontier(s, CrawlHostPolicy.from_settings(s))


def test_the_redis_backend_is_imported_only_when_named(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from crawlkit import Settings\n"
        "from crawlkit.fetch import CrawlHostPolicy\n"
        "from crawlkit.frontier import open_frontier\n"
        "for name in ('memory', 'sqlite'):\n"
        "    s = Settings(frontier=name)\n"
        f"    open_frontier(s, CrawlHostPolicy.from_settings(s), database=Path({str(tmp_path)!r}) / 'f')\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('crawlkit.frontier.redis')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
