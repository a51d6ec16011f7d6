"""The event-loop watchdog: a pipeline that blocks the loop is named; one that awaits is not."""

from __future__ import annotations

from pathlib import Path

from conftest import Site
from crawlspiders.safety import crawl_argv, read_items, run

LEAKY = """\
from crawlspiders.safety_spiders import LeakyPages


class Pages(LeakyPages):
    name = "pages"
"""


def crawl_with_pipeline(site: Site, tmp_path: Path, pipeline: str) -> tuple[int, str]:
    spider = tmp_path / "pages_spider.py"
    spider.write_text(LEAKY)
    out = tmp_path / "items.jsonl"
    argv = crawl_argv(
        spider, out, None, "--frontier", "memory", "-a", f"base={site.base}", "-a", "count=10",
        "-s", "parse_workers=1", "-s", f"pipelines=crawlspiders.safety_spiders:{pipeline}",
    )  # fmt: skip
    result = run(argv, tmp_path)
    assert sorted(item["i"] for item in read_items(out)) == list(range(10))
    return result.code, result.stderr


def test_a_pipeline_that_blocks_the_event_loop_is_named(site: Site, tmp_path: Path) -> None:
    code, err = crawl_with_pipeline(site, tmp_path, "BlockingPipeline")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "the event loop was blocked" in line]
    assert len(warnings) == 1, err
    warning = warnings[0]
    assert "by pipeline crawlspiders.safety_spiders:BlockingPipeline" in warning
    assert "safety_spiders.py" in warning and "in process_item" in warning  # the blocking line
    seconds = float(warning.split("blocked for ")[1].split(" s")[0])
    assert 0.4 <= seconds <= 1.5  # it slept 0.6 s
    assert "asyncio.to_thread" in warning  # and what to do about it


def test_a_pipeline_that_awaits_is_not_reported(site: Site, tmp_path: Path) -> None:
    code, err = crawl_with_pipeline(site, tmp_path, "PoliteAsyncPipeline")
    assert code == 0, err
    assert "event loop" not in err
