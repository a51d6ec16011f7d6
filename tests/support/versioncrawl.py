"""Crawl processes against ``versionsite.VersionSite``: the command, a run, its items.

Shared by the HTTP cache and re-crawl tests; each run is a real ``crawlkit runspider`` process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from . import procs
from .versionsite import VersionSite

SPIDERS = Path(__file__).parent.parent / "crawlspiders"
SPIDER = SPIDERS / "version_spider.py"
SITEMAP_SPIDER = SPIDERS / "version_sitemap_spider.py"


def command(site: VersionSite, job: Path, out: Path, *extra: str, spider: Path = SPIDER) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", str(out),
        "--job-dir", str(job), "-a", f"base={site.base}", "-s", "parse_workers=1",
        "-s", "max_retries=0", "-s", "commit_interval=0.1", "--progress", "off",
        "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def crawl(
    site: VersionSite, job: Path, out: Path, *extra: str, spider: Path = SPIDER
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(site, job, out, *extra, spider=spider),
        capture_output=True,
        text=True,
        timeout=120,
        env=procs.subprocess_env(),
        cwd=job.parent,
    )


def items(out: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def by_n(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {row["n"]: row for row in rows}


def history(job: Path) -> list[dict[str, object]]:
    """``crawlkit cache JOB --history --json``: the job's crawls, with their counts."""
    done = subprocess.run(
        [sys.executable, "-m", "crawlkit", "cache", str(job), "--history", "--json"],
        capture_output=True,
        timeout=60,
        env=procs.subprocess_env(),
        check=True,
    )
    records: list[dict[str, object]] = orjson.loads(done.stdout)
    return records
