"""Leaky and hanging callbacks: parser workers recycled, and killed past ``parse_timeout``.

Real parser worker processes, a real callback that sleeps for an hour, real pids.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from conftest import Site
from crawlkit import Spider
from crawlkit.engine import Engine
from crawlkit.runner import prepared_engine, resolve_settings, run_engine
from crawlspiders.safety_spiders import LeakyPages


def run(spider: type[Spider], out: Path, settings: dict[str, Any], **spider_kwargs: Any) -> Engine:
    merged = {"frontier": "memory", "job_dir": str(out.parent / "job"), **settings}
    with prepared_engine(
        spider, resolve_settings(spider, merged), out, spider_kwargs=spider_kwargs, handle_signals=False
    ) as engine:
        run_engine(engine)
    return engine


def items(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_workers_are_recycled_after_max_tasks_and_no_response_is_lost(site: Site, tmp_out: Path) -> None:
    count = 60
    engine = run(
        LeakyPages,
        tmp_out,
        {"parse_workers": 2, "parse_worker_max_tasks": 10, "parse_batch_size": 4},
        base=site.base,
        count=count,
    )
    got = items(tmp_out)
    assert sorted(item["i"] for item in got) == list(range(count))  # every response, once
    pool = engine.parser.statistics()
    # Each worker retires after 10 responses: 60 responses need at least 6 workers in turn.
    assert pool.recycled >= 4
    assert pool.crashes == 0 and pool.restarts == 0 and pool.timeouts == 0
    pids = {item["pid"] for item in got}
    assert len(pids) >= 6
    assert engine.stats.ok


def test_workers_are_not_recycled_when_max_tasks_is_0(site: Site, tmp_out: Path) -> None:
    engine = run(
        LeakyPages, tmp_out, {"parse_workers": 2, "parse_worker_max_tasks": 0}, base=site.base, count=40
    )
    assert engine.parser.statistics().recycled == 0
    assert len({item["pid"] for item in items(tmp_out)}) <= 2


def test_a_hanging_callback_is_killed_after_parse_timeout_and_only_its_page_fails(
    site: Site, tmp_out: Path
) -> None:
    count = 30
    began = time.monotonic()
    engine = run(
        LeakyPages,
        tmp_out,
        # Big batches: the hanging page shares its batch with others, which must be parsed again.
        {"parse_workers": 2, "parse_timeout": 1.0, "parse_batch_size": 16, "concurrency": 16},
        base=site.base,
        count=count,
        hang="7",
    )
    took = time.monotonic() - began
    assert took < 15, f"took {took:.1f} s"  # not the hour the callback wanted
    got = sorted(item["i"] for item in items(tmp_out))
    assert got == [i for i in range(count) if i != 7]  # the rest of its batch was parsed again
    stats = engine.stats
    assert dict(stats.failures) == {"parse_timeout": 1}
    assert stats.pages_failed == 1
    pool = engine.parser.statistics()
    assert pool.timeouts == 1 and pool.crashes == 0


def test_a_slow_callback_under_the_timeout_is_left_alone(site: Site, tmp_out: Path) -> None:
    engine = run(
        LeakyPages,
        tmp_out,
        {"parse_workers": 1, "parse_timeout": 1.0, "parse_batch_size": 16},
        base=site.base,
        count=6,
        slow="0.4",  # 6 x 0.4 s in one worker: a batch takes longer than the timeout, a page does not
    )
    assert sorted(item["i"] for item in items(tmp_out)) == list(range(6))
    assert engine.stats.ok and engine.parser.statistics().timeouts == 0
