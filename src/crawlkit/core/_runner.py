"""Setting a crawl up and running it: shared by the ``crawlkit`` command and :func:`crawl`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..exporters import Feed, Mode, OutputSpec, feeds_from_settings, is_stream, spec_for
from ..fetch import CrawlHostPolicy
from ..frontier import SharedCrawlWorker, frontier_kind, open_frontier
from ..settings import Settings, load_settings
from ..spider import Spider
from ._engine import Engine
from ._jobs import JobDir, output_key
from ._preflight import check_job_database, check_output, check_writable_dir
from ._recrawl import CACHE_FILES, JobCache
from ._report import write_report
from ._series import SeriesRecorder
from ._stats import CrawlStats

__all__ = ["crawl", "new_event_loop", "prepared_engine"]

log = logging.getLogger("crawlkit.runner")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop where it is installed (faster I/O), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - depends on the platform
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


new_event_loop = _loop_factory()


def resolve_settings(spider_cls: type[Spider], settings: Settings | Mapping[str, Any] | None) -> Settings:
    if isinstance(settings, Settings):
        return settings
    return load_settings(
        pyproject=Path("pyproject.toml"),
        spider_settings=spider_cls.custom_settings,
        overrides=settings,
    )


def spider_name(spider_cls: type[Spider]) -> str:
    return spider_cls.name or spider_cls.__name__.lower()


@contextmanager
def prepared_engine(
    spider_cls: type[Spider],
    settings: Settings,
    output: Path | None,
    *,
    mode: Mode | None = None,
    fresh: bool = False,
    spider_kwargs: dict[str, Any] | None = None,
    handle_signals: bool = True,
    recrawl: bool = False,
) -> Iterator[Engine]:
    """An engine ready to run, with its job directory locked for as long as the block runs.

    ``output`` is written along with the ``feeds`` setting's outputs (None: those only).
    ``mode`` None means: refuse an existing non-empty output unless this job wrote it; a feed's
    own ``overwrite`` option comes first.
    ``recrawl``: visit again, conditionally, what the job's last crawl fetched (docs/recrawl.md).
    """
    name = spider_name(spider_cls)
    feeds = feeds_from_settings(settings)
    if output is None and not feeds:
        raise ConfigError("no output: give -o PATH, or the feeds setting")

    # One policy for the frontier (limits, delays) and the engine (latency, 429s, Crawl-delay).
    host_limits = CrawlHostPolicy.from_settings(settings)

    job: JobDir | None = None
    shared: SharedCrawlWorker | None = None
    resuming = False
    kind = frontier_kind(settings.frontier)
    cache: JobCache | None = None
    if kind != "sqlite" and (recrawl or settings.http_cache or settings.http_cache_offline):
        raise ConfigError(
            "the HTTP cache and --recrawl live in a job directory: they need the sqlite frontier "
            "(the default), not --frontier " + settings.frontier
        )
    if kind == "redis":
        from ._shared import shared_worker  # a clear error if redis-py is not installed

        if feeds or output is None:
            raise ConfigError(
                "a shared (Redis) crawl writes one folder of JSON lines parts (-o FOLDER): drop the "
                "feeds setting, and convert the merged export instead"
            )
        shared = shared_worker(settings, name, output, mode=mode, fresh=fresh)
        output = shared.part
        resuming = True  # the part belongs to this worker id; Redis holds its committed offset
    elif kind == "sqlite":
        job = JobDir(Path(settings.job_dir) if settings.job_dir else JobDir.default_for(name))
        # Private: the frontier keeps whole requests, credentials included, to resume them.
        check_writable_dir(job.path, "job directory", mode=0o700)
        job.lock()
    try:
        outputs = ([Feed(spec_for(output, settings))] if output is not None else []) + feeds
        specs = [feed.spec for feed in outputs]
        _refuse_twice(specs)
        for spec in specs:
            check_output(spec.path)  # before any request: exit code 2, naming the path and the cause
        owned: set[str] = set()  # outputs that are this job's own, from an earlier run
        starting_over = fresh
        if job is not None:
            cache = JobCache.prepare(
                job, settings, recrawl=recrawl, fresh=fresh, resuming=job.frontier_path.exists()
            )
            # A re-crawl starts from an empty frontier, as --fresh does, keeping the cache.
            starting_over = fresh or (cache is not None and cache.new_generation)
            if starting_over:
                owned = _job_wrote(job)
            else:
                check_job_database(job.frontier_path, job.info_path, specs[0].first_file)
                resuming = job.check(name, specs, feeds=bool(feeds))
        modes = [
            feed.mode
            or mode
            or _default_mode(feed.spec.first_file, resuming or output_key(feed.spec.path) in owned)
            for feed in outputs
        ]
        if job is not None:
            # Only now, with every check passed: a refused --fresh crawl keeps the state it had.
            if starting_over:
                removed = job.clear(keep=CACHE_FILES)
                if removed and fresh:
                    log.warning("--fresh: removed %s", ", ".join(removed))
            if not resuming:
                job.write_info(name, specs, feeds=bool(feeds))
        frontier = open_frontier(
            settings,
            host_limits,
            spider_name=name,
            database=job.frontier_path if job is not None else None,
            shared=shared,
        )
        for spec in specs:
            if is_stream(spec.path) and settings.frontier != "memory":
                log.warning(
                    "output %s is a device or a pipe: it cannot be synced or cut back, so a resumed "
                    "crawl may write again the items written after the last commit (not exactly once)",
                    spec.path,
                )
        engine = Engine(
            spider_cls,
            settings,
            None,
            feeds=list(zip(specs, modes, strict=True)),
            spider_kwargs=spider_kwargs,
            frontier=frontier,
            handle_signals=handle_signals,
            host_policy=host_limits,
        )
        if job is not None or settings.report:
            engine.series = SeriesRecorder(
                settings,
                name=job.path.name if job is not None else name,
                spider=name,
                job_path=job.path if job is not None else None,
                host_policy=host_limits,
            )
        if job is not None and resuming:
            engine.stats.earlier = job.read_totals()  # the summary and exit code cover the whole job
        if cache is not None:
            cache.attach(engine)
        yield engine
        if job is not None and engine.stats.stop_reason != "already finished":
            job.write_totals(engine.stats.job_totals())
        if cache is not None and job is not None:
            cache.finish(engine, job)
            cache = None
    finally:
        if cache is not None:
            cache.close()
        if job is not None:
            job.unlock()


def _job_wrote(job: JobDir) -> set[str]:
    """The outputs the job being discarded (--fresh) wrote, by key: they may be replaced."""
    try:
        info = job.read_info()
    except ConfigError:
        return set()  # a corrupt job.json proves nothing about the files
    if info is None:
        return set()
    feeds = info.get("feeds")
    return {str(info.get("output")), *(feeds if isinstance(feeds, dict) else ())}


def _refuse_twice(specs: list[OutputSpec]) -> None:
    """Two feeds (or -o and a feed) naming one file would write every item twice into it."""
    seen: set[str] = set()
    for spec in specs:
        key = output_key(spec.path)
        if key in seen:
            raise ConfigError(f"output {spec.path} is given twice (with -o and in feeds, or twice in feeds)")
        seen.add(key)


def _default_mode(output: Path, owned: bool) -> Mode:
    if owned or is_stream(output):  # a device or a pipe holds nothing to lose
        return "overwrite"
    if output.exists() and (not output.is_file() or output.stat().st_size > 0):
        raise ConfigError(
            f"output {output} already exists and is not empty; pass --overwrite (or -O OUTPUT) to "
            "replace it or --append to add to it"
        )
    return "overwrite"


def run_engine(engine: Engine) -> CrawlStats:
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(engine.run())
    finally:
        if engine.settings.stats_file:
            # Written whatever the ending (finished, stopped, output error): it is the record.
            engine.stats.write_json(Path(engine.settings.stats_file))
        if engine.series is not None:
            _write_reports(engine.series, engine.stats)


def _write_reports(series: SeriesRecorder, stats: CrawlStats) -> None:
    """The final figures and the report: in the job folder, and at ``settings.report``."""
    if not series.begun:
        return  # it never crawled ("already finished"): the report it has stays as it was
    series.write_stats(stats)
    paths = [Path(series.settings.report)] if series.settings.report else []
    if series.job_path is not None:
        paths.append(series.job_path / "report.html")
    for path in paths:
        try:
            write_report(series.data, path)
        except OSError as exc:
            log.warning("cannot write the crawl report to %s: %s", path, exc.strerror or exc)


def crawl(
    spider_cls: type[Spider],
    output: str | Path | None = None,
    *,
    settings: Settings | Mapping[str, Any] | None = None,
    mode: Mode = "overwrite",
    fresh: bool = False,
    handle_signals: bool = True,
    **spider_kwargs: Any,
) -> CrawlStats:
    """Crawl with ``spider_cls`` and write its items to ``output`` (JSONL, CSV or JSON, by its name).

    With the ``feeds`` setting, every item goes to each feed as well (``output`` None: to the
    feeds only).

    ``settings`` is a :class:`Settings` or a mapping of overrides (applied above pyproject,
    the spider's ``custom_settings`` and the environment). Keyword arguments become spider
    attributes. With the durable frontier (the default), calling it again after an interruption
    resumes the crawl. Returns the crawl's statistics.
    """
    resolved = resolve_settings(spider_cls, settings)
    with prepared_engine(
        spider_cls,
        resolved,
        None if output is None else Path(output),
        mode=mode,
        fresh=fresh,
        spider_kwargs=spider_kwargs,
        handle_signals=handle_signals,
    ) as engine:
        return run_engine(engine)
