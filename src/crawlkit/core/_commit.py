"""The commit step: a parsed page's items to the exporter, its request acked with its links.

Pages that finish while a commit is under way are committed together, with one
``frontier.ack_many()``. A checkpoint makes the output durable up to an offset, then records that
offset in the frontier, with ``spider.state`` and the cookie jars: the commit lock is held by
each commit and by each checkpoint, so that a checkpoint's offset covers exactly the items of the
acks it makes durable.

What rides with ``spider.state`` in the checkpoint's state document (cookie jars, sessions, the
feeds' offsets) is told in ``_statedoc.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from ..errors import ParseError, ParserCrashed, PipelineError
from ..exporters import Exporter, PipelineChain
from ..frontier import Frontier, PushResult
from ..http import Request
from ..parsing import ParseOutcome, item_to_json
from ..spider import Spider
from ._parts import OpenPages, count_outcome
from ._statedoc import CrawlState, dump_state
from ._stats import CrawlStats

if TYPE_CHECKING:
    from ._hooks import CrawlSignals

__all__ = ["CommitStep"]

log = logging.getLogger("crawlkit.engine")


CookieJars = Callable[[], list[tuple[Any, list[dict[str, Any]]]]]


class ItemKeeper(Protocol):
    """Told each committed page's items (the job's page store keeps them: ``fetch.HttpCache``)."""

    def items_part(self, request: Request, lines: list[bytes]) -> None: ...

    def items_committed(self, request: Request, lines: list[bytes], failed: bool) -> None: ...


_FULL_TRACEBACKS = 3  # of each kind of callback error; then one line a page


@dataclasses.dataclass(slots=True, eq=False)
class _PendingCommit:
    """A parsed page waiting to be committed: its items, and its request to ack with its links."""

    request: Request
    lines: list[bytes]
    requests: list[Request]
    done: bool = False
    error: Exception | None = None
    # Set when the page waits for another task to commit it: resolved once it is committed (or
    # its committer gave up, and someone else has to).
    waiter: asyncio.Future[None] | None = None


class CommitStep:
    """Commits the engine's parsed pages, and makes them durable at each checkpoint."""

    def __init__(
        self,
        frontier: Frontier,
        exporter: Exporter,
        pipelines: PipelineChain,
        spider: Spider,
        stats: CrawlStats,
        *,
        signals: CrawlSignals | None = None,
        cookie_jars: CookieJars | None = None,
        sessions: Callable[[], dict[str, Any] | None] | None = None,
        feed_offsets: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._frontier = frontier
        self._signals = signals
        self._cookie_jars = cookie_jars
        self._sessions = sessions
        self._feed_offsets = feed_offsets
        self._exporter = exporter
        self._pipelines = pipelines
        self._spider = spider
        self._stats = stats
        # Held by each commit (items out, request acked) and by each checkpoint, so that a
        # checkpoint's output offset covers exactly the items of the acks it makes durable.
        self._lock = asyncio.Lock()
        self._pending: list[_PendingCommit] = []  # pages waiting to be committed
        # Whether a task has taken on committing ``_pending`` and has not taken the list yet:
        # pages that come meanwhile wait for it instead of queueing on the lock one by one.
        self._committer = False
        # Tasks between "items into the exporter" and "request acked": a forced stop lets them
        # finish, since cutting one in half would write items whose request is fetched again.
        self._committing: set[asyncio.Task[Any]] = set()
        # Awaited before each checkpoint commits (the page store's writes, ``core/_recrawl.py``):
        # what a checkpoint records as done has its records in the job's cache too.
        self.before_checkpoint: Callable[[], Awaitable[None]] | None = None
        # Told each page's items before it is acked; what it queues is awaited by the checkpoint
        # (before_checkpoint) that records the ack.
        self.item_keeper: ItemKeeper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._state_warned = False
        self._tracebacks: dict[str, int] = {}  # callback errors logged, by kind
        self._committed = asyncio.Event()  # a request was acked: there is a checkpoint to make
        self.open_pages = OpenPages()  # pages with items written in parts, not acked yet

    def add_before_checkpoint(self, hook: Callable[[], Awaitable[None]]) -> None:
        """One more step awaited before each checkpoint commits, after those set before it."""
        before = self.before_checkpoint

        async def both() -> None:
            if before is not None:
                await before()
            await hook()

        self.before_checkpoint = both

    @property
    def waiting(self) -> bool:
        """Whether pages wait for the commit lock (their links are about to reach the frontier)."""
        return bool(self._pending)

    def is_committing(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` is inside a commit, which a forced stop must not cut in half."""
        return task in self._committing

    async def commit(self, request: Request, outcome: ParseOutcome) -> None:
        """Count the page's outcome, then write its items and ack its request with its links."""
        stats = self._stats
        error = outcome.error
        if error is not None:
            stats.fail_page(error.reason, request.url)  # callback_error, parser_crashed, parse_timeout
            self._log_error(error)
        count_outcome(stats, outcome)
        lines = outcome.items if outcome.items_are_json else await self._through_pipelines(outcome.items)
        if lines and self._signals is not None and self._signals.has("item_scraped"):
            await self._items_scraped(lines)
        if self.item_keeper is not None:
            self.item_keeper.items_committed(request, lines, error is not None)
        # Kept: in Python 3.11 each get_running_loop() (current_task() too) is a getpid() syscall.
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self._committing.add(task)
        try:
            await self._commit_together(_PendingCommit(request, lines, outcome.requests), loop)
        finally:
            self._committing.discard(task)

    def _log_error(self, error: ParseError) -> None:
        """Log a failed page: a kind's first tracebacks in full, then one line a page.

        A bug in a callback fails every page it meets: hundreds of identical tracebacks bury the
        log. Kinds are counted apart (the callback and the exception's type), so that a second
        bug still shows its first tracebacks; the summary counts them all.
        """
        if error.kind:
            self._stats.callback_errors[error.kind] += 1
        if isinstance(error, ParserCrashed) or not error.worker_traceback:
            log.error("%s: %s", error.url, error)
            return
        key = error.kind or type(error).__name__
        seen = self._tracebacks[key] = self._tracebacks.get(key, 0) + 1
        if seen <= _FULL_TRACEBACKS:
            log.error("%s: %s\n%s", error.url, error, error.worker_traceback.rstrip())
            return
        first_line = str(error).split("\n", 1)[0]
        if seen == _FULL_TRACEBACKS + 1:
            log.error(
                "%s: %s (further tracebacks of this error are shortened; the summary counts them)",
                error.url,
                first_line,
            )
        else:
            log.error("%s: %s", error.url, first_line)

    async def take_part(self, request: Request, part: ParseOutcome, *, on_push: Callable[[], None]) -> None:
        """A part of a page's output, while its callback runs on: links queued, items written.

        The page is acked with its last part, as usual; ``_parts.py`` tells why that is safe.
        ``on_push`` is called once the part's links are in the frontier.
        """
        count_outcome(self._stats, part)
        if part.requests:
            self._stats.count_push(await self._frontier.push(part.requests))
            on_push()
        lines = part.items if part.items_are_json else await self._through_pipelines(part.items)
        if lines and self._signals is not None and self._signals.has("item_scraped"):
            await self._items_scraped(lines)
        if lines and self.item_keeper is not None:
            self.item_keeper.items_part(request, lines)
        if lines:
            await self.open_pages.open(request)
            self._exporter.add(lines)
            self._stats.items += len(lines)
            if self._exporter.should_flush:
                await self._exporter.flush()

    async def ack_unparsed(self, request: Request, new_requests: Sequence[Request] = ()) -> PushResult:
        """Ack a request that ends with no callback (robots.txt, a binary file, a request a
        middleware replaced: ``new_requests``, queued with the ack)."""
        async with self._lock:
            pushed = await self._frontier.ack(request, new_requests)
        self._committed.set()
        return pushed

    async def first_commit(self) -> None:
        """Return once a request has been acked since the crawl began."""
        await self._committed.wait()

    async def checkpoint_periodically(
        self, interval: float, *, resumed: bool, seeded: Callable[[], bool]
    ) -> None:
        """A checkpoint every ``interval`` seconds, until cancelled; a ``StorageError`` ends it.

        The first does not wait a whole interval: a resumed job records its resume at once (the
        output cut back, the leases handed back), a fresh one as soon as its first page is
        committed.
        """
        if not resumed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.first_commit()
        while True:
            # Shielded: cancelling this task at shutdown must not cut a checkpoint in half.
            await asyncio.shield(self.checkpoint(seeded()))
            await asyncio.sleep(interval)

    async def checkpoint(self, seeded: bool) -> None:
        """Output made durable up to an offset, then the frontier with it and ``spider.state``.

        ``seeded``: whether ``start_requests()`` was exhausted (a resume does not run it again).
        """
        async with self.open_pages.quiet() as allowed:
            if not allowed:
                log.warning("a page was cut off while its output was written: no checkpoint after it")
                return
            async with self._lock:
                await self._commit_pending()
                offset = await self._exporter.flush(sync=self._frontier.durable)
                if self.before_checkpoint is not None:
                    await self.before_checkpoint()
                await self._frontier.checkpoint(offset, self._state_json(), seeded)

    async def _commit_together(self, page: _PendingCommit, loop: asyncio.AbstractEventLoop) -> None:
        """Commit a page along with every page that comes while it waits for the commit lock.

        The first page to find no committer becomes one: it takes the lock and commits them all,
        with one ``ack_many()`` (a durable frontier's ack is a trip to its database thread, and
        one trip per page under the lock would queue every other page behind those trips). The
        others wait on a future of their own, not on the lock: queued on the lock, each would
        take it in turn only to find its page committed, one loop turn after the other.
        """
        self._pending.append(page)
        try:
            while not page.done:
                if not self._committer:
                    await self._commit_as_committer(page)
                    break
                waiter = page.waiter = loop.create_future()
                await waiter
        except asyncio.CancelledError:
            if not page.done and page in self._pending:
                self._pending.remove(page)  # not committed: the request goes back
            raise
        if page.error is not None:
            raise page.error

    async def _commit_as_committer(self, page: _PendingCommit) -> None:
        self._committer = True
        try:
            async with self._lock:
                if not page.done:
                    # Parse results come back in batches, and the pages of a batch wake together:
                    # one turn of the loop lets them all join this commit.
                    await asyncio.sleep(0)
                if not page.done:
                    await self._commit_pending()
        finally:
            if self._committer and not page.done:
                # Cancelled before taking the list: the pages that waited for this task must not
                # wait for ever; they wake, and the first of them commits.
                self._committer = False
                _wake(self._pending)

    async def _commit_pending(self) -> None:
        """Under the commit lock: the waiting pages' items to the exporter, their requests acked."""
        pages, self._pending = self._pending, []
        self._committer = False  # pages that come from now on wait for a commit of their own
        if not pages:
            return
        try:
            for page in pages:
                if page.lines:
                    self._exporter.add(page.lines)
                    self._stats.items += len(page.lines)
            self._stats.count_push(await self._frontier.ack_many([(p.request, p.requests) for p in pages]))
            self._committed.set()
        except Exception as exc:
            for page in pages:
                page.error = exc
            raise
        finally:
            for page in pages:
                page.done = True
            _wake(pages)

    async def _through_pipelines(self, items: list[Any]) -> list[bytes]:
        lines = []
        for item in items:
            try:
                processed = await self._pipelines.process(item) if self._pipelines else item
            except PipelineError as exc:
                log.error("%s", exc, exc_info=exc.__cause__)
                self._stats.fail_item("pipeline_error")
                continue
            if processed is None:
                self._stats.items_dropped += 1
                if self._signals is not None and self._signals.has("item_dropped"):
                    await self._signals.send("item_dropped", item, "dropped")
                continue
            try:
                lines.append(item_to_json(processed))
            except TypeError as exc:
                log.error("item cannot be written as JSON: %s: %r", exc, processed)
                self._stats.fail_item("item_not_json")
        return lines

    async def _items_scraped(self, lines: list[bytes]) -> None:
        """``item_scraped`` for each item, as it is written (parsed back from its JSON line)."""
        assert self._signals is not None
        for line in lines:
            await self._signals.send("item_scraped", orjson.loads(line))

    def _state_json(self) -> bytes:
        document, why_left_out = dump_state(
            CrawlState(
                spider=self._spider.state,
                cookie_jars=self._cookie_jars() if self._cookie_jars is not None else None,
                sessions=self._sessions() if self._sessions is not None else None,
                # Read under the commit lock, after the flush of every feed: see exporters/_feeds.py.
                feed_offsets=self._feed_offsets() if self._feed_offsets is not None else None,
            )
        )
        if why_left_out is not None and not self._state_warned:
            log.error(
                "spider.state cannot be saved as JSON (%s); it will not survive a restart", why_left_out
            )
            self._state_warned = True
        return document


def _wake(pages: list[_PendingCommit]) -> None:
    """Wake the pages that wait for another task to commit them."""
    for page in pages:
        waiter = page.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
