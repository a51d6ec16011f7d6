"""A durable job's page store, set up for one crawl: the development cache and the re-crawl.

``JobCache.prepare()`` runs before the frontier opens. It decides what this crawl does with the
job's ``cache.sqlite`` (``fetch.PageStore``): serve from it (``http_cache``), only from it
(``--offline``), keep page records in it (``keep_pages``), or re-crawl from it (``--recrawl``).
A re-crawl of a finished job starts a new generation with an empty frontier: the frontier's
database goes (as with ``--fresh``), the cache stays, and every page an earlier crawl stored is
queued again after the start requests. A re-crawl killed and run again resumes like any crawl:
the frontier's checkpoint says what was done, the store's baseline is untouched until the end.

``finish()`` runs after the engine: a crawl that ended (not stopped) folds its generation in,
records its counts in the job's history and writes the URLs of the gone pages to ``gone.txt``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..fetch import HttpCache, PageStore, request_from_record
from ..http import Request
from ..settings import Settings
from ._engine import Engine
from ._jobs import JobDir

__all__ = ["CACHE_FILES", "JobCache"]

log = logging.getLogger("crawlkit.cache")

CACHE_FILE = "cache.sqlite"
# What --fresh leaves in a job directory: the cache outlives the crawl state.
CACHE_FILES = (CACHE_FILE, f"{CACHE_FILE}-wal", f"{CACHE_FILE}-shm")
GONE_FILE = "gone.txt"


@dataclass
class JobCache:
    """The job's page store and how this crawl uses it."""

    store: PageStore
    mode: str  # "crawl" or "recrawl"
    new_generation: bool  # a re-crawl that starts now: the frontier starts empty
    finish_at_end: bool
    settings: Settings

    @classmethod
    def prepare(
        cls, job: JobDir, settings: Settings, *, recrawl: bool, fresh: bool, resuming: bool
    ) -> JobCache | None:
        """The store, if this crawl uses one; a ``ConfigError`` for a use that cannot work."""
        path = job.path / CACHE_FILE
        offline = settings.http_cache_offline
        wanted = settings.http_cache or settings.keep_pages or offline or recrawl
        if not wanted and not path.exists():
            return None
        if (offline or recrawl) and not path.exists():
            what = "--offline" if offline else "--recrawl"
            raise ConfigError(
                f"{what}: job directory {job.path} has no cache; crawl once with --cache "
                "(or -s keep_pages=true, for --recrawl) first"
            )
        store = PageStore(
            path, max_bytes=settings.http_cache_max_bytes, max_age=settings.http_cache_max_age
        ).open()
        try:
            last = store.last_crawl()
            open_recrawl = last is not None and last.ended is None and last.mode == "recrawl"
            if not wanted and not open_recrawl:
                store.close()  # a job that kept a cache once, crawled now without it
                return None
            if recrawl and last is not None and last.ended is None and last.mode != "recrawl" and not fresh:
                raise ConfigError(
                    f"--recrawl: the last crawl of {job.path} has not finished; run it again "
                    "without --recrawl to finish it (or --fresh to start over)"
                )
            if recrawl and store.page_count() == 0:
                raise ConfigError(f"--recrawl: the cache of {job.path} holds no page to visit again")
            new_generation = recrawl and not open_recrawl
            mode = "recrawl" if recrawl or open_recrawl else "crawl"
            finish_at_end = True
            if new_generation or fresh or last is None or last.ended is None:
                store.begin(mode)
            elif resuming:
                # A job resumed that kept no generation open (its cache came later): its
                # records go under the last generation, which is not ended again.
                store.gen = last.gen
                finish_at_end = False
            else:
                store.begin(mode)
        except BaseException:
            store.close()
            raise
        store.start_writer()
        return cls(store, mode, new_generation, finish_at_end, settings)

    def attach(self, engine: Engine) -> None:
        """Plug the store into the engine's downloader, its checkpoints and its seeding."""
        s = self.settings
        engine.downloader.cache = HttpCache(
            self.store,
            s,
            engine.stats,
            serve=s.http_cache and self.mode == "crawl",
            offline=s.http_cache_offline,
            revalidate=self.mode == "recrawl",
            bodies=s.http_cache,
        )
        engine.commits.before_checkpoint = self.store.flush
        if self.mode == "recrawl":
            engine.more_start_requests = self._revisits()

    def _revisits(self) -> Iterator[Request]:
        """Every page an earlier crawl stored, as the request that fetched it."""
        for record in self.store.requests_to_revisit():
            record.pop("__stored_at", None)
            try:
                request = request_from_record(record)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("a stored request cannot be visited again (%s): %s", exc, record.get("url"))
                continue
            request.dont_filter = False  # one visit, whatever the start requests hold
            yield request

    def finish(self, engine: Engine, job: JobDir) -> None:
        """After the crawl: a crawl that ended folds its generation in (stopped: left open)."""
        try:
            if self.finish_at_end and engine.stats.stop_reason in ("finished", "already finished"):
                record = self.store.finish()
                if record.mode == "recrawl":
                    gone = self.store.seen_urls("gone", record.gen)
                    _write_lines(job.path / GONE_FILE, gone)
                    counts = ", ".join(f"{k}: {v}" for k, v in record.counts.items())
                    log.info(
                        "re-crawl %d done in %.1f s: %s%s",
                        record.gen,
                        (record.ended or time.time()) - record.started,
                        counts,
                        f" (gone URLs in {job.path / GONE_FILE})" if gone else "",
                    )
        finally:
            self.store.close()

    def close(self) -> None:
        self.store.close()


def _write_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)
