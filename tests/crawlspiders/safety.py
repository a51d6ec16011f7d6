"""Helpers for the safety tests (``tests/integration/test_safety_*.py``): real crawl processes.

Each test writes a spider file into its temporary folder and runs ``python -m crawlkit runspider``
on it in a subprocess, with whatever limits the test sets in the child (``preexec``), and reads
back the exit code, stderr and the JSONL output.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from support.procs import reaped, subprocess_env


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float


def crawl_argv(spider_file: Path, out: Path, job: Path | None, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "crawlkit", "runspider", str(spider_file), "-o", str(out)]
    if job is not None:
        argv += ["--job-dir", str(job)]
    return argv + list(extra)


def start(argv: Sequence[str], cwd: Path, preexec: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 90, started: float | None = None) -> Finished:
    begun = time.monotonic() if started is None else started
    with reaped(proc):
        out, err = proc.communicate(timeout=timeout)
    return Finished(proc.returncode, out, err, time.monotonic() - begun)


def run(
    argv: Sequence[str], cwd: Path, preexec: Callable[[], None] | None = None, timeout: float = 90
) -> Finished:
    began = time.monotonic()
    return finish(start(argv, cwd, preexec), timeout, began)


def read_items(out: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL output; the file must end in a whole line."""
    data = out.read_bytes() if out.exists() else b""
    assert data == b"" or data.endswith(b"\n"), "the output ends in a partial line"
    return [orjson.loads(line) for line in data.splitlines()]


def summary_value(stderr: str, key: str) -> str:
    for line in stderr.splitlines():
        stripped = line.strip()
        if stripped.startswith(key + " "):
            return stripped[len(key) :].strip()
    raise AssertionError(f"no {key!r} in the summary:\n{stderr}")


def limit_file_size(limit: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the size of every file the child writes (RLIMIT_FSIZE).

    SIGXFSZ is ignored so that a write past the limit fails with EFBIG instead of killing the
    process: exactly what a full disk looks like to a program (ENOSPC), with an errno of its own.
    """

    def preexec() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec
