"""The SQLite frontier: durable, resumable, and flat in memory however large the crawl grows.

The database (one file, WAL mode) has three tables:

* ``meta``: one row: schema version, spider name, creation time, and what the last checkpoint
  recorded (output offset, spider state, seeded flag, and the seen/done/failed counts).
* ``requests``: every request ever queued. ``state`` is PENDING (0), LEASED (1), DONE (2) or
  FAILED (3). The unique ``fingerprint`` (NULL for ``dont_filter`` requests) *is* the seen set.
  ``not_before`` is a wall-clock time (``time.time()``) before which a retried request may not
  start, so that it means the same after a restart. ``data`` is the pickled request; DONE rows
  drop it. LEASED means "claimed by the running process": handed out, or loaded in memory ready
  to be; ``open()`` makes every LEASED row PENDING again.
* ``hosts``: per host ever seen, whether the running process has it *active* (in memory) and,
  for an inactive host, how many PENDING rows it has, an upper bound of their priorities and a
  lower bound of their ``not_before`` (``wake``): inactive hosts with due pending rows are the
  candidates to activate, best first. A host's count is recomputed when it becomes inactive.

What is in memory, and its bounds: at most ``max_hosts`` active hosts (plus hosts of leased
requests), each with a heap of at most about ``host_window`` loaded requests; the leased requests;
retries waiting for their time (at most ``max_delayed``, beyond that they wait in the database);
a cache of recent fingerprints (at most ``fingerprint_cache``) that spares a trip to the database
for links seen again soon; SQLite's page cache (``cache_mib``). Nothing grows with the number of
pending requests or of hosts ever seen. Idle hosts leave memory once their delay has run out.

Order within a host is exact: for each active host, ``more`` says whether the database may still
hold due pending requests of it, and ``bound`` is a rank (``(-priority, turn, id)``; turns.py
tells how turns are handed out) that every such request ranks after. A host is served from memory
only while its best loaded request ranks at or before that bound; otherwise it is refilled first.
Across hosts, ready hosts are served best priority first, as in the memory frontier; hosts are
activated in the order of their best pending priority.

Threads and durability: one connection, used by one dedicated thread, keeps one write transaction
open from checkpoint to checkpoint. Every change goes into the database as it happens (so memory
stays flat), but becomes durable only at ``checkpoint()``, which commits with ``synchronous=FULL``;
``close()`` and a crash discard the uncommitted tail. Changes that need no answer (acks, fails,
retries) are buffered and run at the start of the next trip to the database thread, so a page costs
at most one thread hop: the one that inserts its new links, skipped when the fingerprint cache shows
every link to be a duplicate. That hop holds no slot of the host (``fetched()`` freed it, or the ack
does before its links go in), and ``lease()`` serves ready hosts from memory while a trip is under
way (only what needs the database waits for the lock). While the cache holds every fingerprint of
the database (a job that starts empty, or resumes with few enough to load them all at open; until
the cache first drops a generation), the database can refuse none of the links the cache let
through: the insert is sent and not waited for, at most ``MAX_INSERTS_BEHIND`` at a time. Jobs run
in order and a failed job fails every job after it, so a checkpoint never commits a transaction that
lost rows. The database thread works in few, large statements (multi-row inserts, ``json_each`` id
lists, ``group_concat`` results), because each SQLite step hands the GIL back and forth with a busy
event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import pickle
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ...errors import FrontierError
from ...http import Request, host_of, origin_of
from .._base import (
    Checkpoint,
    FrontierStats,
    HostLimits,
    HostPolicy,
    PushResult,
    ack_each,
    host_policy_functions,
)
from .._turns import Turns
from ._dbthread import DatabaseThread, Job, wait_for
from ._fingerprints import FingerprintCache
from ._store import (
    DEACTIVATE,
    FAIL,
    HOST_ADD,
    LEASED,
    MAX_WINDOW,
    PENDING,
    PICKLE_PROTOCOL,
    RETRY,
    SCHEMA_VERSION,
    UNCLAIM,
    Entry,
    Maintained,
    Opened,
    Rank,
    Row,
    Store,
    Write,
    write_failed,
)

__all__ = ["SCHEMA_VERSION", "SqliteFrontier"]

T = TypeVar("T")

# Inserts sent to the database thread and not waited for, at most.
MAX_INSERTS_BEHIND = 64


# -- hosts of URLs ------------------------------------------------------------------------------------

_host_cache: dict[str, str] = {}
_HOST_CACHE_SIZE = 50_000


def _host(url: str) -> str:
    """``host_of(url)``, cached by the URL's origin: parsing every URL is the slow part."""
    authority = origin_of(url)
    host = _host_cache.get(authority)
    if host is None:
        host = host_of(url)
        if len(_host_cache) >= _HOST_CACHE_SIZE:
            _host_cache.clear()
        _host_cache[authority] = host
    return host


# -- the event-loop side -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Host:
    limits: HostLimits
    queue: list[Entry] = field(default_factory=list)
    in_flight: int = 0  # leased requests still being fetched: what the host's slots count
    leased: int = 0  # leased requests not given back yet (fetched or not): never retired before 0
    next_start: float = 0.0  # monotonic time before which no request may start (delay)
    scheduled: bool = False  # whether an entry for this host sits in the ready or timed heap
    more: bool = False  # whether the database may hold due pending requests of this host
    # When ``more``: each of those ranks after this (ranks are (-priority, turn, id)).
    bound: Rank = (0, 0, 0)


class SqliteFrontier:
    """The durable frontier, in one SQLite file; the module docstring tells the design.

    ``clock`` (monotonic) times per-host delays and in-process retries; ``wall_clock`` stamps
    retry times in the database, where they must mean the same after a restart. ``max_hosts``
    and ``host_window`` bound what is held in memory: about ``max_hosts * host_window`` requests
    (a host allowed more than ``host_window / 2`` requests in flight gets twice that, up to 1,024).
    ``fingerprint_cache`` recent fingerprints (about 76 bytes each, 10 MB in all) spare trips to
    the database for links seen before: with 32,768, a 50,000-page crawl gave its database thread
    1.9 times the work (4.5 s against 2.4 s).
    """

    durable = True

    def __init__(
        self,
        path: Path,
        host_limits: HostPolicy | Callable[[str], HostLimits],
        depth_limit: int = 0,
        clock: Callable[[], float] = time.monotonic,
        spider_name: str = "",
        *,
        wall_clock: Callable[[], float] = time.time,
        max_hosts: int = 1024,
        host_window: int = 16,
        max_delayed: int = 10_000,
        fingerprint_cache: int = 131_072,
        cache_mib: int = 16,
    ) -> None:
        if max_hosts < 1 or host_window < 2:
            raise ValueError("max_hosts must be at least 1 and host_window at least 2")
        self.path = Path(path)
        self._limits_for, self._delay_for = host_policy_functions(host_limits)
        self._depth_limit = depth_limit
        self._clock = clock
        self._wall = wall_clock
        self._max_hosts = max_hosts
        self._window = host_window
        # A host is refilled when its loaded requests fall below this (or its concurrency).
        self._low = max(1, host_window // 4)
        self._initial = max(1, host_window // 2)  # requests loaded when a host is activated
        self._max_delayed = max_delayed
        self._fingerprints = FingerprintCache(fingerprint_cache)
        self._store = Store(self.path, spider_name, cache_mib * 1024)
        self._worker: DatabaseThread | None = None
        self._lock = asyncio.Lock()  # one trip to the database at a time
        self._closed = False
        self._failure: BaseException | None = None
        self._writes: list[Write] = []
        self._done_ids: list[int] = []
        self._seq = itertools.count()
        self._turns = Turns()  # restored from the last checkpoint at open()
        self._next_id = 1
        self._hosts: dict[str, _Host] = {}
        self._ready: list[tuple[int, int, str]] = []  # (-priority, seq, host)
        self._timed: list[tuple[float, int, str]] = []  # (ready-at, seq, host)
        self._delayed: list[tuple[float, int, int, Request]] = []  # retries: (not-before, id, turn, request)
        self._cooling: list[tuple[float, int, str]] = []  # idle hosts whose delay runs: (until, seq, host)
        self._refill: set[str] = set()  # active hosts to refill (before they can be served, if empty)
        self._candidates = False  # whether inactive hosts may have due pending requests
        self._next_due: float | None = None  # wall time when a not-yet-due pending row comes due
        self._due_until = 0.0  # wall time up to which rows that came due have been looked at
        self._leases: dict[Request, tuple[int, str, int]] = {}  # leased request -> (id, host, turn)
        self._fetched: set[Request] = set()  # leases whose fetch is over: their slot is free
        self._behind: deque[Job] = deque()  # inserts sent and not waited for, oldest first
        self._inserting = 0
        self._pending = 0
        self._leased = 0
        self._seen = 0
        self._done = 0
        self._failed = 0

    # -- plumbing -------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._worker is None:
            raise RuntimeError("the frontier is closed" if self._closed else "open() the frontier first")
        if self._worker.failure is not None:
            self._failure = self._db_failure(self._worker.failure)
            raise self._failure

    def _send(self, fn: Callable[..., Any] | None, *args: Any, wait: bool = True) -> Job:
        """Send the buffered writes, then ``fn``, to the database thread."""
        if self._worker is None:  # closed while this call waited for the lock
            raise RuntimeError("the frontier is closed")
        writes, self._writes = self._writes, []
        done, self._done_ids = self._done_ids, []
        return self._worker.send(self._store.call, writes, done, fn, *args, wait=wait)

    async def _call(self, fn: Callable[..., T], *args: Any, post: Callable[[T], None] | None = None) -> T:
        """Run the buffered writes and ``fn`` in the database thread, then ``post`` the result.

        Cancelling the caller does not cancel the database work: this waits for it and runs
        ``post`` anyway, so that memory and database never disagree, then re-raises.
        """
        job = self._send(fn, *args)
        cancelled = await wait_for(job)
        if job.error is not None:
            error = self._db_failure(job.error)
            self._failure = self._failure or error
            raise error
        result: T = job.result
        if post is not None:
            post(result)
        if cancelled:
            raise asyncio.CancelledError
        return result

    def _db_failure(self, exc: BaseException) -> BaseException:
        """A database error (disk full, file too large, I/O error) as a clean FrontierError."""
        if not isinstance(exc, sqlite3.DatabaseError) or isinstance(
            exc, sqlite3.ProgrammingError | sqlite3.IntegrityError
        ):
            return exc  # a bug of ours, not the disk's
        error = FrontierError(write_failed(self.path, exc))
        error.__cause__ = exc
        return error

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        self._writes.append((sql, params))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self._writes) + len(self._done_ids) >= 20_000 and self._worker is not None:
            # A long stretch without a trip to the database: run the writes now, unawaited.
            self._send(None, wait=False)

    # -- opening, checkpoints, closing ----------------------------------------------------------

    async def open(self) -> Checkpoint | None:
        if self._worker is not None or self._closed:
            raise RuntimeError("a SqliteFrontier can be opened only once")
        worker = DatabaseThread()
        wall = self._wall()
        job = worker.send(self._store.open, wall, self._fingerprints.generation)
        cancelled = await wait_for(job)
        if job.error is not None or cancelled:
            worker.send(self._store.close, wait=False, always=True)
            worker.stop()
            if job.error is not None:
                raise job.error
            raise asyncio.CancelledError
        opened: Opened = job.result
        self._worker = worker
        self._pending = opened.pending
        self._seen = opened.seen
        self._done = opened.done
        self._failed = opened.failed
        self._next_id = opened.next_id
        self._next_due = opened.next_due
        self._turns = Turns.loads(opened.turns)
        if opened.fingerprints is not None and self._fingerprints.generation > 0:
            # Few enough to cache them all: a resumed job, too, knows every fingerprint.
            self._fingerprints.load(opened.fingerprints)
        self._due_until = wall
        self._candidates = opened.pending > 0
        return opened.checkpoint

    async def checkpoint(self, output_offset: int, state: bytes, seeded: bool) -> None:
        self._check()
        async with self._lock:
            counters = (self._seen, self._done, self._failed)
            turns = self._turns.dumps()
            wall = self._wall()
            await self._call(self._store.checkpoint, output_offset, state, seeded, counters, turns, wall)

    async def close(self) -> None:
        """Close the database. What the last checkpoint did not commit is discarded."""
        if self._worker is None:
            self._closed = True
            return
        async with self._lock:
            worker, self._worker = self._worker, None
            self._closed = True
            self._writes = []
            self._done_ids = []
            try:
                job = worker.send(self._store.close, always=True)
                cancelled = await wait_for(job)
            finally:
                worker.stop()
            for table in (self._hosts, self._leases, self._fetched, self._fingerprints):
                table.clear()
            for heap in (self._ready, self._timed, self._delayed, self._cooling):
                heap.clear()
            self._refill.clear()
            self._behind.clear()
            if job.error is not None:
                raise job.error
            if cancelled:
                raise asyncio.CancelledError

    # -- queueing -------------------------------------------------------------------------------

    @staticmethod
    def _ahead(host: _Host, rank: Rank) -> bool:
        """Whether a request ranks before every due request of ``host`` left in the database."""
        return not host.more or rank <= host.bound

    @staticmethod
    def _lower_bound(host: _Host, neg_priority: int, turn: int, rid: int) -> bool:
        """Note that the database holds a due request of ``host`` ranked (neg_priority, turn, rid).

        Returns whether that changed anything.
        """
        bound = (neg_priority, turn, rid - 1)
        if not host.more:
            host.more = True
        elif bound >= host.bound:
            return False
        host.bound = bound
        return True

    def _window_of(self, host: _Host) -> int:
        """How many requests of a host are loaded at most: ``host_window``, or more for a busy host.

        At least twice the host's concurrency, so that it does not run dry between two refills:
        a one-host crawl with 64 requests in flight and a window of 16 went to the database for
        every dozen pages.
        """
        return max(self._window, min(2 * host.limits.concurrency, MAX_WINDOW))

    def _schedule(self, name: str, host: _Host) -> None:
        """Put a host in the ready or timed heap if it can serve; mark it for a refill if due."""
        queue = host.queue
        servable = bool(queue) and self._ahead(host, queue[0][:3])
        low = max(self._low, self._window_of(host) // 4)
        if host.more and (len(queue) < min(low, host.limits.concurrency) or not servable):
            self._refill.add(name)
        if host.scheduled or not servable or host.in_flight >= host.limits.concurrency:
            return
        if host.next_start > self._clock():
            heapq.heappush(self._timed, (host.next_start, next(self._seq), name))
        else:
            heapq.heappush(self._ready, (queue[0][0], next(self._seq), name))
        host.scheduled = True

    def _unclaim(self, name: str, rid: int, priority: int) -> None:
        """Hand a loaded request back to the database, as PENDING and due now."""
        self._write(UNCLAIM, (0.0, rid))
        if name not in self._hosts:
            self._write(HOST_ADD, (name, 1, priority, 0.0))

    def _trim(self, name: str, host: _Host) -> None:
        """Hand the worst loaded requests of a host back to the database, down to the window.

        Only with the lock held: a refill in flight must not miss what goes back.
        """
        queue = host.queue
        window = self._window_of(host)
        if len(queue) <= window:
            return
        queue.sort()  # a sorted list is a heap
        evicted = queue[window:]
        del queue[window:]
        for neg_priority, _, rid, _ in evicted:
            self._unclaim(name, rid, -neg_priority)
        worst = evicted[0]
        self._lower_bound(host, worst[0], worst[1], worst[2])

    def _retire(self, name: str, host: _Host) -> None:
        """Forget an idle host: memory grows with the hosts in play, not with every host seen.

        A host whose delay still runs is forgotten once it has run out (see ``_promote``).
        """
        if host.queue or host.leased or host.more or name in self._refill:
            return
        if host.next_start > self._clock():
            heapq.heappush(self._cooling, (host.next_start, next(self._seq), name))
            return
        del self._hosts[name]
        self._write(DEACTIVATE, (name,))

    def _rows(self, requests: Iterable[Request], result: PushResult) -> tuple[list[Row], bool, set[str]]:
        """Drop requests over the depth limit or known to be duplicates; number the rest.

        A new request of an active host that ranks before everything of it in the database,
        and fits in its window, is loaded at once (inserted as LEASED); otherwise it is
        inserted as PENDING and the host's bound notes it. Returns the rows, whether some are
        LEASED, and the active hosts whose bound changed.
        """
        limit = self._depth_limit
        known_or_add = self._fingerprints.known_or_add
        hosts = self._hosts
        ahead = self._ahead
        lower_bound = self._lower_bound
        window_of = self._window_of
        next_turn = self._turns.next
        dumps = pickle.dumps
        rows: list[Row] = []
        claimed = False
        touched: set[str] = set()
        planned: dict[str, int] = {}
        rid = self._next_id
        for request in requests:
            if limit and request.depth > limit:
                result.over_depth += 1
                continue
            fp: bytes | None = None
            if not request.dont_filter:
                fp = request.fingerprint
                if known_or_add(fp):
                    result.duplicates += 1
                    continue
            name = _host(request.url)
            state = PENDING
            turn = next_turn(request.callback)
            host = hosts.get(name)
            if host is not None:
                neg_priority = -request.priority
                loaded = planned.get(name, 0)
                if len(host.queue) + loaded < window_of(host) and ahead(host, (neg_priority, turn, rid)):
                    state = LEASED
                    planned[name] = loaded + 1
                    claimed = True
                elif lower_bound(host, neg_priority, turn, rid):
                    touched.add(name)
            data = dumps(request, PICKLE_PROTOCOL)
            rows.append((rid, fp, name, request.priority, turn, state, request, data))
            rid += 1
        self._next_id = rid
        return rows, claimed, touched

    async def _insert(self, rows: list[Row], claimed: bool, touched: set[str], result: PushResult) -> None:
        """Insert rows (the caller holds the lock) and load the ones inserted as LEASED."""
        hosts = self._hosts
        count_hosts = any(row[2] not in hosts for row in rows)  # new rows of inactive hosts

        def post(outcome: tuple[int, set[int]]) -> None:
            self._inserting -= 1
            inserted, new_claimed = outcome
            for rid, _, name, priority, turn, state, request, _ in rows:
                host = hosts.get(name)
                if state == PENDING:
                    if host is None:  # inactive, or retired while the rows went in
                        self._candidates = True
                    continue
                if rid not in new_claimed:
                    continue
                if host is None:  # retired while the rows went in
                    self._unclaim(name, rid, priority)
                    self._candidates = True
                else:
                    heapq.heappush(host.queue, (-priority, turn, rid, request))
                    touched.add(name)
            for name in touched:
                host = hosts.get(name)
                if host is not None:
                    self._schedule(name, host)
            # A fingerprint that turned out to be known stays cached: it is in the database.
            result.queued += inserted
            result.duplicates += len(rows) - inserted
            self._pending += inserted
            self._seen += inserted

        self._inserting += 1
        behind = self._behind
        while behind and behind[0].done:
            behind.popleft()
        if self._fingerprints.complete and len(behind) < MAX_INSERTS_BEHIND:
            # Every row goes in, and what the crawl needs of the outcome is known now. The
            # database thread runs jobs in order, so the rows are in before anything sent later
            # (a checkpoint included); a failure is raised by the next call, as for the buffered
            # writes. Past MAX_INSERTS_BEHIND unfinished inserts, the next one is waited for: a slow
            # disk must slow the crawl down, not pile up rows in memory.
            behind.append(self._send(self._store.insert_new, rows, count_hosts, wait=False))
            post((len(rows), {row[0] for row in rows if row[5] == LEASED}))
            return
        await self._call(self._store.insert, rows, claimed, count_hosts, post=post)

    async def push(self, requests: Sequence[Request]) -> PushResult:
        self._check()
        result = PushResult()
        if not requests:
            return result
        async with self._lock:
            rows, claimed, touched = self._rows(requests, result)
            if rows:
                await self._insert(rows, claimed, touched, result)
        return result

    # -- leasing --------------------------------------------------------------------------------

    def _promote(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            _, rid, turn, request = heapq.heappop(self._delayed)
            name = _host(request.url)
            host = self._hosts.get(name)
            if host is None:  # the host is not in play: the request waits in the database
                self._unclaim(name, rid, request.priority)
                self._candidates = True
                continue
            heapq.heappush(host.queue, (-request.priority, turn, rid, request))
            self._trim(name, host)
            self._schedule(name, host)
        while self._timed and self._timed[0][0] <= now:
            _, _, name = heapq.heappop(self._timed)
            timed = self._hosts.get(name)
            if timed is not None:
                timed.scheduled = False
                self._schedule(name, timed)
        while self._cooling and self._cooling[0][0] <= now:
            _, _, name = heapq.heappop(self._cooling)
            idle = self._hosts.get(name)
            if idle is not None:
                self._retire(name, idle)

    def _maintenance_due(self, wall: float) -> bool:
        return bool(
            self._refill
            or (self._candidates and len(self._hosts) < self._max_hosts)
            or (self._next_due is not None and wall >= self._next_due)
        )

    async def _maintain(self, wall: float) -> None:
        """One trip to the database: refill hosts running low, activate hosts, see retries due."""
        refills = []
        for name in itertools.islice(self._refill, 256):
            host = self._hosts[name]
            refills.append((name, max(self._window_of(host) - len(host.queue), self._low)))
        came_due = None
        if self._next_due is not None and wall >= self._next_due:
            came_due = (self._due_until, wall)
        activate = 0
        if self._candidates or came_due is not None:  # rows that came due may be of inactive hosts
            activate = min(self._max_hosts - len(self._hosts), 256)

        def post(out: Maintained) -> None:
            for name, limit, entries in out.refilled:
                self._refill.discard(name)
                host = self._hosts[name]
                self._loaded(name, host, entries, limit)
                self._schedule(name, host)
                self._retire(name, host)
            for name, entries in out.activated:
                fresh = self._hosts.get(name)
                if fresh is None:
                    fresh = self._hosts[name] = _Host(limits=self._limits_for(name))
                self._loaded(name, fresh, entries, self._initial)
                self._schedule(name, fresh)
            if activate > 0 and not out.candidates_left:
                self._candidates = False
            if came_due is not None:
                self._due_until = came_due[1]
                self._next_due = out.next_due
                activated = {name for name, _ in out.activated}  # loaded those just now
                for name, priority in out.came_due:
                    active = self._hosts.get(name)
                    if active is None:
                        # Unless the activation just now took every candidate there was.
                        self._candidates = self._candidates or activate == 0 or out.candidates_left
                    elif name not in activated:
                        self._lower_bound(active, -priority, 0, 0)
                        self._schedule(name, active)

        await self._call(self._store.maintain, refills, activate, self._initial, came_due, wall, post=post)

    def _loaded(self, name: str, host: _Host, entries: list[Entry], limit: int) -> None:
        for entry in entries:
            heapq.heappush(host.queue, entry)
        if len(entries) == limit:
            # Everything of this host left in the database ranks after the last one loaded.
            host.more = True
            host.bound = entries[-1][:3]
        else:
            host.more = False
        self._trim(name, host)

    async def lease(self, n: int) -> list[Request]:
        self._check()
        if n <= 0:
            return []
        out: list[Request] = []
        if self._lock.locked():
            # A trip to the database is under way (an ack's new rows going in, say). What is
            # loaded and ready can be served meanwhile: taking it touches memory alone, and the
            # trip's own bookkeeping holds for whatever is taken. The rest waits for the lock.
            self._take_ready(n, out)
            if out:
                return out
        async with self._lock:
            self._promote(self._clock())
            for _ in range(8):  # a few trips at most, for hosts that ran dry while leasing
                wall = self._wall()
                if self._maintenance_due(wall):
                    await self._maintain(wall)
                elif out:
                    break
                before = len(out)
                self._take_ready(n, out)
                if len(out) >= n or len(out) == before:
                    break
        return out

    def _take_ready(self, n: int, out: list[Request]) -> None:
        """Lease from ready hosts, best first, until ``out`` holds ``n`` or none is ready."""
        now = self._clock()
        ready = self._ready
        taken = len(out)
        while len(out) < n and ready:
            _, _, name = heapq.heappop(ready)
            host = self._hosts.get(name)
            if host is None:
                continue
            host.scheduled = False
            queue = host.queue
            if (
                not queue
                or not self._ahead(host, queue[0][:3])
                or host.in_flight >= host.limits.concurrency
                # A cooldown came after it was found ready. The clock is read afresh, as
                # _schedule() reads it: with ``now`` from before the loop, a start time between
                # the two readings would send the host back to the ready heap for ever.
                or host.next_start > self._clock()
            ):
                self._schedule(name, host)
                continue
            _, turn, rid, request = heapq.heappop(queue)
            self._turns.served(turn)
            self._leases[request] = (rid, name, turn)
            out.append(request)
            host.in_flight += 1
            host.leased += 1
            delay = host.limits.delay if self._delay_for is None else self._delay_for(name)
            if delay > 0:
                host.next_start = now + delay
            self._schedule(name, host)
        taken = len(out) - taken
        self._pending -= taken
        self._leased += taken

    # -- giving leases back ---------------------------------------------------------------------

    def _take(self, request: Request, what: str) -> tuple[int, str, bool]:
        """End a lease: its id, its host, and whether it still held a slot of the host."""
        lease = self._leases.pop(request, None)
        if lease is None:
            raise ValueError(f"{what}() of a request that is not leased: {request!r}")
        held = request not in self._fetched
        if not held:
            self._fetched.remove(request)
        return lease[0], lease[1], held

    def fetched(self, request: Request) -> None:
        lease = self._leases.get(request)
        if lease is None or request in self._fetched:
            return
        self._fetched.add(request)
        name = lease[1]
        host = self._hosts.get(name)
        if host is None:  # pragma: no cover - a host with a lease is never retired
            return
        host.in_flight -= 1
        self._schedule(name, host)

    def _end_lease(self, name: str, held: bool) -> None:
        self._free_slot(name, held)
        host = self._hosts.get(name)
        if host is not None:
            self._retire(name, host)

    def _free_slot(self, name: str, held: bool) -> None:
        """A lease ended: its host may start another request (it is not retired here).

        ``held``: whether the lease still held a slot (``fetched()`` frees it earlier).
        """
        self._leased -= 1
        host = self._hosts.get(name)
        if host is None:  # pragma: no cover - a host with a lease is never retired
            return
        host.leased -= 1
        if held:
            host.in_flight -= 1
        self._schedule(name, host)

    async def ack(self, request: Request, new_requests: Sequence[Request]) -> PushResult:
        self._check()
        if new_requests:
            return await self.ack_many([(request, new_requests)])
        rid, name, held = self._take(request, "ack")
        self._done_ids.append(rid)
        self._maybe_flush()
        self._done += 1
        self._end_lease(name, held)
        return PushResult()

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        """Ack several requests with one trip to the database for all their new requests."""
        self._check()
        new_requests = [new for _, news in acks for new in news]
        if not new_requests:
            return await ack_each(self, acks)  # no trip to the database
        result = PushResult()
        async with self._lock:
            names: list[tuple[str, bool]] = []
            try:
                for request, _ in acks:
                    rid, name, held = self._take(request, "ack")
                    self._done_ids.append(rid)
                    self._done += 1
                    names.append((name, held))
                rows, claimed, touched = self._rows(new_requests, result)
            except BaseException:
                for name, held in names:
                    self._end_lease(name, held)
                raise
            # The fetches are over: their hosts may start other requests while the rows go in
            # (lease() serves from memory meanwhile), but none retires before its rows are in.
            for name, held in names:
                self._free_slot(name, held)
            try:
                if rows:
                    await self._insert(rows, claimed, touched, result)
            finally:
                for name, _ in names:
                    host = self._hosts.get(name)
                    if host is not None:
                        self._retire(name, host)
        return result

    async def retry(self, request: Request, delay: float) -> None:
        self._check()
        old, name, held = self._take(request, "retry")
        rid = self._next_id  # a new id and turn: the retry goes behind the requests of its callback
        self._next_id += 1
        turn = self._turns.next(request.callback)
        data = pickle.dumps(request, PICKLE_PROTOCOL)  # with its new attempt count
        delay = max(delay, 0.0)
        self._pending += 1
        host = self._hosts.get(name)
        if delay == 0 and host is not None:
            self._write(RETRY, (rid, turn, 0.0, data, LEASED, old))
            # Over the window for a while, maybe: trimming here could race a refill in flight.
            heapq.heappush(host.queue, (-request.priority, turn, rid, request))
        elif len(self._delayed) < self._max_delayed:
            self._write(RETRY, (rid, turn, self._wall() + delay, data, LEASED, old))
            heapq.heappush(self._delayed, (self._clock() + delay, rid, turn, request))
        else:  # too many retries waiting in memory: this one waits in the database
            due = self._wall() + delay  # its host is active: counted when it retires
            self._write(RETRY, (rid, turn, due, data, PENDING, old))
            self._next_due = due if self._next_due is None else min(self._next_due, due)
        self._end_lease(name, held)

    async def fail(self, request: Request, reason: str) -> None:
        self._check()
        rid, name, held = self._take(request, "fail")
        self._write(FAIL, (reason, rid))
        self._failed += 1
        self._end_lease(name, held)

    async def release(self, requests: Sequence[Request]) -> None:
        self._check()
        for request in requests:
            lease = self._leases.get(request)
            if lease is None:
                continue  # already given back (say, by an ack cancelled halfway)
            turn = lease[2]  # it keeps its place
            rid, name, held = self._take(request, "release")
            self._pending += 1
            host = self._hosts.get(name)
            if host is None:  # pragma: no cover - a host with a lease is never retired
                self._leased -= 1
                self._unclaim(name, rid, request.priority)
                self._candidates = True
                continue
            heapq.heappush(host.queue, (-request.priority, turn, rid, request))  # trimmed at a refill
            self._end_lease(name, held)

    def cooldown(self, host: str, seconds: float) -> None:
        """Start none of ``host``'s requests for ``seconds`` from now; a host not in play is ignored.

        Only the in-memory ``next_start`` changes: an entry the host has in the ready heap is
        moved to the timed heap when it is popped, and the host is not retired before then.
        """
        entry = self._hosts.get(host)
        if entry is None:
            return
        until = self._clock() + seconds
        if until > entry.next_start:
            entry.next_start = until
            self._schedule(host, entry)

    # -- introspection --------------------------------------------------------------------------

    def next_ready_in(self) -> float | None:
        if self._ready or self._refill or (self._candidates and len(self._hosts) < self._max_hosts):
            return 0.0
        best: float | None = None
        if self._timed or self._delayed:
            now = self._clock()
            if self._timed:
                best = self._timed[0][0] - now
            if self._delayed:
                wait = self._delayed[0][0] - now
                best = wait if best is None else min(best, wait)
        if self._next_due is not None:
            wait = self._next_due - self._wall()
            best = wait if best is None else min(best, wait)
        if best is None:
            # Pending requests whose hosts are all busy: a lease that ends wakes the caller
            # anyway; look again in a while in case nothing does.
            return 1.0 if self._pending else None
        return max(0.0, best)

    def is_finished(self) -> bool:
        return self._pending == 0 and self._leased == 0 and self._inserting == 0

    def statistics(self) -> FrontierStats:
        return FrontierStats(
            pending=self._pending,
            leased=self._leased,
            seen=self._seen,
            done=self._done,
            failed=self._failed,
            hosts=len(self._hosts),
        )

    def busiest_hosts(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` hosts with the most requests in flight now (for the progress display)."""
        active = ((name, host.in_flight) for name, host in self._hosts.items() if host.in_flight)
        return heapq.nlargest(n, active, key=lambda pair: pair[1])

    def __len__(self) -> int:
        return self._pending
