"""The HTTP cache and the re-crawl, with real crawl processes against a real two-version site.

The site (``support/versionsite.py``) sends ETags on some pages, Last-Modified on others,
neither on the rest, answers conditional requests with 304, and switches to a second version
where some pages change, some are new and some are gone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from crawlkit.fetch import PageStore
from support import procs
from support.versioncrawl import by_n, command, crawl, items
from support.versionsite import CHANGED, GONE, NEW, PAGES, VersionSite, item_of


@pytest.fixture
def vsite() -> Iterator[VersionSite]:
    server = VersionSite()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_recrawl_asks_only_what_changed_and_writes_only_new_and_changed_items(
    vsite: VersionSite, tmp_path: Path
) -> None:
    job = tmp_path / "job"
    first = crawl(vsite, job, tmp_path / "first.jsonl", "--cache")
    assert first.returncode == 0, first.stderr
    assert by_n(items(tmp_path / "first.jsonl")) == {n: item_of(n, 1) for n in range(PAGES)}
    first_bytes = vsite.state.sent_bytes
    seen_before = len(vsite.state.requests)

    vsite.switch()
    second = crawl(vsite, job, tmp_path / "second.jsonl", "--recrawl")
    assert second.returncode == 0, second.stderr
    hits = vsite.state.requests[seen_before:]

    # Validators went with every page that had them, and came back 304 when it had not changed.
    for hit in hits:
        if not hit.path.startswith("/p/"):
            continue
        n = int(hit.path.rsplit("/", 1)[1])
        if n in NEW:
            assert "If-None-Match" not in hit.headers and "If-Modified-Since" not in hit.headers
        elif n % 3 == 0:
            assert hit.headers.get("If-None-Match") == f'"p{n}-1"', hit
        elif n % 3 == 1:
            assert hit.headers.get("If-Modified-Since") == "Wed, 01 Jan 2025 00:00:00 GMT", hit
        else:
            assert "If-None-Match" not in hit.headers and "If-Modified-Since" not in hit.headers
        unchanged_with_validators = n % 3 != 2 and n not in CHANGED and n not in GONE and n not in NEW
        assert (hit.status == 304) == unchanged_with_validators, hit
    assert sorted(int(h.path.rsplit("/", 1)[1]) for h in hits if h.path.startswith("/p/")) == sorted(
        [n for n in range(PAGES)] + list(NEW)
    )

    # Exactly the changed and the new pages' items; the gone pages listed; a fraction of the bytes.
    assert by_n(items(tmp_path / "second.jsonl")) == {n: item_of(n, 2) for n in (*CHANGED, *NEW)}
    gone = (job / "gone.txt").read_text().split()
    assert gone == sorted(f"{vsite.base}/p/{n}" for n in GONE)
    recrawl_bytes = vsite.state.sent_bytes - first_bytes
    assert recrawl_bytes < 0.6 * first_bytes, (recrawl_bytes, first_bytes)
    assert "not_modified" in second.stderr and "gone: 3" in second.stderr

    # The job's history: one crawl and one re-crawl, with their counts.
    history = subprocess.run(
        [sys.executable, "-m", "crawlkit", "cache", str(job), "--history", "--json"],
        capture_output=True,
        timeout=60,
        env=procs.subprocess_env(),
        check=True,
    )
    records = orjson.loads(history.stdout)
    assert [r["mode"] for r in records] == ["crawl", "recrawl"]
    assert all(r["ended"] for r in records)
    last = records[-1]
    # The index page has no validators and lists other pages now: it changed too.
    assert (last["new"], last["changed"], last["gone"]) == (len(NEW), len(CHANGED) + 1, len(GONE))
    assert last["unchanged"] == PAGES - len(CHANGED) - len(GONE)

    # A second re-crawl of the same version: nothing changed, nothing written.
    third = crawl(vsite, job, tmp_path / "third.jsonl", "--recrawl")
    assert third.returncode == 0, third.stderr
    assert items(tmp_path / "third.jsonl") == []


def test_recrawl_without_validators_compares_bodies(vsite: VersionSite, tmp_path: Path) -> None:
    """keep_pages alone (no bodies kept) is enough for a re-crawl."""
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "a.jsonl", "-s", "keep_pages=true").returncode == 0
    second = crawl(vsite, job, tmp_path / "b.jsonl", "--recrawl")
    assert second.returncode == 0, second.stderr
    assert items(tmp_path / "b.jsonl") == []  # the same version: every page unchanged


def test_offline_replay_gives_the_same_items_without_the_network(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    first = crawl(vsite, job, tmp_path / "live.jsonl", "--cache")
    assert first.returncode == 0, first.stderr
    before = len(vsite.state.requests)
    replay = crawl(vsite, job, tmp_path / "replay.jsonl", "--offline", "--fresh")
    assert replay.returncode == 0, replay.stderr
    assert len(vsite.state.requests) == before, "an offline crawl reached the server"
    assert sorted(items(tmp_path / "replay.jsonl"), key=str) == sorted(
        items(tmp_path / "live.jsonl"), key=str
    )
    assert "hit: 31" in replay.stderr


def test_offline_miss_fails_as_not_cached(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "live.jsonl", "--cache").returncode == 0
    vsite.switch()  # the index now lists pages the cache never saw; the offline crawl reads the old one
    before = len(vsite.state.requests)
    replay = crawl(vsite, job, tmp_path / "replay.jsonl", "--offline", "--fresh", "-a", "extra=1")
    assert len(vsite.state.requests) == before
    assert replay.returncode == 1, replay.stderr  # /ban and /err were never stored
    assert "not_cached: 2" in replay.stderr


def test_ban_pages_and_server_errors_are_never_cached(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    first = crawl(vsite, job, tmp_path / "a.jsonl", "--cache", "-a", "extra=1")
    assert first.returncode == 1  # the 403 and the 500 failed
    assert len(vsite.state.hits("/ban")) == 1 and len(vsite.state.hits("/err")) == 1
    pages_before = len(vsite.state.hits("/p/"))
    second = crawl(vsite, job, tmp_path / "b.jsonl", "--cache", "--fresh", "-a", "extra=1")
    assert second.returncode == 1
    # The 403 and the 500 were asked of the server again; the pages came from the cache.
    assert len(vsite.state.hits("/ban")) == 2 and len(vsite.state.hits("/err")) == 2
    assert len(vsite.state.hits("/p/")) == pages_before
    listing = subprocess.run(
        [sys.executable, "-m", "crawlkit", "cache", str(job), "--json"],
        capture_output=True,
        timeout=60,
        env=procs.subprocess_env(),
        check=True,
    )
    urls = [row["url"] for row in orjson.loads(listing.stdout)]
    assert len(urls) == PAGES + 2  # the pages, the index, robots.txt
    assert not any(url.endswith(("/ban", "/err")) for url in urls)


def test_cache_command_shows_and_purges(vsite: VersionSite, tmp_path: Path) -> None:
    job = tmp_path / "job"
    assert crawl(vsite, job, tmp_path / "a.jsonl", "--cache").returncode == 0

    def cache(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "crawlkit", "cache", str(job), *args],
            capture_output=True,
            timeout=60,
            env=procs.subprocess_env(),
            check=True,
        )

    shown = orjson.loads(cache("--show", f"{vsite.base}/p/0", "--json").stdout)
    assert shown["status"] == 200 and shown["etag"] == '"p0-1"' and "Page 0" in shown["body"]
    cache("--purge", "--match", "*/p/1*")
    left = [row["url"] for row in orjson.loads(cache("--json").stdout)]
    assert not any("/p/1" in url for url in left) and any(url.endswith("/p/0") for url in left)
    # Purged pages are fetched again; the rest still come from the cache.
    before = len(vsite.state.hits("/p/"))
    assert crawl(vsite, job, tmp_path / "b.jsonl", "--cache", "--fresh").returncode == 0
    assert len(vsite.state.hits("/p/")) - before == len([n for n in range(PAGES) if str(n).startswith("1")])


@pytest.mark.slow
def test_recrawl_killed_and_resumed_writes_each_changed_item_once(vsite: VersionSite, tmp_path: Path) -> None:
    job, out = tmp_path / "job", tmp_path / "re.jsonl"
    assert crawl(vsite, job, tmp_path / "first.jsonl", "--cache").returncode == 0
    vsite.switch()
    slow = ("-s", "download_delay=0.05", "-s", "concurrency_per_host=1", "--recrawl")
    kills = 0
    finished = False
    for _ in range(6):
        before = len(vsite.state.requests)
        proc = procs.start(command(vsite, job, out, *slow), tmp_path)
        deadline = time.monotonic() + 60
        while len(vsite.state.requests) < before + 4 + 3 * kills and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        if proc.poll() is not None:
            finished = procs.finish(proc, timeout=60)[0] == 0
            break
        proc.send_signal(signal.SIGKILL)
        procs.finish(proc, timeout=60)
        kills += 1
    assert kills >= 1
    if not finished:
        done = crawl(vsite, job, out, *slow)  # the same command resumes the re-crawl
        assert done.returncode == 0, done.stderr
    rows = items(out)
    assert len(rows) == len({row["n"] for row in rows}), "an item was written twice"
    assert by_n(rows) == {n: item_of(n, 2) for n in (*CHANGED, *NEW)}
    assert (job / "gone.txt").read_text().split() == sorted(f"{vsite.base}/p/{n}" for n in GONE)
    with PageStore(job / "cache.sqlite") as store:
        history = store.history()
    assert [record.mode for record in history] == ["crawl", "recrawl"]
    assert history[-1].counts["gone"] == len(GONE) and history[-1].counts["new"] == len(NEW)
