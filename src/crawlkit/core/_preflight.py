"""Checks made before a crawl starts: can its output and its job directory be written at all?

A crawl that finds out after an hour that its output cannot be written has wasted the hour and
the site's bandwidth. These checks run before the first request and turn every such problem into
a :class:`ConfigError` (exit code 2) that names the path and the cause. They try for real (create
the folder, create and remove a file in it), since permission bits say nothing for root, a
read-only mount, or a path that runs through a regular file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..exporters import is_stream, os_cause

__all__ = ["check_job_database", "check_output", "check_writable_dir"]


def check_writable_dir(path: Path, what: str, mode: int = 0o777) -> None:
    """Create ``path`` if it is missing (with ``mode``), then make sure a file can be created in it."""
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{what} {path} exists and is not a folder") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {what} {path}: {os_cause(exc)}") from None
    if not path.is_dir():
        raise ConfigError(f"{what} {path} is not a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".crawlkit-write-check-", dir=path)
    except OSError as exc:
        raise ConfigError(f"{what} {path} is not writable: {os_cause(exc)}") from None
    os.close(fd)
    os.unlink(name)


def check_output(path: Path) -> None:
    """The output's folder is writable, and so is the output file if it already exists.

    A folder (or a link to one) is refused here, not when the first items are written after
    an hour of fetching. (A shared crawl's folder of parts is mapped to its part file before.)
    """
    if path.is_dir():
        raise ConfigError(f"output {path} is a folder; give a file name, such as -o {path / 'items.jsonl'}")
    check_writable_dir(path.parent, "the output's folder")
    if path.is_file() or is_stream(path):
        try:
            with path.open("ab"):  # opened for appending, nothing written: the file is unchanged
                pass
        except OSError as exc:
            raise ConfigError(f"output {path} is not writable: {os_cause(exc)}") from None


def check_job_database(database: Path, info: Path, output: Path) -> None:
    """Refuse a job whose database is empty (0 bytes) although the job ran before.

    SQLite writes its header when the database is set up, so a crawl never leaves an empty file
    behind: an empty one comes from a failed copy or restore, or a full disk. Taken as a new job
    it would rewrite the committed output from byte 0, so it is refused unless nothing shows that
    the job ran (no ``job.json``, no output).
    """
    try:
        if database.stat().st_size > 0:
            return
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot read the frontier database {database}: {os_cause(exc)}") from None
    ran = [str(path) for path in (info, output) if path.exists()]
    if ran:
        # Without job.json, --fresh cannot tell that the output is the job's: it takes --overwrite.
        start_over = "--fresh" if info.exists() else "--fresh --overwrite"
        raise ConfigError(
            f"the frontier database {database} is empty (0 bytes), but {' and '.join(ran)} "
            f"{'show' if len(ran) > 1 else 'shows'} that this job ran before: its committed state "
            "is lost, and nothing was written. Restore the database from a backup and run the same "
            f"command again, or run with {start_over} to start the crawl over (the output is then "
            "replaced: move it away first to keep it)"
        )
