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

With ``keep_items``, each stored page's items are kept with its record (the commit step tells
the cache); a re-crawl with ``recrawl_output = "all"`` writes an unchanged page's stored items.
A re-crawl's rules (``recrawl_match``, ``recrawl_skip``, ``recrawl_after``, a sitemap's
``<lastmod>``) end a stored page as unchanged before any request. For the last, the pages a
sitemap listed are not queued from their records (whose ``<lastmod>`` is the one of their last
visit): the sitemap, fetched again, queues them with today's. Those it no longer lists are queued
when the crawl runs dry (``spider_idle``), without a ``<lastmod>``, and asked as any other.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..fetch import (
    LASTMOD_KEY,
    HttpCache,
    PageItems,
    PageStore,
    RecrawlRules,
    record_crawl_options,
    refresh_unchanged,
    request_from_record,
    url_patterns,
)
from ..http import Request
from ..settings import Settings
from ..spider import SITEMAP_CALLBACK
from ._engine import Engine
from ._jobs import JobDir

__all__ = ["CACHE_FILES", "JobCache"]

log = logging.getLogger("crawlkit.cache")

CACHE_FILE = "cache.sqlite"
# What --fresh leaves in a job directory: the cache outlives the crawl state.
CACHE_FILES = (CACHE_FILE, f"{CACHE_FILE}-wal", f"{CACHE_FILE}-shm")
GONE_FILE = "gone.txt"
_CHUNK = 1000  # held-back pages pushed at once


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
            if recrawl and settings.recrawl_output == "all" and not settings.keep_items:
                raise ConfigError(
                    "--recrawl-output all writes the unchanged pages' items from those kept with "
                    "them: it needs keep_items = true"
                )
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
            if mode == "recrawl":
                _check_same_output(job, store, settings)
        except BaseException:
            store.close()
            raise
        store.start_writer()
        return cls(store, mode, new_generation, finish_at_end, settings)

    def attach(self, engine: Engine) -> None:
        """Plug the store into the engine's downloader, its commits, checkpoints and seeding."""
        s = self.settings
        recrawl = self.mode == "recrawl"
        items = PageItems(self.store) if s.keep_items else None
        rules = RecrawlRules(
            match=url_patterns("recrawl_match", s.recrawl_match),
            skip=url_patterns("recrawl_skip", s.recrawl_skip),
            after=s.recrawl_after,
            lastmod=s.recrawl_sitemap_lastmod,
            # A sitemap's <lastmod>s are what the rule reads: it is never answered with a 304.
            always_parse=frozenset({SITEMAP_CALLBACK}) if s.recrawl_sitemap_lastmod else frozenset(),
        )
        cache = HttpCache(
            self.store,
            s,
            engine.stats,
            serve=s.http_cache and self.mode == "crawl",
            offline=s.http_cache_offline,
            revalidate=recrawl,
            bodies=s.http_cache,
            items=items,
            output_all=s.recrawl_output == "all",
            rules=rules,
        )
        engine.downloader.cache = cache
        if items is not None:
            engine.commits.item_keeper = cache
        engine.commits.before_checkpoint = self.store.flush
        if not recrawl:
            return
        current = self.store.last_crawl()
        assert current is not None
        refresh_unchanged(self.store, current.started)
        if cache.output_all and items is not None:
            missing = items.pages_without_items(self.store.gen)
            if missing:
                log.warning(
                    "%d stored pages have no items kept with them (crawled without keep_items, or "
                    "their callback failed): they are fetched whole and parsed again",
                    missing,
                )
        engine.more_start_requests = self.revisits(hold_listed=rules.lastmod)
        if rules.lastmod:
            engine.signals.connect(_IdleRevisits(self, engine), "spider_idle")

    def revisits(self, *, hold_listed: bool, only_listed: bool = False) -> Iterator[Request]:
        """Every page an earlier crawl stored, as the request that fetched it.

        ``hold_listed``: not the pages a sitemap listed with a ``<lastmod>`` (the sitemap queues
        them again with today's); ``only_listed``: only those, without their old ``<lastmod>``.
        """
        for record in self.store.requests_to_revisit(containing=LASTMOD_KEY if only_listed else None):
            record.pop("__stored_at", None)
            meta = record.get("meta")
            listed = isinstance(meta, dict) and LASTMOD_KEY in meta
            if (hold_listed and listed) or (only_listed and not listed):
                continue
            if only_listed and isinstance(meta, dict):
                del meta[LASTMOD_KEY]
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


class _IdleRevisits:
    """``spider_idle`` of a re-crawl: the pages a sitemap listed before and did not list now.

    Queued once per run, when nothing else is left: those the sitemaps queued again were visited
    already and are dropped as duplicates (a resumed run's too: the frontier remembers them).
    """

    def __init__(self, cache: JobCache, engine: Engine) -> None:
        self._cache = cache
        self._engine = engine
        self._done = False

    async def __call__(self) -> None:
        if self._done:
            return
        self._done = True
        chunk: list[Request] = []
        for request in self._cache.revisits(hold_listed=False, only_listed=True):
            chunk.append(request)
            if len(chunk) >= _CHUNK:
                await self._engine._push(chunk)
                chunk = []
        if chunk:
            await self._engine._push(chunk)


def _check_same_output(job: JobDir, store: PageStore, settings: Settings) -> None:
    """A re-crawl resumed with another ``recrawl_output`` would write its output two ways."""
    wanted = {"recrawl_output": settings.recrawl_output}
    recorded = record_crawl_options(store, store.gen, wanted)
    if recorded.get("recrawl_output") != settings.recrawl_output:
        was = recorded.get("recrawl_output")
        raise ConfigError(
            f"the re-crawl of {job.path} under way started with --recrawl-output {was}; resume it "
            f"with --recrawl-output {was} (or start over with --fresh)"
        )


def _write_lines(path: Path, lines: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)
