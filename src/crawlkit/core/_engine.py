"""The engine: wires frontier, fetcher, parser pool, pipelines and exporter into one crawl.

One feeder task leases requests from the frontier, only as many as there are free slots of
``concurrency``, and hands them to worker tasks over a queue. A worker fetches, sends the response
to the parser pool, gives its slot up, and commits the outcome: items to the exporter, then
``frontier.ack(request, new_requests)`` (pages that finish while a commit is under way are
committed together, with one ``ack_many``).
Each attempt is one call into ``fetch`` (``Downloader.download()``), which answers with a
response for the parser or a verdict: a failed attempt goes back to the frontier with a retry
time, or is given up on (its errback, if it has one, runs in the parser pool); either way the
worker is free at once.

How a crawl stops (signals, a graceful or forced stop, close conditions, an output error) is
``_stopping.py``'s; the engine drains: the feeder returns queued requests to the frontier and ends
the worker tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StorageError
from ..exporters import (
    Exporter,
    FeedSet,
    Mode,
    OutputSpec,
    PipelineChain,
    exporter_for,
    load_pipelines,
    render_files_dir,
    spec_for,
)
from ..fetch import (
    ByteBudget,
    CrawlHostPolicy,
    Downloader,
    Verdict,
    load_client,
)
from ..frontier import Checkpoint, Frontier
from ..guards import PAUSES, crawl_guards, redact_headers, tune_gc, tune_malloc
from ..http import Request
from ..parsing import ParseOutcome, Parser, ParseTask, WorkerConfig, make_parser
from ..settings import Settings
from ..spider import Spider, ref_for_class
from ._commit import CommitStep
from ._handoff import Handoff
from ._hooks import Crawler, build_component, captcha_solver
from ._progress import progress_display
from ._seeding import seed, start_requests_to_push
from ._statedoc import load_state
from ._stats import CrawlStats
from ._stopping import CrawlStop
from ._verdicts import VerdictActions

if TYPE_CHECKING:
    from ._series import SeriesRecorder

__all__ = ["Engine"]


log = logging.getLogger("crawlkit.engine")

_THROTTLED_HOSTS_KEPT = 10  # in the stats file


class Engine:
    """Runs one crawl of one spider. Create, then ``await engine.run()`` once."""

    def __init__(
        self,
        spider_cls: type[Spider],
        settings: Settings,
        output: Path | None,
        *,
        output_mode: Mode = "overwrite",
        feeds: Sequence[tuple[OutputSpec, Mode]] = (),
        spider_kwargs: dict[str, Any] | None = None,
        frontier: Frontier,
        handle_signals: bool = True,
        host_policy: CrawlHostPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.spider_cls = spider_cls
        self.spider_kwargs = dict(spider_kwargs or {})
        self.spider = spider_cls(**self.spider_kwargs)
        # ``output`` (-o) is one more feed, the first; each feed is written with its own mode.
        outputs = [*([(spec_for(output, settings), output_mode)] if output is not None else []), *feeds]
        self.stats = CrawlStats(output=", ".join(spec.label for spec, _ in outputs))
        # The frontier asks it for limits and delays; the politeness gate feeds it responses.
        self.host_policy = host_policy or CrawlHostPolicy.from_settings(settings)
        self.frontier = frontier  # made by open_frontier(); the engine opens and closes it
        self.exporter: Exporter = exporter_for(outputs)
        self.pipelines = PipelineChain(load_pipelines(settings.pipelines), self.spider)
        self._handle_signals = handle_signals
        # What middlewares and extensions are built with; they subscribe to crawl events on it.
        self.crawler = Crawler(settings, self.stats, self.spider, self._schedule)
        self.signals = self.crawler.signals
        self.extensions = [build_component(p, self.crawler, "extension") for p in settings.extensions]
        # Bytes of response bodies in flight (read, or waiting for a parser): max_inflight_bytes.
        self.budget = ByteBudget(settings.max_inflight_bytes)
        # The one call into fetch/ per attempt: middlewares, politeness, the fetcher, the classifier.
        self.downloader = Downloader(
            settings,
            frontier=frontier,
            stats=self.stats,
            host_policy=self.host_policy,
            budget=self.budget,
            allowed_domains=self.spider.allowed_domains,
            handled_statuses=spider_cls.handle_httpstatus_list,
            middlewares=[build_component(p, self.crawler, "middleware") for p in settings.middlewares],
            render=spider_cls.render,
            render_files=render_files_dir(outputs[0][0].path),  # beside the first output
            block_rules=spider_cls.block_rules,
            handle_blocked=spider_cls.handle_blocked,
            captcha_solver=captcha_solver(settings, self.crawler, self.spider),
            parser_checks_challenges=True,  # _handle() acts on ParseOutcome.blocked
        )
        self._queue = Handoff()
        # The crawl's time series (the report's charts), when the runner asks for one.
        self.series: SeriesRecorder | None = None
        self._in_flight = 0  # requests leased and not yet parsed: at most ``concurrency``
        self._seeding_done = False  # the seeder has ended, one way or another
        self._seeded = False  # start_requests() was exhausted: recorded by checkpoints
        self.more_start_requests: Iterable[Request] = ()  # after start_requests(): a re-crawl's
        self._wakeup: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # set by run()
        self._workers: list[asyncio.Task[None]] = []
        self.commits = CommitStep(
            self.frontier,
            self.exporter,
            self.pipelines,
            self.spider,
            self.stats,
            signals=self.signals,
            cookie_jars=self.downloader.cookie_jars,
            sessions=self.downloader.sessions_state,
            feed_offsets=self.exporter.offsets if isinstance(self.exporter, FeedSet) else None,
        )
        self._stopping = CrawlStop(
            settings,
            self.stats,
            wake=self._wake,
            in_flight=lambda: self._in_flight,
            workers=self._workers,
            is_committing=self.commits.is_committing,
        )
        self.verdicts = VerdictActions(
            self.frontier, self.stats, self.commits, self.downloader, self.signals, self._parse, self.stop
        )
        self._commit_task: asyncio.Task[None] | None = None
        self._resumed = False
        self._pauses_before = (PAUSES.count, PAUSES.total)  # the process's record, before this crawl

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> CrawlStats:
        """Crawl until the frontier is exhausted or a stop is asked; return the stats."""
        s = self.settings
        redact_headers(s.redact_headers)  # before the parser workers start: they inherit it
        config = WorkerConfig(
            spider=ref_for_class(self.spider_cls),
            spider_kwargs=self.spider_kwargs,
            # Pipelines and item event handlers see item objects; otherwise items are JSON lines.
            serialize_items=not (
                self.pipelines or self.signals.has("item_scraped") or self.signals.has("item_dropped")
            ),
            max_response_size=s.max_response_size,
            log_level=s.log_level,
            depth_limit=s.depth_limit,
        )
        parser = make_parser(config, s)
        self.parser = parser
        # Kept: in Python 3.11 each get_running_loop() (current_task() too) is a getpid() syscall.
        loop = self._loop = self._queue.loop = asyncio.get_running_loop()
        # Handlers first: a Ctrl-C while workers start or opened() runs must be a graceful stop
        # with a summary, not a KeyboardInterrupt traceback.
        with self._stopping.signals_handled(loop) if self._handle_signals else contextlib.nullcontext():
            return await self._run(parser)

    async def _run(self, parser: Parser) -> CrawlStats:
        s = self.settings
        # The parser workers start first, each a process that imports the spider, and this
        # process imports the HTTP client and opens the frontier meanwhile: startup costs the
        # longer of the two, not their sum.
        starting = asyncio.create_task(parser.start(), name="parser-start")
        # aiohttp is imported in a thread while the frontier opens in its own: the import is the
        # longest step of a start, and the database does its work without the GIL.
        loading = asyncio.ensure_future(asyncio.to_thread(load_client))
        try:
            try:
                checkpoint = await self.frontier.open()
            finally:
                await loading  # a session's jar, restored below, is aiohttp's
            # A shared frontier (Redis) keeps one pool of sessions for all its workers; each
            # checkpoint syncs it first, so a page recorded as done has its session's cookies there.
            session_store = getattr(self.frontier, "session_store", None)
            if session_store is not None and self.downloader.share_sessions(session_store()):
                self.commits.add_before_checkpoint(self.downloader.sync_sessions)
            try:
                await self._resume_from(checkpoint)
            except BaseException:
                await self.frontier.close()
                raise
        except BaseException:
            await _abandon_start(starting, parser)
            raise
        if checkpoint is not None and checkpoint.finished and checkpoint.seeded:
            log.info("this crawl has already finished; nothing to do (use --fresh to crawl again)")
            self.stats.stop_reason = "already finished"
            await _abandon_start(starting, parser)
            await self.exporter.close()
            await self.frontier.close()
            self.stats.finished = time.monotonic()
            return self.stats
        try:
            # What the crawl needs besides the parser workers is made while they start, not
            # after: this process and the workers share the cores while everything starts.
            await self.pipelines.open()
            await self.spider.opened()
            async with self.downloader:
                tune_gc()
                tune_malloc()
                await self._workers_up(starting)
                async with (
                    progress_display(
                        s, self.stats, self.frontier, lambda: self._in_flight, series=self.series
                    ),
                    crawl_guards(
                        s,
                        parser=parser,
                        frontier=self.frontier,
                        budget=self.budget,
                        stop=self.stop,
                        browser_bytes=self.downloader.browser_memory_bytes,
                    ),
                ):
                    await self._crawl()
        finally:
            self._stopping.cancel_hard_stop()
            # A start still under way (an opened() hook that raised, a stop while the workers
            # import the spider) is cancelled, not waited for: a cancelled worker launch kills
            # and reaps its process, so nothing is left behind.
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await self._shutdown(parser)
        return self.stats

    async def _workers_up(self, starting: asyncio.Task[None]) -> None:
        """Wait for the parser pool's start, unless a stop is asked first: a worker importing a
        heavy spider can take seconds, and a Ctrl-C must not wait for it (``_run`` then cancels
        the start, and the crawl ends without a page)."""
        loop = self._loop or asyncio.get_running_loop()
        while not starting.done() and not self._stopping.requested:
            woken = self._wakeup = loop.create_future()  # a stop wakes it (_wake)
            try:
                await asyncio.wait((starting, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._wakeup = None
        if starting.done():
            await starting  # a start that failed raises here

    async def _resume_from(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is None:
            await self.exporter.open()
            return
        state = load_state(checkpoint.state)
        if isinstance(self.exporter, FeedSet):  # each feed cut back to its own offset
            await self.exporter.open(checkpoint.output_offset, state.feed_offsets)
        else:
            await self.exporter.open(resume_offset=checkpoint.output_offset)
        if state.cookie_jars is not None:
            self.downloader.restore_cookie_jars(state.cookie_jars)
        if state.sessions is not None:
            self.downloader.restore_sessions(state.sessions)
        self.spider.state.update(state.spider)
        self._seeding_done = self._seeded = checkpoint.seeded
        self._resumed = True
        log.info(
            "resuming: %d requests pending, output kept up to byte %d",
            len(self.frontier),
            checkpoint.output_offset,
        )

    async def _crawl(self) -> None:
        # Twice as many worker tasks as slots: a task whose page is being committed has given its
        # slot up already, and another task takes the slot's next request.
        self._workers.extend(
            asyncio.create_task(self._worker(), name=f"crawl-worker-{i}")
            for i in range(2 * self.settings.concurrency)
        )
        self._commit_task = asyncio.create_task(self._commit_periodically(), name="commit")
        seeder = asyncio.create_task(self._seed(resumed=self._resumed), name="seed")
        feeder = asyncio.create_task(self._feed(), name="feed")
        self._stopping.start_close_timer()
        try:
            # Workers end on their own (the feeder sends each one None) or are cancelled by a
            # forced stop; either way the crawl is over.
            await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            self._stopping.cancel_close_timer()
            for task in (seeder, feeder):
                task.cancel()
            await asyncio.gather(seeder, feeder, return_exceptions=True)
            await self.downloader.close_politeness()

    async def _shutdown(self, parser: Parser) -> None:
        if self._commit_task is not None:
            self._commit_task.cancel()
            await asyncio.gather(self._commit_task, return_exceptions=True)
        await parser.close()
        await self.pipelines.close()
        stopping = self._stopping
        if stopping.storage_error is None:
            try:
                await self.commits.checkpoint(self._seeded)
            except StorageError as exc:
                stopping.storage_error = exc
        try:
            await self.exporter.close()
        except StorageError as exc:
            stopping.storage_error = stopping.storage_error or exc
        try:
            await self.spider.closed(self.stats.stop_reason)
        except Exception:
            log.exception("spider's closed() hook failed")
        if self.signals.has("spider_closed"):
            await self.signals.send("spider_closed", self.stats.stop_reason)
        await self.downloader.release_sessions()  # after the last checkpoint synced them
        try:
            await self.frontier.close()
        except Exception as exc:
            # Closing only drops what no checkpoint committed; the database stays as committed.
            if stopping.storage_error is None:
                raise
            log.debug("closing the frontier after an output error: %s", exc)
        self.stats.pauses = PAUSES.count - self._pauses_before[0]
        self.stats.paused_s = PAUSES.total - self._pauses_before[1]
        self.stats.throttled_hosts = self.host_policy.throttled_hosts(_THROTTLED_HOSTS_KEPT)
        self.stats.slow_hosts = self.host_policy.slowest_hosts(_THROTTLED_HOSTS_KEPT)
        self.stats.finished = time.monotonic()
        if stopping.storage_error is not None:
            raise stopping.storage_error

    # -- stopping (_stopping.py) -----------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop leasing; let in-flight work finish within ``shutdown_timeout``."""
        self._stopping.stop(reason)

    def stop_now(self, reason: str) -> None:
        """Cancel in-flight work; what was not committed is returned to the frontier."""
        self._stopping.stop_now(reason)

    @property
    def forced(self) -> bool:
        """Whether in-flight work was cancelled (a second signal, the timeout, an output error)."""
        return self._stopping.forced

    # -- feeding ----------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep_until_woken(self, delay: float | None) -> None:
        loop = self._loop or asyncio.get_running_loop()
        waiter = self._wakeup = loop.create_future()
        handle = loop.call_later(delay, self._wake) if delay is not None else None
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._wakeup = None

    async def _feed(self) -> None:
        frontier = self.frontier
        limit = self.settings.concurrency
        commits_went_first = False
        try:
            while not self._stopping.requested:
                free = limit - self._in_flight
                if free > 0:
                    if self.commits.waiting and not commits_went_first:
                        # The pages whose outcomes freed these slots are about to commit. One
                        # turn of the loop lets their links reach the frontier first, so that the
                        # next page of a chain takes a freed slot instead of waiting for the next
                        # one to free. One turn only: a commit that waits for its database must
                        # not hold the slots.
                        commits_went_first = True
                        await asyncio.sleep(0)
                        continue
                    commits_went_first = False
                    try:
                        batch = await frontier.lease(free)
                    except StorageError as exc:
                        self._stopping.output_failed(exc)
                        break
                    if batch:
                        self._in_flight += len(batch)
                        for request in batch:
                            self._queue.put_nowait(request)
                        continue
                    # A page being committed is still leased: the frontier is not finished.
                    if self._in_flight == 0 and self._seeding_done and frontier.is_finished():
                        if not self.signals.has("spider_idle"):
                            break
                        await self.signals.send("spider_idle")  # a handler may schedule more
                        if frontier.is_finished():
                            break
                        continue
                timeout = frontier.next_ready_in() if free > 0 else None
                await self._sleep_until_woken(timeout)
        finally:
            try:
                await self._return_queued()
            except StorageError as exc:  # they were leased: a resume fetches them
                self._stopping.output_failed(exc)
            finally:
                for _ in self._workers:
                    self._queue.put_nowait(None)

    async def _return_queued(self) -> None:
        unstarted: list[Request] = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                unstarted.append(item)
        if unstarted:
            self._in_flight -= len(unstarted)
            await self.frontier.release(unstarted)

    async def _seed(self, resumed: bool) -> None:
        if self._seeding_done:
            return
        try:
            self._seeded = await seed(
                self.spider,
                self._push,
                self.stats,
                resumed=resumed,
                stopping=lambda: self._stopping.requested,
                more=self.more_start_requests,
            )
        except StorageError as exc:
            self._stopping.output_failed(exc)
        finally:
            self._seeding_done = True
            self._wake()

    async def _schedule(self, request: Request) -> None:
        """``crawler.schedule()``: a request from a middleware or an extension, as a start request."""
        await self._push([request])

    async def _push(self, requests: list[Request]) -> None:
        self.stats.count_push(await self.frontier.push(start_requests_to_push(requests, self.stats)))
        self._wake()

    # -- handling one request ---------------------------------------------------------------

    async def _worker(self) -> None:
        queue = self._queue
        stopping = self._stopping
        while True:
            request = await queue.get()
            if request is None:
                return
            holding = True  # the request's slot of ``concurrency``
            outcome: ParseOutcome | None = None
            committed = False
            try:
                outcome = await self._handle(request)
                if outcome is not None:
                    # Fetched and parsed: the slot goes to the next request while this page is
                    # committed: a durable frontier's commit waits for its database, and a slot
                    # held through that wait fetches nothing.
                    holding = False
                    self._in_flight -= 1
                    self._wake()
                    await self.commits.commit(request, outcome)
                    committed = True
                    await self._after_commit(outcome)
            except asyncio.CancelledError:
                self.commits.open_pages.tear(request)
                with contextlib.suppress(Exception):
                    await self.frontier.release([request])
                raise
            except StorageError as exc:
                self._stopping.output_failed(exc)
            except Exception:
                # A bug of ours must not hang the crawl: count it, give the request up (unless
                # it was committed already: the frontier is done with it).
                log.exception("internal error while handling %s", request.url)
                self.stats.fail_page("internal_error")
                if not committed:
                    await self._give_up(request, outcome)
            finally:
                self.commits.open_pages.close(request)  # committed or given up (not if torn above)
                if holding:
                    self._in_flight -= 1
                self._wake()
                if stopping.counting:
                    stopping.check_counts()

    async def _handle(self, request: Request) -> ParseOutcome | None:
        """Fetch and parse a request; the outcome to commit, or None if it was dealt with."""
        fetched = await self.downloader.download(request)
        if isinstance(fetched, Verdict):
            return await self.verdicts.act_on(request, fetched)
        task = ParseTask(
            request,
            fetched.url,
            fetched.status,
            fetched.headers,
            fetched.body,
            fetched.content_encoding,
            None,
            fetched.challenge,
        )
        try:
            outcome = await self._parse(request, task)
        finally:
            if fetched.hold is not None:
                fetched.hold.release()  # the body's bytes leave the in-flight budget
        if outcome.blocked is not None:  # a challenge page, found by the parser worker
            blocked = self.downloader.blocked_in_parser(request, fetched, outcome.blocked)
            if blocked is not None:
                return await self.verdicts.act_on(request, blocked)
        self.stats.parsed += 1
        return outcome

    async def _parse(self, request: Request, task: ParseTask) -> ParseOutcome:
        """``task`` through the parser pool; parts of its output are taken as they come."""
        return await self.parser.parse(task, functools.partial(self._take_part, request))

    async def _take_part(self, request: Request, part: ParseOutcome) -> None:
        """A part of a page's output, while its callback runs on (see ``CommitStep.take_part``)."""
        try:
            # The feeder may be asleep with free slots and nothing to lease: the links wake it.
            await self.commits.take_part(request, part, on_push=self._wake)
        except StorageError as exc:
            self._stopping.output_failed(exc)

    async def _after_commit(self, outcome: ParseOutcome) -> None:
        if self.exporter.should_flush:
            await self.exporter.flush()
        if outcome.close_reason is not None:
            log.info("spider asked to close: %s", outcome.close_reason)
            self.stop(f"close_spider: {outcome.close_reason}")

    async def _give_up(self, request: Request, outcome: ParseOutcome | None) -> None:
        """After a bug of ours: the request fails, but the links its page yielded reach the frontier.

        A parser worker sends each link once (sentlinks.py): dropped with the page, they would be
        lost for the rest of the crawl. Nothing here may end the worker task that calls it.
        """
        try:
            if outcome is not None and outcome.requests:
                self.stats.count_push(await self.frontier.push(outcome.requests))
            await self.frontier.fail(request, "internal_error")
        except StorageError as exc:
            self._stopping.output_failed(exc)
        except Exception:
            log.exception("internal error while giving %s up", request.url)

    async def _commit_periodically(self) -> None:
        try:
            await self.commits.checkpoint_periodically(
                self.settings.commit_interval, resumed=self._resumed, seeded=lambda: self._seeded
            )
        except StorageError as exc:
            self._stopping.output_failed(exc)


async def _abandon_start(starting: asyncio.Task[None], parser: Parser) -> None:
    """Stop a parser pool whose start may be under way (the crawl ends before it begins).

    The start is cancelled rather than waited for: a worker importing a heavy spider can take
    seconds, and the pool's cancelled launches kill and reap their processes.
    """
    starting.cancel()
    await asyncio.gather(starting, return_exceptions=True)
    await parser.close()
