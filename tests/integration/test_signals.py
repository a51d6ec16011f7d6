"""Stopping a real ``crawlkit crawl`` process with real signals, mid-crawl, against the test site.

The crawls fetch slow pages (``/slow?delay=...``) with 4 requests in flight and 2 parser worker
processes, so that a signal always lands while requests are in flight. Worker processes are found
through ``/proc`` (their parent is the crawl's main process) before the signal is sent.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from conftest import Site
from support.procs import CRAWLKIT_EXE, subprocess_env, wait_for

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

PARSE_WORKERS = 2  # as SlowPages sets in its custom_settings

SPIDERS = """\
from crawlspiders.cli_spiders import BigItemPages, PathPages, SlowPages, SlowStartPages


class Slow(SlowPages):
    name = "slow"


class SlowStart(SlowStartPages):
    name = "slowstart"


class Paths(PathPages):
    name = "paths"


class BigItem(BigItemPages):
    name = "bigitem"
"""


# -- helpers -----------------------------------------------------------------------------------


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def item_numbers(site: Site) -> Counter[int]:
    """How many times the server was asked for each ``/slow?...&i=N`` page."""
    return Counter(int(parse_qs(urlsplit(e.path_qs).query)["i"][0]) for e in site.log.entries("/slow"))


def done_count(site: Site) -> int:
    return sum(1 for e in site.log.entries("/slow") if e.status is not None)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, checking that each parses and that no line is cut short."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), f"partial last line in {path}: {data[-80:]!r}"
    items = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            items.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            raise AssertionError(f"line {number} of {path} is not JSON: {line!r}") from exc
    return items


def summary_value(stderr: str, key: str) -> str:
    match = re.search(rf"^  {re.escape(key)} +(.*)$", stderr, re.M)
    assert match is not None, f"no {key!r} in the summary:\n{stderr}"
    return match.group(1)


class Crawl:
    """One ``crawlkit crawl`` subprocess in the project folder; stderr goes to a file."""

    def __init__(
        self,
        root: Path,
        argv: list[str],
        *,
        via_module: bool = False,
        tag: str = "",
        own_group: bool = False,
        nohup: bool = False,
    ) -> None:
        self.root = root
        self.err_path = root / f"stderr{tag}.txt"
        exe = [sys.executable, "-m", "crawlkit"] if via_module else [str(CRAWLKIT_EXE)]
        if nohup:
            exe = ["nohup", *exe]
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [*exe, *argv],
                cwd=root,
                env=subprocess_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                # Its own process group, as a shell's job has: a hangup reaches it and its workers.
                process_group=0 if own_group else None,
            )
        self.pid = self.proc.pid
        self.workers: set[int] = set()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")

    def wait_midway(self, site: Site, done: int, timeout: float = 30) -> None:
        """Wait until ``done`` pages were served and more are in flight; note the worker pids."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"the crawl ended early ({self.proc.returncode}):\n{self.stderr}")
            return done_count(site) >= done and site.log.in_flight("/slow") > 0

        wait_for(ready, timeout, f"{done} pages done and more in flight")
        self.workers = children(self.pid)
        assert len(self.workers) == PARSE_WORKERS, [cmdline(p) for p in self.workers]
        assert all("crawlkit.parsing" in cmdline(p) for p in self.workers)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def signal_group(self, sig: signal.Signals) -> None:
        """To the crawl and its parser workers, as a terminal's hangup or Ctrl-C reaches them."""
        os.killpg(self.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def surviving_workers(self, timeout: float) -> set[int]:
        deadline = time.monotonic() + timeout
        while True:
            left = {p for p in self.workers if alive(p) and "crawlkit.parsing" in cmdline(p)}
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pid in self.surviving_workers(timeout=5):  # only ever after a failed test
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "spiders").mkdir()
    (tmp_path / "spiders" / "__init__.py").write_text("")
    (tmp_path / "spiders" / "pages.py").write_text(SPIDERS)
    return tmp_path


@pytest.fixture
def crawls() -> Iterator[list[Crawl]]:
    """Crawls started by a test; whatever happens, they are killed and reaped at the end."""
    started: list[Crawl] = []
    try:
        yield started
    finally:
        for crawl in started:
            crawl.cleanup()


def slow_argv(site: Site, count: int, delay: float, *extra: str) -> list[str]:
    return [
        "crawl",
        "slow",
        "-a",
        f"base={site.base}",
        "-a",
        f"count={count}",
        "-a",
        f"delay={delay}",
        "--concurrency",
        "4",
        *extra,
    ]


# -- graceful stop -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "via_module"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGINT", "SIGTERM"],
)
def test_one_signal_stops_gracefully(
    site: Site, project: Path, crawls: list[Crawl], sig: signal.Signals, via_module: bool
) -> None:
    shutdown_timeout = 10.0
    argv = slow_argv(site, 60, 0.3, "-s", f"shutdown_timeout={shutdown_timeout}", "-o", "out.jsonl")
    crawl = Crawl(project, argv, via_module=via_module)
    crawls.append(crawl)
    crawl.wait_midway(site, done=8)
    signalled = time.monotonic()
    crawl.signal(sig)
    code = crawl.wait(timeout=shutdown_timeout + 10)
    took = time.monotonic() - signalled
    err = crawl.stderr
    assert code == 3, err
    assert took < shutdown_timeout, f"took {took:.1f} s to stop"
    assert "crawl summary" in err
    assert summary_value(err, "stopped because") == sig.name
    assert f"{sig.name}: finishing the" in err
    assert "Traceback" not in err

    items = read_jsonl(project / "out.jsonl")
    served = item_numbers(site)
    assert 8 <= len(items) < 60  # stopped mid-way
    assert int(summary_value(err, "items written")) == len(items)
    # The requests in flight at the signal finished: each one the server saw was answered and
    # its item written, exactly once.
    assert all(e.status == 200 for e in site.log.entries("/slow"))
    assert Counter(item["i"] for item in items) == served
    assert set(served.values()) == {1}
    assert crawl.surviving_workers(timeout=2) == set()


def test_a_hangup_stops_gracefully_with_a_summary_and_a_stats_file(
    site: Site, project: Path, crawls: list[Crawl]
) -> None:
    # A closed terminal or a dropped ssh session: SIGHUP to the whole process group, workers too.
    argv = slow_argv(site, 60, 0.3, "-o", "out.jsonl", "--stats-file", "stats.json")
    crawl = Crawl(project, argv, own_group=True)
    crawls.append(crawl)
    crawl.wait_midway(site, done=8)
    crawl.signal_group(signal.SIGHUP)
    code = crawl.wait(timeout=30)
    err = crawl.stderr
    assert code == 3, err
    assert summary_value(err, "stopped because") == "SIGHUP"
    assert "SIGHUP: finishing the" in err
    assert "Traceback" not in err and "parser_crashed" not in err  # the workers kept working
    stats = orjson.loads((project / "stats.json").read_bytes())
    assert stats["stop_reason"] == "SIGHUP"
    items = read_jsonl(project / "out.jsonl")
    assert 8 <= len(items) < 60
    assert Counter(item["i"] for item in items) == item_numbers(site)  # the pages in flight finished
    assert crawl.surviving_workers(timeout=2) == set()

    again = Crawl(project, slow_argv(site, 60, 0.0, "-o", "out.jsonl"), tag="-again")  # resumes
    crawls.append(again)
    assert again.wait(timeout=60) == 0, again.stderr
    assert sorted(item["i"] for item in read_jsonl(project / "out.jsonl")) == list(range(60))


@pytest.mark.skipif(shutil.which("nohup") is None, reason="needs nohup(1)")
def test_under_nohup_a_hangup_is_ignored(site: Site, project: Path, crawls: list[Crawl]) -> None:
    crawl = Crawl(project, slow_argv(site, 20, 0.2, "-o", "out.jsonl"), own_group=True, nohup=True)
    crawls.append(crawl)
    crawl.wait_midway(site, done=4)
    crawl.signal_group(signal.SIGHUP)
    assert crawl.wait(timeout=60) == 0, crawl.stderr
    assert len(read_jsonl(project / "out.jsonl")) == 20


def assert_sigint_stops_before_a_page(crawl: Crawl, site: Site, timeout: float) -> None:
    """Ctrl-C stops the crawl within ``timeout``: exit code 3, a summary, no traceback, no worker
    left behind, and no page fetched."""
    crawl.signal(signal.SIGINT)
    code = crawl.wait(timeout=timeout)
    err = crawl.stderr
    assert crawl.surviving_workers(timeout=2) == set()
    assert "Traceback" not in err, err
    assert code == 3, err
    assert summary_value(err, "stopped because") == "SIGINT"
    assert len(site.log) == 0


def test_a_sigint_during_startup_stops_cleanly(site: Site, project: Path, crawls: list[Crawl]) -> None:
    # The spider's opened() hook runs in the main process while the parser workers start, before
    # the first request; it takes 3 s here. Ctrl-C at that moment must stop the crawl like
    # any other Ctrl-C: exit code 3, a summary, no traceback, no worker left behind.
    marker = project / "opened.marker"
    argv = ["crawl", "slowstart", "-a", f"base={site.base}", "-a", "count=8", "-a", "delay=0.05"]
    argv += ["-a", f"marker={marker}", "-o", "out.jsonl"]
    crawl = Crawl(project, argv, tag="-1")
    crawls.append(crawl)
    wait_for(lambda: marker.exists() or crawl.proc.poll() is not None, 30, "the spider's opened() hook")
    # The pool launches one worker, and the others once it is up: all, while opened() sleeps.
    wait_for(lambda: len(children(crawl.pid)) == PARSE_WORKERS, 30, "every parser worker launched")
    crawl.workers = children(crawl.pid)
    assert_sigint_stops_before_a_page(crawl, site, timeout=20)
    # ... and the same command then runs the crawl.
    again = Crawl(project, [*argv[:-4], "-a", "open_delay=0", "-o", "out.jsonl"], tag="-2")
    crawls.append(again)
    assert again.wait(timeout=30) == 0, again.stderr
    assert sorted(item["i"] for item in read_jsonl(project / "out.jsonl")) == list(range(8))


# Imported in a parser worker, this module takes 30 s: a spider with heavy imports.
HEAVY_SPIDER = """\
import sys
import time
from pathlib import Path

from crawlspiders.cli_spiders import SlowPages

if Path(sys.argv[0]).parts[-2:] == ("parsing", "__main__.py"):
    time.sleep(30)


class Heavy(SlowPages):
    name = "heavy"
"""


def test_a_sigint_while_the_workers_import_the_spider_stops_at_once(
    site: Site, project: Path, crawls: list[Crawl]
) -> None:
    # The first parser worker is importing a spider that takes 30 s to import. Ctrl-C then must
    # not wait for it: the crawl stops at once, with a summary and no worker left behind.
    (project / "spiders" / "heavy.py").write_text(HEAVY_SPIDER)
    argv = ["crawl", "heavy", "-a", f"base={site.base}", "-a", "count=4", "-o", "out.jsonl"]
    crawl = Crawl(project, argv)
    crawls.append(crawl)
    wait_for(lambda: children(crawl.pid) or crawl.proc.poll() is not None, 30, "a parser worker launched")
    crawl.workers = children(crawl.pid)
    assert crawl.workers and crawl.proc.poll() is None, crawl.stderr
    assert_sigint_stops_before_a_page(crawl, site, timeout=15)  # the import alone takes 30


# -- forced stop -------------------------------------------------------------------------------


def stuck_argv(site: Site, fast: int, *extra: str) -> list[str]:
    # One page that takes 30 s keeps a request in flight while the others come and go.
    paths = ",".join(["/slow?delay=30&i=999", *(f"/slow?delay=0.1&i={i}" for i in range(fast))])
    return [
        "crawl",
        "paths",
        "-a",
        f"base={site.base}",
        "-a",
        f"paths={paths}",
        "--concurrency",
        "4",
        "-s",
        f"parse_workers={PARSE_WORKERS}",
        *extra,
    ]


def test_a_second_sigint_stops_at_once(site: Site, project: Path, crawls: list[Crawl]) -> None:
    crawl = Crawl(project, stuck_argv(site, 200, "-o", "out.jsonl"))
    crawls.append(crawl)
    crawl.wait_midway(site, done=10)
    crawl.signal(signal.SIGINT)
    wait_for(lambda: "SIGINT: finishing the" in crawl.stderr, 10, "the first SIGINT to be handled")
    signalled = time.monotonic()
    crawl.signal(signal.SIGINT)
    code = crawl.wait(timeout=20)
    err = crawl.stderr
    assert code == 4, err
    assert time.monotonic() - signalled < 10  # did not wait for the 30 s page
    assert "second SIGINT: stopping now" in err
    assert summary_value(err, "stopped because") == "SIGINT (forced)"
    assert "Traceback" not in err
    items = read_jsonl(project / "out.jsonl")
    assert 10 <= len(items) < 200
    assert int(summary_value(err, "items written")) == len(items)
    assert len({item["url"] for item in items}) == len(items)
    assert site.url("/slow?delay=30&i=999") not in {item["url"] for item in items}
    assert crawl.surviving_workers(timeout=2) == set()


def test_the_shutdown_timeout_forces_the_stop(site: Site, project: Path, crawls: list[Crawl]) -> None:
    crawl = Crawl(project, stuck_argv(site, 200, "-s", "shutdown_timeout=1", "-o", "out.jsonl"))
    crawls.append(crawl)
    crawl.wait_midway(site, done=10)
    signalled = time.monotonic()
    crawl.signal(signal.SIGTERM)
    code = crawl.wait(timeout=20)
    took = time.monotonic() - signalled
    err = crawl.stderr
    assert code == 4, err
    assert 0.9 <= took < 10, f"took {took:.1f} s to stop"
    assert summary_value(err, "stopped because") == "SIGTERM (shutdown timeout)"
    items = read_jsonl(project / "out.jsonl")
    assert int(summary_value(err, "items written")) == len(items) >= 10
    assert crawl.surviving_workers(timeout=2) == set()


# -- resuming ----------------------------------------------------------------------------------


def test_a_stopped_crawl_resumes_and_writes_every_item_once(
    site: Site, project: Path, crawls: list[Crawl]
) -> None:
    count = 40
    argv = slow_argv(site, count, 0.3, "-o", "out.jsonl")  # the durable sqlite frontier by default
    first = Crawl(project, argv, tag="-1")
    crawls.append(first)
    first.wait_midway(site, done=8)
    first.signal(signal.SIGINT)
    assert first.wait(timeout=30) == 3, first.stderr
    assert (project / ".crawlkit" / "jobs" / "slow" / "frontier.sqlite").is_file()
    out = project / "out.jsonl"
    before = out.read_bytes()
    first_items = read_jsonl(out)
    assert 8 <= len(first_items) < count

    second = Crawl(project, argv, tag="-2")
    crawls.append(second)
    assert second.wait(timeout=60) == 0, second.stderr
    err = second.stderr
    assert f"resuming: {count - len(first_items)} requests pending" in err
    assert summary_value(err, "stopped because") == "finished"
    assert int(summary_value(err, "items written")) == count - len(first_items)
    data = out.read_bytes()
    assert data.startswith(before)  # the same file, appended to
    items = read_jsonl(out)
    assert sorted(item["i"] for item in items) == list(range(count))  # every item, exactly once
    # A graceful stop finished its requests, so no page was fetched twice either.
    assert item_numbers(site) == Counter(range(count))


def read_items(path: Path) -> list[tuple[int, int]]:
    """``(i, k)`` of every item of a CSV or gzipped JSONL output, which must parse whole."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)  # every member complete
    if path.name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
        return [(int(row["i"]), int(row["k"])) for row in rows]
    assert data.endswith(b"\n"), data[-80:]
    return [(item["i"], item["k"]) for item in map(orjson.loads, data.splitlines())]


@pytest.mark.parametrize("name", ["out.csv", "out.jsonl.gz"])
def test_a_forced_stop_during_a_flush_loses_no_item_on_resume(
    site: Site, project: Path, crawls: list[Crawl], name: str
) -> None:
    # The flush after the big page's commit waits in its thread (HoldFirstWrite) while the crawl is
    # stopped twice: the second stop cancels the worker task that flushes. The page is acked, so
    # its items must reach the file and the checkpoint's offset; else the resume cuts them off.
    count, big = 30, 10
    marker, release = project / "flushing", project / "release"
    argv = ["crawl", "bigitem", "-a", f"base={site.base}", "-a", f"count={count}", "-a", "delay=0.05"]
    argv += ["-a", f"big={big}", "--concurrency", "4", "-o", name]
    first = Crawl(project, [*argv, "-a", f"marker={marker}", "-a", f"release={release}"], tag="-1")
    crawls.append(first)
    wait_for(lambda: marker.exists() or first.proc.poll() is not None, 30, "the big page's flush")
    assert marker.exists(), first.stderr
    first.signal(signal.SIGINT)
    wait_for(lambda: "SIGINT: finishing the" in first.stderr, 10, "the first SIGINT to be handled")
    first.signal(signal.SIGINT)
    wait_for(lambda: "second SIGINT: stopping now" in first.stderr, 10, "the second SIGINT")
    release.touch()
    assert first.wait(timeout=30) == 4, first.stderr
    assert "Traceback" not in first.stderr

    second = Crawl(project, argv, tag="-2")
    crawls.append(second)
    assert second.wait(timeout=60) == 0, second.stderr
    expected = sorted([(i, 0) for i in range(count) if i != big] + [(big, k) for k in range(4)])
    assert sorted(read_items(project / name)) == expected  # every item, exactly once


def test_sigkill_leaves_no_orphan_worker_and_the_crawl_resumes(
    site: Site, project: Path, crawls: list[Crawl]
) -> None:
    count = 40
    argv = slow_argv(site, count, 0.3, "-o", "out.jsonl", "-s", "commit_interval=0.2")
    first = Crawl(project, argv, tag="-1")
    crawls.append(first)
    first.wait_midway(site, done=12)
    workers = set(first.workers)
    first.signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    # The workers see their input pipe close and exit by themselves.
    assert first.surviving_workers(timeout=2.5) == set(), [cmdline(p) for p in workers]

    second = Crawl(project, argv, tag="-2")
    crawls.append(second)
    assert second.wait(timeout=60) == 0, second.stderr
    assert "resuming:" in second.stderr
    items = read_jsonl(project / "out.jsonl")
    assert sorted(item["i"] for item in items) == list(range(count))  # nothing lost, nothing twice
    served = item_numbers(site)
    assert set(served) == set(range(count))


def test_a_finished_crawl_leaves_no_worker_behind(site: Site, project: Path, crawls: list[Crawl]) -> None:
    crawl = Crawl(project, slow_argv(site, 16, 0.2, "--frontier", "memory", "-o", "out.jsonl"))
    crawls.append(crawl)
    crawl.wait_midway(site, done=1)
    assert crawl.wait(timeout=30) == 0, crawl.stderr
    assert sorted(item["i"] for item in read_jsonl(project / "out.jsonl")) == list(range(16))
    assert crawl.surviving_workers(timeout=2) == set()
    assert children(crawl.pid) == set()
