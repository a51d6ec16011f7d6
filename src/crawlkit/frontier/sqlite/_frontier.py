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

What is in memory, and its bounds: at most ``max_hosts`` active hosts that can be served, and
four times that with those waiting for a delay (plus hosts of leased requests), each with a heap
of at most about ``host_window`` loaded requests; the leased requests;
retries waiting for their time (at most ``max_delayed``, beyond that they wait in the database);
a cache of recent fingerprints (at most ``fingerprint_cache``) that spares a trip to the database
for links seen again soon; SQLite's page cache (``cache_mib``). Nothing grows with the number of
pending requests or of hosts ever seen. Idle hosts leave memory once their delay has run out.

Order within a host is exact: for each active host, ``more`` says whether the database may still
hold due pending requests of it, and ``bound`` is a rank (``(-priority, turn, id)``;
``frontier/_turns.py`` tells how turns are handed out) that every such request ranks after. A host
is served from memory only while its best loaded request ranks at or before that bound; otherwise
it is refilled first. Across hosts, ready hosts are served best priority first, as in the memory
frontier; hosts are activated in the order of their best pending priority.

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

from .._base import Checkpoint, FrontierStats
from .._turns import Turns
from ._dbthread import DatabaseThread, wait_for
from ._intake import MAX_INSERTS_BEHIND
from ._leases import Leasing
from ._store import SCHEMA_VERSION, Opened

__all__ = ["MAX_INSERTS_BEHIND", "SCHEMA_VERSION", "SqliteFrontier"]


class SqliteFrontier(Leasing):
    """The durable frontier, in one SQLite file; the module docstring tells the design.

    ``clock`` (monotonic) times per-host delays and in-process retries; ``wall_clock`` stamps
    retry times in the database, where they must mean the same after a restart. ``max_hosts``
    and ``host_window`` bound what is held in memory: about ``max_hosts * host_window`` requests
    (a host allowed more than ``host_window / 2`` requests in flight gets twice that, up to 1,024).
    ``fingerprint_cache`` recent fingerprints (about 76 bytes each, 10 MB in all) spare trips to
    the database for links seen before. The default is sized for a large crawl of one site, whose
    pages link the same URLs again and again: a smaller cache sends those links to the database
    thread (bench/README.md's History has the measurement).
    """

    durable = True

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

    # -- introspection --------------------------------------------------------------------------

    def next_ready_in(self) -> float | None:
        if self._ready or self._refill or (self._candidates and self._room() > 0):
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

    def __len__(self) -> int:
        return self._pending
