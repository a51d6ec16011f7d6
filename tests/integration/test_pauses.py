"""A crawl process stopped (SIGSTOP, as Ctrl-Z or a debugger does) for longer than its read timeout.

The server goes on answering while the crawl is stopped; when the crawl runs again, every timer
that fell due meanwhile fires first, so the requests in flight "time out". They must be retried
without using their retry budget (``max_retries`` is 0 here: one counted failure fails the page),
and neither those timeouts nor the latencies measured across the pause may slow the host down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from support.procs import CRAWLKIT_EXE, reap, subprocess_env, wait_for

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP")

SPIDER = """
from crawlspiders.cli_spiders import SlowPages


class Slow(SlowPages):
    name = "slow"
"""

PAGES = 24
STOPPED = 4.0  # seconds


ATTEMPTS = 3  # runs of the in-flight case, at most, until one has requests in flight at the pause


@pytest.mark.parametrize(
    "read_timeout",
    [
        pytest.param(1.5, id="requests-in-flight-time-out"),
        pytest.param(30.0, id="responses-read-after-the-pause"),
    ],
)
def test_a_stopped_crawl_goes_on_as_if_it_had_not_been_stopped(
    site: Site, tmp_path: Path, read_timeout: float
) -> None:
    for attempt in range(ATTEMPTS):
        stats, stderr = _stopped_crawl(site, tmp_path / f"run{attempt}", read_timeout)
        assert stats["pages_failed"] == 0 and stats["failures"] == {}, stderr
        assert stats["items"] == PAGES
        assert stats["pauses"] == 1 and stats["paused_s"] >= STOPPED - 1, stats
        assert stats["throttled_hosts"] == {}, stderr  # the host's delay never rose
        assert stderr.count("the process was stopped for") == 1, stderr
        assert "event loop was blocked" not in stderr and "has been blocked" not in stderr, stderr
        assert "process stopped" in stderr  # a row of the summary
        if read_timeout >= STOPPED:
            # Their answers waited for the crawl; the pause is in their latency, not held against the host.
            assert stats["retries"] == 0, stderr
            return
        if stats["retries"]:
            # The requests in flight timed out when the crawl ran again, and went again for free.
            assert set(stats["retry_reasons"]) == {"paused"}, stderr
            return
        # On a busy machine the loop may read the answers that came during the pause before its
        # timers fire: nothing timed out, so this run did not test the timeouts. Again.
    pytest.fail(f"in {ATTEMPTS} runs no request in flight timed out after the pause")


def _stopped_crawl(site: Site, tmp_path: Path, read_timeout: float) -> tuple[dict[str, Any], str]:
    """The crawl, stopped with SIGSTOP for ``STOPPED`` seconds midway: its stats and stderr."""
    tmp_path.mkdir()
    (tmp_path / "slow_spider.py").write_text(SPIDER)
    cmd = [
        str(CRAWLKIT_EXE), "runspider", "slow_spider.py", "-o", "out.jsonl", "--frontier", "memory",
        "-a", f"base={site.base}", "-a", f"count={PAGES}", "-a", "delay=0.6",
        "-s", f"read_timeout={read_timeout}", "-s", "max_retries=0", "-s", "concurrency=4",
        "-s", "concurrency_per_host=4", "-s", "stats_file=stats.json", "-s", "progress=off",
    ]  # fmt: skip
    err_path = tmp_path / "stderr.txt"
    with err_path.open("wb") as err:
        # Its own process group, as a shell's job has: Ctrl-Z stops the crawl and its workers.
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=err, process_group=0,
        )  # fmt: skip
    try:

        def midway() -> bool:
            assert proc.poll() is None, err_path.read_text()
            done = site.log.count("/slow") - site.log.in_flight("/slow")
            return done >= 4 and site.log.in_flight("/slow") > 0

        wait_for(midway, 60, "pages done and more in flight")
        os.killpg(proc.pid, signal.SIGSTOP)
        time.sleep(STOPPED)
        os.killpg(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=60) == 0, err_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)
        reap(proc)
    stderr = err_path.read_text()
    stats: dict[str, Any] = orjson.loads((tmp_path / "stats.json").read_bytes())
    return stats, stderr
