"""A full disk, and paths that cannot be written: real crawl processes, real file size limits.

A child process with ``RLIMIT_FSIZE`` lowered (and SIGXFSZ ignored) gets EFBIG from a write
that would pass the limit, after the kernel wrote what fits: a failed write that left part of a
buffer behind, just as on a disk that fills up. The crawl must stop with one clear error (exit
code 5), keep every committed item and no partial line, and resume exactly-once once the limit is
gone.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from conftest import Site
from crawlspiders.safety import crawl_argv, limit_file_size, read_items, run, summary_value
from support.testsite import reachable

SPIDER = '''
from crawlkit import Request, Spider


class Fat(Spider):
    """Graph pages; each item carries ``pad`` bytes, so that the output grows fast."""

    name = "fat"
    allowed_domains = ["127.0.0.1"]
    base = ""
    size = "300"
    pad = "10"

    def start_requests(self):
        yield Request(f"{self.base}/graph/0?size={self.size}&fanout=5&seed=0")

    def parse(self, response):
        yield {"n": int(response.css_first("span.n").text()), "pad": "x" * int(self.pad)}
        yield from response.follow_all(css="a.graph")
'''

SIZE = 300


def write_spider(tmp_path: Path) -> Path:
    path = tmp_path / "fat_spider.py"
    path.write_text(SPIDER)
    return path


def fat_argv(site: Site, tmp_path: Path, pad: int, *extra: str) -> list[str]:
    out, job = tmp_path / "out" / "items.jsonl", tmp_path / "job"
    return crawl_argv(
        write_spider(tmp_path), out, job,
        "-a", f"base={site.base}", "-a", f"pad={pad}", "-a", f"size={SIZE}",
        "-s", "commit_interval=0.1", "-s", "parse_workers=1", "--concurrency", "4", *extra,
    )  # fmt: skip


def assert_exactly_once(out: Path) -> None:
    counts = Counter(item["n"] for item in read_items(out))
    assert set(counts) == reachable(SIZE)
    assert [n for n, c in counts.items() if c > 1] == []


def test_a_full_output_disk_stops_cleanly_and_the_same_command_resumes_exactly_once(
    site: Site, tmp_path: Path
) -> None:
    # About 150 items of 4 KB, some 300 KB past the first 256 KB flush: the crawl is well under
    # way when the disk "fills", with part of the output committed.
    limit = 600_000
    # 100 pages/s at most: checkpoints (every 0.1 s) have committed part of the output before the
    # limit is reached, however fast the machine; otherwise there would be nothing to resume.
    argv = fat_argv(site, tmp_path, 4000, "-s", "download_delay=0.01")
    out = tmp_path / "out" / "items.jsonl"

    first = run(argv, tmp_path, preexec=limit_file_size(limit))
    assert first.code == 5, first.stderr
    assert "Traceback" not in first.stderr
    message = f"cannot write output {out}: File too large (EFBIG)"
    assert first.stderr.count(message) == 1, first.stderr  # one clear error, naming file and cause
    assert "run the same command again to resume" in first.stderr
    assert summary_value(first.stderr, "stopped because") == "output error"
    # The write that hit the limit put part of a buffer on disk; it was cut back at once.
    kept = read_items(out)  # whole lines only
    assert 0 < out.stat().st_size < limit
    assert 0 < len(kept) < SIZE
    assert len({item["n"] for item in kept}) == len(kept)

    second = run(argv, tmp_path)  # space freed: the same command
    assert second.code == 0, second.stderr
    assert "resuming:" in second.stderr
    assert_exactly_once(out)


def test_a_full_disk_under_the_job_database_stops_cleanly_and_resumes(site: Site, tmp_path: Path) -> None:
    # Small items: the SQLite frontier (database and WAL) reaches the limit long before the output.
    limit = 70_000
    argv = fat_argv(site, tmp_path, 10)
    out = tmp_path / "out" / "items.jsonl"

    first = run(argv, tmp_path, preexec=limit_file_size(limit))
    assert first.code == 5, first.stderr
    assert "Traceback" not in first.stderr
    database = tmp_path / "job" / "frontier.sqlite"
    assert first.stderr.count(f"cannot write the frontier database {database}") == 1, first.stderr
    assert "ulimit -f" in first.stderr
    assert out.stat().st_size < limit  # the output was not what failed
    committed = read_items(out)
    assert len(committed) < SIZE
    # The database is intact and holds a consistent checkpoint.
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    second = run(argv, tmp_path)
    assert second.code == 0, second.stderr
    assert_exactly_once(out)


# -- paths that cannot be written: refused before any request -----------------------------------


def paths_argv(site: Site, tmp_path: Path, out: Path, job: Path) -> list[str]:
    return crawl_argv(write_spider(tmp_path), out, job, "-a", f"base={site.base}", "-a", "size=20")


@pytest.mark.parametrize("which", ["output", "job"])
def test_a_path_through_a_regular_file_is_refused_before_any_request(
    site: Site, tmp_path: Path, which: str
) -> None:
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("not a folder\n")
    out = blocker / "out.jsonl" if which == "output" else tmp_path / "out.jsonl"
    job = blocker / "job" if which == "job" else tmp_path / "job"
    result = run(paths_argv(site, tmp_path, out, job), tmp_path)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(blocker) in result.stderr
    assert "Not a directory (ENOTDIR)" in result.stderr or "is not a folder" in result.stderr
    assert len(site.log) == 0  # not one request was sent
    assert blocker.read_text() == "not a folder\n"


def test_an_output_under_proc_is_refused_before_any_request(site: Site, tmp_path: Path) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    out = Path("/proc/crawlkit-cannot-be-here/out.jsonl")
    result = run(paths_argv(site, tmp_path, out, tmp_path / "job"), tmp_path)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot create the output's folder /proc/crawlkit-cannot-be-here" in result.stderr
    assert len(site.log) == 0


def test_an_output_file_in_proc_that_cannot_be_written_is_refused(site: Site, tmp_path: Path) -> None:
    # /proc/self/stat exists and is a regular file that nobody, root included, may write.
    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs Linux /proc")
    result = run(
        [*paths_argv(site, tmp_path, Path("/proc/self/stat"), tmp_path / "job"), "--append"], tmp_path
    )
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "/proc" in result.stderr and "not writable" in result.stderr
    assert len(site.log) == 0


def can_mount_privately() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_privately(), reason="needs root and unshare(1) to mount a read-only tmpfs")
@pytest.mark.parametrize("which", ["output", "job"])
def test_a_read_only_mount_is_refused_before_any_request(site: Site, tmp_path: Path, which: str) -> None:
    # A read-only file system stops root too. The tmpfs is mounted in a mount namespace of the
    # crawl's own, so it disappears with the process whatever happens.
    mount = tmp_path / "readonly"
    mount.mkdir()
    out = mount / "out.jsonl" if which == "output" else tmp_path / "out.jsonl"
    job = mount / "job" if which == "job" else tmp_path / "job"
    crawl = " ".join(shlex.quote(arg) for arg in paths_argv(site, tmp_path, out, job))
    script = f"mount -t tmpfs -o ro tmpfs {shlex.quote(str(mount))} && exec {crawl}"
    result = run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], tmp_path)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert str(mount) in result.stderr and "Read-only file system (EROFS)" in result.stderr
    assert len(site.log) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (0555) folder regardless")
@pytest.mark.parametrize("which", ["output", "job"])
def test_a_read_only_folder_is_refused_before_any_request(site: Site, tmp_path: Path, which: str) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        out = locked / "out.jsonl" if which == "output" else tmp_path / "out.jsonl"
        job = locked / "job" if which == "job" else tmp_path / "job"
        result = run(paths_argv(site, tmp_path, out, job), tmp_path)
    finally:
        locked.chmod(0o755)
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr and str(locked) in result.stderr
    assert len(site.log) == 0
