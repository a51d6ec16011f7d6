"""The command-line side of shared (Redis) crawls: ``export``, ``reset`` and ``crawl --workers N``.

``crawl --workers N`` is a convenience: it starts N ordinary ``crawlkit crawl`` processes on the
same frontier, each with its own worker id (``HOST-1`` ... ``HOST-N``, so that running the same
command again resumes each part), forwards Ctrl-C and SIGTERM to them, waits, and reports.
"""

from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from ..core import stop_signals
from ..errors import ConfigError
from ..settings import Settings

__all__ = ["SHARED_COMMANDS", "add_shared_commands", "run_shared_command", "run_workers"]

SHARED_COMMANDS = ("export", "reset")

SettingsFor = Callable[[dict[str, Any]], Settings]


def add_shared_commands(sub: Any) -> None:
    """Add ``export`` and ``reset`` to the ``crawlkit`` parser's subparsers."""
    frontier_help = "the Redis URL (default: the frontier setting)"
    export = sub.add_parser(
        "export", help="merge the committed parts of a shared (Redis) crawl into one file"
    )
    export.add_argument("job", help="the job's name (its spider's name unless job_name was set)")
    export.add_argument("-o", "--output", type=Path, required=True, help="the merged JSONL file")
    export.add_argument("--frontier", metavar="redis://HOST:PORT/DB", help=frontier_help)
    export.add_argument(
        "--parts", type=Path, metavar="DIR", help="where the parts are (default: where each worker wrote it)"
    )
    reset = sub.add_parser("reset", help="delete the shared state of a Redis crawl, to start it over")
    reset.add_argument("job", help="the job's name (its spider's name unless job_name was set)")
    reset.add_argument("--frontier", metavar="redis://HOST:PORT/DB", help=frontier_help)
    reset.add_argument("--force", action="store_true", help="even if workers seem to be running")


def _redis_url(args: argparse.Namespace, settings_for: SettingsFor) -> str:
    url = args.frontier or settings_for({}).frontier
    if "://" not in url:
        raise ConfigError(f"'{args.command}' needs a Redis frontier: pass --frontier redis://HOST:PORT/DB")
    settings_for({"frontier": url})  # checks the URL's form
    return str(url)


def run_shared_command(args: argparse.Namespace, settings_for: SettingsFor) -> int:
    """Run ``export`` or ``reset``; return the exit code."""
    from ..core import export_job, reset_job

    url = _redis_url(args, settings_for)
    if args.command == "reset":
        deleted = reset_job(url, args.job, force=args.force)
        print(f"job {args.job!r}: deleted {deleted} keys", file=sys.stderr)
        return 0
    report = export_job(url, args.job, args.output, args.parts)
    status = report.status
    state = (
        "the crawl has finished"
        if status.finished
        else f"the crawl is not finished ({status.pending} pending, {status.leased} leased)"
    )
    print(
        f"{args.output}: {report.lines} items from {report.parts} parts ({report.bytes} bytes); {state}",
        file=sys.stderr,
    )
    return 0


def _child_argv(argv: Sequence[str]) -> list[str]:
    """The command line of one worker: the parent's, without --workers and --fresh."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers=") or arg == "--fresh":
            continue
        out.append(arg)
    return out


def run_workers(argv: Sequence[str], count: int, settings: Settings, job: str, *, fresh: bool) -> int:
    """Start ``count`` worker processes on one shared frontier, wait for them, and report."""
    from ..core import job_status, reset_job
    from ..frontier.redis import safe_url

    if count < 1:
        raise ConfigError(f"--workers must be at least 1, got {count}")
    if "://" not in settings.frontier:
        raise ConfigError("--workers needs a shared frontier: add --frontier redis://HOST:PORT/DB")
    if fresh:
        reset_job(settings.frontier, job)  # once, here: a worker's --fresh would wipe the others'
    job_status(settings.frontier, job)  # a clear error now if Redis is unreachable
    base = settings.worker_id or re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "worker"
    ids = [f"{base}-{i}" for i in range(1, count + 1)]
    command = [sys.executable, "-m", "crawlkit", *_child_argv(argv)]
    # Own sessions: a terminal's Ctrl-C reaches the parent only, which passes it on once.
    procs = [
        subprocess.Popen([*command, "-s", f"worker_id={worker}"], start_new_session=True) for worker in ids
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    # The workers run in their own sessions: a terminal's hangup reaches them through this one.
    previous = {sig: signal.signal(sig, forward) for sig in stop_signals()}
    try:
        codes = [proc.wait() for proc in procs]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    lines = [f"  {worker}  exit {code}" for worker, code in zip(ids, codes, strict=True)]
    print("workers\n" + "\n".join(lines), file=sys.stderr)
    url = safe_url(settings.frontier)
    print(f"merge their parts with: crawlkit export {job} -o {job}.jsonl --frontier {url}", file=sys.stderr)
    worst = max((4 if code < 0 else code) for code in codes)
    return worst
