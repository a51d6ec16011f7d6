"""Several outputs in one crawl (the ``feeds`` setting): each holds every item exactly once, after a
hard kill and a resume as after a clean crawl, and a job refuses other feeds before any request.
"""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_exporters import SPIDER, check_graph_items, read_output

from conftest import Site
from crawlkit import crawl
from crawlspiders.plain_spiders import GraphItems
from support.procs import bare_env, reaped
from support.testsite import reachable

SIZE = 400

FEEDS: dict[str, dict[str, Any]] = {
    "items.jsonl": {},
    "items.csv": {"fields": ["n", "url", "title"]},
    "all.json.gz": {"max_items_per_file": 150, "fields": ["url", "n"]},
}


def command(site: Site, tmp_path: Path, feeds: dict[str, dict[str, Any]], *extra: str) -> list[str]:
    spider = tmp_path / "resumable_spider.py"
    spider.write_text(SPIDER)
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider),
        "-s", f"feeds={orjson.dumps(feeds).decode()}",
        "--job-dir", str(tmp_path / "job"), "-a", f"base={site.base}", "-a", f"size={SIZE}",
        "--concurrency", "8", "-s", "commit_interval=0.2", "-s", "parse_workers=2",
        "-s", "download_delay=0.004", "--log-level", "WARNING", "--progress", "off", *extra,
    ]  # fmt: skip


def run(cmd: list[str], cwd: Path, *, kill_after: Path | None = None) -> tuple[int, str]:
    """Run a crawl; with ``kill_after``, SIGKILL it once that file holds committed items, and a bit later."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bare_env())
    with reaped(proc):
        if kill_after is not None:
            deadline = time.monotonic() + 30
            while not (kill_after.exists() and kill_after.stat().st_size > 0) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # more commits, and work in flight that is not committed yet
            assert proc.poll() is None, "the crawl ended before it could be killed"
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=90)
    return proc.returncode, err.decode(errors="replace")


def numbers(items: list[dict[str, Any]]) -> list[int]:
    return sorted(int(item["n"]) for item in items)


def read_json_parts(tmp_path: Path) -> list[dict[str, Any]]:
    parts = sorted(tmp_path.glob("all-*.json.gz"))
    assert [p.name for p in parts] == [f"all-000{i}.json.gz" for i in range(1, len(parts) + 1)]
    items = []
    for part in parts:
        got = orjson.loads(gzip.decompress(part.read_bytes()))
        assert 0 < len(got) <= 150
        items.extend(got)
    return items


@pytest.mark.slow
@pytest.mark.parametrize("with_o", [False, True], ids=["feeds-only", "feeds-and-o"])
def test_every_feed_holds_every_item_once_after_a_kill_9_and_a_resume(
    site: Site, tmp_path: Path, with_o: bool
) -> None:
    extra = ("-o", "main.jsonl") if with_o else ()
    cmd = command(site, tmp_path, FEEDS, *extra)
    code, err = run(cmd, tmp_path, kill_after=tmp_path / "items.csv")
    assert code == -signal.SIGKILL, err
    killed_at = len(read_output(tmp_path / "items.jsonl", "jsonl"))
    assert 0 < killed_at < SIZE, "killed mid-crawl"
    job = orjson.loads((tmp_path / "job" / "job.json").read_bytes())
    assert set(job["feeds"]) | {job["output"]} == {
        str((tmp_path / name).resolve()) for name in [*FEEDS, *extra[1:]]
    }

    code, err = run(cmd, tmp_path)
    assert code == 0, err
    expected = sorted(reachable(SIZE))
    jsonl = read_output(tmp_path / "items.jsonl", "jsonl")
    check_graph_items(jsonl, SIZE)
    csv_items = read_output(tmp_path / "items.csv", "csv")
    assert numbers(csv_items) == expected
    assert all(list(row) == ["n", "url", "title"] for row in csv_items)
    parts = read_json_parts(tmp_path)
    assert numbers(parts) == expected
    assert all(list(item) == ["url", "n"] for item in parts)  # the fields this feed keeps, in order
    # The same items in every feed, not only the same pages.
    by_n = {item["n"]: item for item in jsonl}
    assert all(by_n[int(row["n"])]["title"] == row["title"] for row in csv_items)
    assert all(by_n[item["n"]]["url"] == item["url"] for item in parts)
    if with_o:
        check_graph_items(read_output(tmp_path / "main.jsonl", "jsonl"), SIZE)


def test_a_job_refuses_other_feeds_before_any_request_naming_the_feed(site: Site, tmp_path: Path) -> None:
    feeds = {"items.jsonl": {}, "items.csv": {"fields": ["n", "url"]}}
    cmd = command(site, tmp_path, feeds, "-s", "close_after_pages=5", "-s", "download_delay=0")
    code, err = run(cmd, tmp_path)
    assert code == 0 and "close_after_pages" in err, err  # stopped early: a job to resume
    info = (tmp_path / "job" / "job.json").read_bytes()
    fetched = len(site.log)
    csv_key = str((tmp_path / "items.csv").resolve())

    changed = {"items.jsonl": {}, "items.csv": {"fields": ["n"]}}
    code, err = run(command(site, tmp_path, changed), tmp_path)
    assert code == 2, err
    assert (
        f"was started with feed {csv_key} at fields = ['n', 'url'], but this crawl has fields = ['n']" in err
    )
    assert "or add --fresh to start over" in err

    dropped = {"items.jsonl": {}}
    code, err = run(command(site, tmp_path, dropped), tmp_path)
    assert code == 2, err
    assert f"was started with feed {csv_key}, which this crawl lacks" in err

    added = {**feeds, "more.json": {}}
    code, err = run(command(site, tmp_path, added), tmp_path)
    assert code == 2, err
    assert f"was started without feed {(tmp_path / 'more.json').resolve()}" in err

    assert len(site.log) == fetched  # every refusal came before the first request
    assert (tmp_path / "job" / "job.json").read_bytes() == info

    # The same feeds, in another order, resume the job.
    code, err = run(command(site, tmp_path, dict(reversed(feeds.items()))), tmp_path)
    assert code == 0, err
    assert numbers(read_output(tmp_path / "items.csv", "csv")) == sorted(reachable(SIZE))


def test_an_output_given_twice_is_refused(site: Site, tmp_path: Path) -> None:
    code, err = run(command(site, tmp_path, {"items.jsonl": {}}, "-o", "items.jsonl"), tmp_path)
    assert code == 2, err
    assert "is given twice" in err
    assert len(site.log) == 0


def test_a_feeds_own_overwrite_option_appends_or_replaces(site: Site, tmp_path: Path) -> None:
    kept, replaced = tmp_path / "kept.jsonl", tmp_path / "replaced.jsonl"
    for path in (kept, replaced):
        path.write_bytes(b'{"n": -1}\n')
    feeds = {str(kept): {"overwrite": False}, str(replaced): {"overwrite": True}}
    settings = {"frontier": "memory", "parse_workers": 1, "progress": "off", "feeds": feeds}
    stats = crawl(GraphItems, settings=settings, handle_signals=False, base=site.base, size="40")
    assert stats.ok and stats.items == 40
    assert numbers(read_output(kept, "jsonl")) == [-1, *sorted(reachable(40))]
    assert numbers(read_output(replaced, "jsonl")) == sorted(reachable(40))
