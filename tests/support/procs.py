"""Subprocesses in tests: the crawls of ``integration/``, servers, children that crash on purpose.

The one set of helpers for them: the executable and the environment a subprocess gets, waiting for
a condition, for the line a server announces itself with or for the lines a crawl writes, and
making sure a subprocess is gone (stopped or killed, and reaped) whatever the test does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, AnyStr

TESTS_DIR = Path(__file__).resolve().parent.parent
CRAWLKIT_EXE = Path(sys.executable).with_name("crawlkit")


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment without ``CRAWLKIT_*`` variables, with ``tests/`` on ``PYTHONPATH``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def bare_env(**extra: str) -> dict[str, str]:
    """Nothing of this environment: only ``tests/`` on ``PYTHONPATH`` and the system ``PATH``."""
    return {"PYTHONPATH": str(TESTS_DIR), "PATH": "/usr/bin:/bin", **extra}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def wait_for_lines(
    out: Path, count: int, proc: subprocess.Popen[Any], timeout: float = 60, interval: float = 0.05
) -> None:
    """Wait until the crawl has written ``count`` lines: progress, whatever the machine's load."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= count:
            return
        time.sleep(interval)
    raise AssertionError(f"the crawl did not write {count} items in {timeout} s (exit code {proc.poll()})")


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` if it still runs, and reap it (its pipes read to the end and closed)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def stop(proc: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM ``proc``, SIGKILL it if it is still there after ``grace`` seconds; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
    reap(proc)


@contextmanager
def reaped(proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """Yield ``proc``; on the way out, kill it (and reap it) if it is still running."""
    try:
        yield proc
    finally:
        reap(proc)


def first_line(proc: subprocess.Popen[AnyStr]) -> AnyStr:
    """The first line ``proc`` writes to its stdout (a pipe): how a child says it is ready."""
    assert proc.stdout is not None, "start the process with stdout=subprocess.PIPE"
    line = proc.stdout.readline()
    if not line and proc.stderr is not None:
        proc.wait(30)
        raise AssertionError(f"the process ended ({proc.returncode}) without a line: {proc.stderr.read()!r}")
    return line


def start(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``cmd`` with its output discarded and its stderr kept, for ``finish()``."""
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str]:
    """Wait for ``proc`` to end (killed after ``timeout`` s): its exit code and its stderr."""
    with reaped(proc):
        _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err.decode(errors="replace")
