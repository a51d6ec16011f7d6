"""``crawlkit cache JOB``: what a job's HTTP cache holds, one entry, the crawl history; purge.

JOB is a job directory, or a spider's name (its default job directory, .crawlkit/jobs/NAME).
The command reads the cache only; ``--purge`` deletes entries, and takes the job's lock first,
so that it never pulls the cache from under a running crawl.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError

__all__ = ["CACHE_COMMANDS", "add_cache_command", "run_cache_command"]

CACHE_COMMANDS = ("cache",)


def add_cache_command(sub: Any) -> None:
    p = sub.add_parser("cache", help="list, show or purge a job's HTTP cache; its crawl history")
    p.add_argument("job", help="a job directory, or a spider's name (.crawlkit/jobs/NAME)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--show", metavar="URL", help="one entry: its status, headers and body")
    what.add_argument("--history", action="store_true", help="the job's crawls, with their counts")
    what.add_argument(
        "--purge", action="store_true", help="delete the entries (those matching --match, else all)"
    )
    p.add_argument("--match", metavar="GLOB", help="only URLs matching this glob (list, purge)")
    p.add_argument("--limit", type=int, default=1000, help="most entries listed (default 1000)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _job_path(job: str) -> Path:
    path = Path(job)
    if path.is_dir():
        return path
    from ..core import JobDir

    default = JobDir.default_for(job)
    if default.is_dir():
        return default
    raise ConfigError(f"no job directory {job!r} (nor {default})")


def run_cache_command(args: argparse.Namespace) -> int:
    from ..core import JobDir
    from ..fetch import PageStore

    path = _job_path(args.job)
    database = path / "cache.sqlite"
    if not database.exists():
        raise ConfigError(f"job directory {path} has no cache (crawl with --cache, or -s keep_pages=true)")
    if args.purge:
        job = JobDir(path)
        job.lock()  # not under a running crawl
        try:
            with PageStore(database) as store:
                count = store.purge(args.match)
        finally:
            job.unlock()
        print(f"{path}: {count} entries purged", file=sys.stderr)
        return 0
    with PageStore(database) as store:
        if args.history:
            records = [record.as_dict() for record in store.history()]
            if args.json:
                print(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode())
            for record in [] if args.json else records:
                ended = _when(record["ended"]) if record["ended"] else "not finished"
                counts = ", ".join(
                    f"{k} {v}" for k, v in record.items() if k not in ("gen", "mode", "started", "ended")
                )
                started = _when(record["started"])
                print(f"{record['gen']:>4}  {record['mode']:<7}  {started} .. {ended}  {counts}")
            return 0
        if args.show:
            entry = store.find(args.show)
            if entry is None:
                raise ConfigError(f"{args.show} is not in the cache of {path}")
            body = _body(entry.body, entry.coding)
            if args.json:
                data = {
                    "url": entry.url,
                    "final_url": entry.final_url,
                    "status": entry.status,
                    "stored_at": entry.stored_at,
                    "etag": entry.etag,
                    "last_modified": entry.last_modified,
                    "headers": entry.headers,
                    "request": entry.request,
                    "body": body.decode("utf-8", "replace") if body is not None else None,
                }
                print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
                return 0
            print(f"{entry.method} {entry.url}\nstatus {entry.status}, stored {_when(entry.stored_at)}")
            if entry.final_url != entry.url:
                print(f"final URL {entry.final_url}")
            for name, value in entry.headers:
                print(f"{name}: {value}")
            print()
            sys.stdout.write(
                body.decode("utf-8", "replace") if body is not None else "(no body kept: keep_pages)\n"
            )
            return 0
        pages, bodies, size = store.totals()
        rows = store.entries(args.match, args.limit)
        if args.json:
            keys = ("url", "status", "size", "stored_at", "gen", "etag", "last_modified", "body")
            print(orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows]).decode())
            return 0
        for url, status, entry_size, stored_at, gen, etag, modified, has_body in rows:
            validators = "etag" if etag else ("last-modified" if modified else "-")
            kept = f"{entry_size:>9}" if has_body else "  no body"
            print(f"{status:>3} {kept}  {_when(stored_at)}  gen {gen:<3} {validators:<13} {url}")
        print(f"{pages} pages, {bodies} bodies, {size / 1e6:.1f} MB in {database}", file=sys.stderr)
    return 0


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp).isoformat(sep=" ", timespec="seconds")


def _body(body: bytes | None, coding: str) -> bytes | None:
    if body is None:
        return None
    from ..http import decode_body

    try:
        return decode_body(body, coding, 1 << 30)
    except ValueError:
        return body
