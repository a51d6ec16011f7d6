"""``crawlkit serve`` as a real subprocess in a temporary project folder, for the serve tests.

The server's crawls run in sessions of their own (they outlive the server by design), so the
helper stops them too, by the pids their job folders and launch records hold.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from support.procs import CRAWLKIT_EXE, stop, subprocess_env

SPIDERS = '''\
from crawlspiders.cli_spiders import PathPages, SlowPages


class Paths(PathPages):
    """Fetches the paths it is given."""

    name = "paths"


class Slow(SlowPages):
    """Slow pages, one item each."""

    name = "slow"
'''


def make_project(root: Path) -> Path:
    (root / "spiders").mkdir(parents=True)
    (root / "spiders" / "__init__.py").write_text("")
    (root / "spiders" / "pages.py").write_text(SPIDERS)
    return root


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], base: str, project: Path) -> None:
        self.proc, self.base, self.project = proc, base, project

    def call(
        self,
        path: str,
        *,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request: (status, the JSON answer or the text, headers)."""
        data = None if body is None else orjson.dumps(body)
        sent = {"Content-Type": "application/json"} if data is not None else {}
        sent.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                status, raw, got = answer.status, answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            status, raw, got = exc.code, exc.read(), dict(exc.headers)
        try:
            return status, orjson.loads(raw), got
        except orjson.JSONDecodeError:
            return status, raw.decode(errors="replace"), got

    def job(self, name: str) -> dict[str, Any]:
        status, data, _ = self.call(f"/api/jobs/{name}")
        assert status == 200, data
        return dict(data)

    def wait_for(self, name: str, what: str, check: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(name)
            if check(job):
                return job
            if time.monotonic() > deadline:
                log = (self.project / ".crawlkit" / "serve" / f"{name}.log").read_text(errors="replace")
                raise AssertionError(f"timed out waiting for {what}: {job}\n{log[-3000:]}")
            time.sleep(0.1)


def _crawl_pids(project: Path) -> set[int]:
    pids = set()
    for lock in project.glob(".crawlkit/jobs/*/lock"):
        text = lock.read_text().strip()
        if text.isdigit():
            pids.add(int(text))
    for record in project.glob(".crawlkit/serve/*.json"):
        with contextlib.suppress(orjson.JSONDecodeError, OSError):
            pid = orjson.loads(record.read_bytes()).get("pid")
            if isinstance(pid, int):
                pids.add(pid)
    return pids


def stop_crawls(project: Path) -> None:
    """Kill what is left of the crawls the server started (only crawlkit processes)."""
    for pid in _crawl_pids(project):
        with contextlib.suppress(OSError):
            if b"crawlkit" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.killpg(pid, signal.SIGKILL)  # the crawl leads its own session: its workers too


@contextlib.contextmanager
def serving(project: Path, *args: str) -> Iterator[Server]:
    proc = subprocess.Popen(
        [str(CRAWLKIT_EXE), "serve", "--port", "0", *args],
        cwd=project,
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, f"the server did not start: {line}{proc.stderr.read(2000)!r}"
        yield Server(proc, found.group(), project)
    finally:
        stop(proc)
        stop_crawls(project)
