"""``crawlkit report``: a durable crawl's HTML report, made after the fact from its job folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["add_report_command", "job_folder", "run_report"]


def add_report_command(sub: Any) -> None:
    """Add ``report`` to the ``crawlkit`` parser's subparsers."""
    report = sub.add_parser("report", help="write the HTML report of a durable crawl from its job folder")
    report.add_argument("job", help="the job's name (in .crawlkit/jobs/) or its folder")
    report.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="default: report.html")


def job_folder(job: str) -> Path:
    """A job's folder: the path given, or ``.crawlkit/jobs/JOB``."""
    given = Path(job)
    if given.is_dir():
        return given
    folder = Path(".crawlkit") / "jobs" / job
    if not folder.is_dir():
        raise ConfigError(f"no job {job!r}: neither a folder nor {folder}")
    return folder


def run_report(args: argparse.Namespace) -> int:
    from ..core import load_series, write_report

    folder = job_folder(args.job)
    data = load_series(folder)
    if not data.runs and not data.stats:
        raise ConfigError(
            f"{folder} holds no time series or figures: the crawl never ran, or ran on a "
            "crawlkit that recorded none"
        )
    try:
        write_report(data, args.output)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
