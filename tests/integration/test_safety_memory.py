"""The memory ceiling and the in-flight byte budget, with real processes and real allocations.

The leaky spider's callback keeps 2 MiB of touched memory per page in its parser worker, so the
crawl's resident memory (main process plus workers, as /proc reports it) really grows.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from crawlkit.core._engine import Engine
from crawlkit.core._runner import prepared_engine, resolve_settings, run_engine
from crawlspiders.safety import crawl_argv, read_items, run, summary_value
from crawlspiders.safety_spiders import LeakyPages

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")

LEAKY = """\
from crawlspiders.safety_spiders import LeakyPages


class Leaky(LeakyPages):
    name = "leaky"
"""

COUNT = 100


@pytest.mark.slow
def test_the_memory_ceiling_stops_gracefully_naming_what_grew_and_the_crawl_resumes(
    site: Site, tmp_path: Path
) -> None:
    spider = tmp_path / "leaky_spider.py"
    spider.write_text(LEAKY)
    out = tmp_path / "items.jsonl"
    argv = crawl_argv(
        spider, out, tmp_path / "job",
        "-a", f"base={site.base}", "-a", f"count={COUNT}", "-a", "leak_mb=2", "-a", "slow=0.03",
        "-s", "parse_workers=1", "-s", "parse_worker_max_tasks=0", "--concurrency", "4",
        "-s", "max_memory_mb=150",  # about 70 MiB at the start; 2 MiB more with every page
    )  # fmt: skip

    first = run(argv, tmp_path)
    assert first.code == 3, first.stderr  # stopped early, gracefully: run again to resume
    assert "Traceback" not in first.stderr
    reason = summary_value(first.stderr, "stopped because")
    assert reason.startswith("memory limit (") and "parser workers grew most" in reason, reason
    warning = next(line for line in first.stderr.splitlines() if "WARNING crawlkit.memory" in line)
    assert "memory at " in warning and "of 150 MiB" in warning  # the warning at 80% and over...
    assert "parser workers grew most" in warning and "since start" in warning  # ...says what grew
    assert "run the same command again to resume" in first.stderr
    done = read_items(out)
    assert 0 < len(done) < COUNT

    # The leak is the callback's: recycling the worker every 20 pages (40 MiB kept at most) keeps
    # the crawl under the ceiling.
    second = run([*argv, "-s", "parse_worker_max_tasks=20"], tmp_path)
    assert second.code == 0, second.stderr
    counts = Counter(item["i"] for item in read_items(out))
    assert set(counts) == set(range(COUNT)) and set(counts.values()) == {1}


def crawl_big(site: Site, out: Path, budget: int) -> Engine:
    settings: dict[str, Any] = {
        "frontier": "memory",
        "parse_workers": 1,
        "parse_batch_size": 1,
        "concurrency": 16,
        "max_inflight_bytes": budget,
    }
    spider_kwargs = {"base": site.base, "path": "/big?size=1048576", "count": 16, "slow": "0.05"}
    with prepared_engine(
        LeakyPages,
        resolve_settings(LeakyPages, settings),
        out,
        spider_kwargs=spider_kwargs,
        handle_signals=False,
    ) as engine:
        run_engine(engine)
    assert sorted(orjson.loads(line)["i"] for line in out.read_bytes().splitlines()) == list(range(16))
    return engine


def test_bodies_in_flight_are_bounded_in_bytes(site: Site, tmp_path: Path) -> None:
    mib = 1024 * 1024
    # The parser is slow (50 ms a page, one worker): with no byte budget, 1 MiB bodies pile up.
    unbounded = crawl_big(site, tmp_path / "unbounded.jsonl", 0)
    assert unbounded.budget.peak >= 6 * mib
    bounded = crawl_big(site, tmp_path / "bounded.jsonl", 2 * mib)
    # At most the budget, plus the one body that the oldest reader may take past it.
    assert bounded.budget.peak <= 3 * mib
    assert bounded.budget.waits > 0
    assert bounded.budget.used == 0 and unbounded.budget.used == 0  # everything was given back
