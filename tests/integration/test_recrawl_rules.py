"""``--recrawl-output all`` and the re-crawl's rules, with real crawl processes and the two-version site.

The spider's ``-a tag=T`` marks the items it parses in a run: an item without the re-crawl's tag
was written from what the job stored, not parsed again.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from support import procs
from support.versioncrawl import SITEMAP_SPIDER, by_n, command, crawl, history, items
from support.versionsite import CHANGED, GONE, NEW, NO_LASTMOD, PAGES, VersionSite, item_of


@pytest.fixture
def vsite() -> Iterator[VersionSite]:
    server = VersionSite()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tagged(n: int, version: int, tag: str | None) -> dict[str, object]:
    item = item_of(n, version)
    return {**item, "tag": tag} if tag else item


def page_hits(site: VersionSite, since: int) -> list[int]:
    return sorted(
        int(h.path.rsplit("/", 1)[1]) for h in site.state.requests[since:] if h.path.startswith("/p/")
    )


def stats_of(path: Path) -> dict[str, object]:
    data: dict[str, object] = orjson.loads(path.read_bytes())
    return data


@pytest.mark.parametrize("keep", ["--cache", "keep_pages=true"])
def test_recrawl_output_all_writes_unchanged_pages_items_from_storage(
    vsite: VersionSite, tmp_path: Path, keep: str
) -> None:
    job = tmp_path / "job"
    first_opts = ["--cache"] if keep == "--cache" else ["-s", keep]
    first = crawl(vsite, job, tmp_path / "first.jsonl", *first_opts, "-a", "tag=first")
    assert first.returncode == 0, first.stderr
    vsite.switch()
    second = crawl(
        vsite,
        job,
        tmp_path / "all.jsonl",
        "--recrawl",
        "--recrawl-output",
        "all",
        "-a",
        "tag=second",
        "--stats-file",
        str(tmp_path / "stats.json"),
    )
    assert second.returncode == 0, second.stderr
    rows = items(tmp_path / "all.jsonl")
    assert len(rows) == len({row["n"] for row in rows}), "an item was written twice"
    unchanged = [n for n in range(PAGES) if n not in CHANGED and n not in GONE]
    # The unchanged pages' items as stored by the first crawl; the changed and new ones parsed now.
    assert by_n(rows) == {
        **{n: tagged(n, 1, "first") for n in unchanged},
        **{n: tagged(n, 2, "second") for n in (*CHANGED, *NEW)},
    }
    stats = stats_of(tmp_path / "stats.json")
    assert stats["parsed"] == len(CHANGED) + len(NEW) + 1  # and the index: no unchanged page parsed
    recrawl = stats["recrawl"]
    assert isinstance(recrawl, dict) and recrawl["items_from_store"] == len(unchanged)

    # A re-crawl of the same version: every item again, all from storage, the changed ones as
    # the last re-crawl stored them.
    third = crawl(
        vsite, job, tmp_path / "again.jsonl", "--recrawl", "--recrawl-output", "all", "-a", "tag=third"
    )
    assert third.returncode == 0, third.stderr
    assert by_n(items(tmp_path / "again.jsonl")) == by_n(rows)


def test_stored_items_are_written_as_they_left_the_pipelines_then(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    pipeline = ("-s", "pipelines=crawlspiders.version_spider:StampRun")
    assert crawl(vsite, job, tmp_path / "a.jsonl", "--cache", "-a", "tag=first", *pipeline).returncode == 0
    vsite.switch()
    second = crawl(
        vsite,
        job,
        tmp_path / "b.jsonl",
        "--recrawl",
        "--recrawl-output",
        "all",
        "-a",
        "tag=second",
        *pipeline,
    )
    assert second.returncode == 0, second.stderr
    rows = by_n(items(tmp_path / "b.jsonl"))
    unchanged = [n for n in range(PAGES) if n not in CHANGED and n not in GONE]
    assert {n: rows[n] for n in unchanged} == {
        n: {**tagged(n, 1, "first"), "piped": "first"} for n in unchanged
    }
    assert {n: rows[n] for n in CHANGED} == {
        n: {**tagged(n, 2, "second"), "piped": "second"} for n in CHANGED
    }


def test_recrawl_output_all_refused_without_keep_items(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "a.jsonl", "--cache").returncode == 0
    refused = crawl(
        vsite, job, tmp_path / "b.jsonl", "--recrawl", "--recrawl-output", "all", "-s", "keep_items=false"
    )
    assert refused.returncode == 2
    assert "it needs keep_items = true" in refused.stderr
    alone = crawl(vsite, job, tmp_path / "c.jsonl", "--recrawl-output", "all")
    assert alone.returncode == 2
    assert "give --recrawl too" in alone.stderr


@pytest.mark.slow
def test_recrawl_output_all_killed_and_resumed_writes_each_item_once(
    vsite: VersionSite, tmp_path: Path
) -> None:
    job, out = tmp_path / "job", tmp_path / "all.jsonl"
    assert crawl(vsite, job, tmp_path / "first.jsonl", "--cache", "-a", "tag=first").returncode == 0
    vsite.switch()
    slow = (
        "-s",
        "download_delay=0.05",
        "-s",
        "concurrency_per_host=1",
        "--recrawl",
        "--recrawl-output",
        "all",
    )
    kills = 0
    finished = False
    for _ in range(6):
        before = len(vsite.state.requests)
        proc = procs.start(command(vsite, job, out, *slow, "-a", "tag=second"), tmp_path)
        deadline = time.monotonic() + 60
        while len(vsite.state.requests) < before + 5 + 3 * kills and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if proc.poll() is not None:
            finished = procs.finish(proc, timeout=60)[0] == 0
            break
        proc.send_signal(signal.SIGKILL)
        procs.finish(proc, timeout=60)
        kills += 1
        if kills == 1:
            # The re-crawl under way writes every item: resuming it to write only changes is refused.
            other = crawl(vsite, job, out, "-s", "download_delay=0.05", "--recrawl")
            assert other.returncode == 2, other.stderr
            assert "started with --recrawl-output all" in other.stderr
    assert kills >= 1
    if not finished:
        done = crawl(vsite, job, out, *slow, "-a", "tag=second")
        assert done.returncode == 0, done.stderr
    rows = items(out)
    assert len(rows) == len({row["n"] for row in rows}), "an item was written twice"
    unchanged = [n for n in range(PAGES) if n not in CHANGED and n not in GONE]
    assert by_n(rows) == {
        **{n: tagged(n, 1, "first") for n in unchanged},
        **{n: tagged(n, 2, "second") for n in (*CHANGED, *NEW)},
    }
    assert (job / "gone.txt").read_text().split() == sorted(f"{vsite.base}/p/{n}" for n in GONE)


def test_recrawl_match_and_skip_spare_the_pages_they_leave_out(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "a.jsonl", "--cache", "-a", "tag=first").returncode == 0
    vsite.switch()
    before = len(vsite.state.requests)
    rules = ["-s", 'recrawl_match=["re:/p/[0-9]$", "*/"]', "-s", "recrawl_skip=*/p/7"]
    second = crawl(
        vsite, job, tmp_path / "b.jsonl", "--recrawl", "--recrawl-output", "all", "-a", "tag=second", *rules
    )
    assert second.returncode == 0, second.stderr
    asked = [n for n in range(10) if n != 7]
    # Pages 10-29 (not matched) and 7 (skipped) were not asked; the new pages were (no record).
    assert page_hits(vsite, before) == sorted([*asked, *NEW])
    rows = by_n(items(tmp_path / "b.jsonl"))
    left_out = [n for n in range(PAGES) if n not in asked]
    assert {n: rows[n] for n in left_out} == {n: tagged(n, 1, "first") for n in left_out}  # 12 too
    assert rows[6] == tagged(6, 2, "second") and rows[8] == tagged(8, 2, "second")
    assert not set(GONE) & set(rows)
    assert "re-crawl skipped" in second.stderr and f"pattern: {len(left_out)}" in second.stderr
    assert history(job)[-1]["skipped_pattern"] == len(left_out)


def test_recrawl_after_asks_only_pages_older_than_it(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "a.jsonl", "--cache").returncode == 0
    # The index and pages 1, 10-19 were fetched two hours ago; the rest a moment ago.
    with sqlite3.connect(job / "cache.sqlite") as db:
        aged = db.execute(
            "UPDATE responses SET stored_at = stored_at - 7200 WHERE url GLOB '*/p/1*' OR url GLOB '*/'"
        ).rowcount
    assert aged == 12
    vsite.switch()
    before = len(vsite.state.requests)
    second = crawl(vsite, job, tmp_path / "b.jsonl", "--recrawl", "-s", "recrawl_after=3600")
    assert second.returncode == 0, second.stderr
    old = [1, *range(10, 20)]
    assert page_hits(vsite, before) == sorted([*old, *NEW])
    assert by_n(items(tmp_path / "b.jsonl")) == {n: item_of(n, 2) for n in (12, *NEW)}
    assert f"after: {PAGES - len(old)}" in second.stderr
    # The pages asked and found unchanged count as checked now: a re-crawl right after asks none.
    third_start = len(vsite.state.requests)
    third = crawl(vsite, job, tmp_path / "c.jsonl", "--recrawl", "-s", "recrawl_after=3600")
    assert third.returncode == 0, third.stderr
    assert page_hits(vsite, third_start) == []


def test_sitemap_lastmod_spares_pages_not_modified_since_they_were_fetched(
    vsite: VersionSite, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    first = crawl(vsite, job, tmp_path / "a.jsonl", "--cache", spider=SITEMAP_SPIDER)
    assert first.returncode == 0, first.stderr
    assert by_n(items(tmp_path / "a.jsonl")) == {n: item_of(n, 1) for n in range(PAGES)}
    vsite.switch()
    before = len(vsite.state.requests)
    second = crawl(vsite, job, tmp_path / "b.jsonl", "--recrawl", spider=SITEMAP_SPIDER)
    assert second.returncode == 0, second.stderr
    no_lastmod = [n for n in range(PAGES) if n % NO_LASTMOD == 0 and n not in GONE]
    # Asked: the pages whose <lastmod> is newer than the first crawl, those listed without one,
    # and those the sitemap no longer lists (they are gone). The others were not asked.
    assert page_hits(vsite, before) == sorted([*CHANGED, *NEW, *no_lastmod, *GONE])
    assert [h.path for h in vsite.state.requests[before:] if h.path == "/sitemap.xml"] == ["/sitemap.xml"]
    assert by_n(items(tmp_path / "b.jsonl")) == {n: item_of(n, 2) for n in (*CHANGED, *NEW)}
    assert (job / "gone.txt").read_text().split() == sorted(f"{vsite.base}/p/{n}" for n in GONE)
    skipped = PAGES - len(GONE) - len(CHANGED) - len(no_lastmod)
    assert f"lastmod: {skipped}" in second.stderr
    assert history(job)[-1]["skipped_lastmod"] == skipped
