"""What the SQLite frontier holds in memory, and how it sends work to its database thread.

_frontier.py tells the design; the frontier's other modules each add one job to this state.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ...errors import FrontierError
from ...http import Request, host_of, origin_of
from .._base import HostLimits, HostPolicy, host_policy_functions
from .._turns import Turns
from ._dbthread import DatabaseThread, Job, wait_for
from ._fingerprints import FingerprintCache
from ._store import Entry, Rank, Store, Write, write_failed

__all__ = ["FrontierState"]

T = TypeVar("T")


# -- hosts of URLs ------------------------------------------------------------------------------------

_host_cache: dict[str, str] = {}
_HOST_CACHE_SIZE = 4_096  # hosts met lately; a crawl of 10,000 hosts held them all


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
    # Requests loaded at most (``HostWindows._new_host`` says why), and the fewest loaded before a
    # refill is asked for: fixed with the host's limits, and read at every lease and ack.
    window: int
    refill_below: int
    queue: list[Entry] = field(default_factory=list)
    in_flight: int = 0  # leased requests still being fetched: what the host's slots count
    leased: int = 0  # leased requests not given back yet (fetched or not): never retired before 0
    next_start: float = 0.0  # monotonic time before which no request may start (delay)
    scheduled: bool = False  # whether an entry for this host sits in the ready or timed heap
    more: bool = False  # whether the database may hold due pending requests of this host
    # When ``more``: each of those ranks after this (ranks are (-priority, turn, id)).
    bound: Rank = (0, 0, 0)


class FrontierState:
    """The frontier's fields, and its trips to the database thread (buffered writes first)."""

    def __init__(
        self,
        path: Path,
        host_limits: HostPolicy | Callable[[str], HostLimits],
        depth_limit: int = 0,
        clock: Callable[[], float] = time.monotonic,
        spider_name: str = "",
        *,
        wall_clock: Callable[[], float] = time.time,
        # Hosts worked on at a time: enough ready hosts for any concurrency, and few enough that
        # a host's turn comes back soon, its connection still open (1,024 held 2.5 MB of loaded
        # requests at 10,000 hosts and spread each host's 12 pages over the whole crawl).
        max_hosts: int = 256,
        host_window: int = 16,
        max_delayed: int = 10_000,
        fingerprint_cache: int = 131_072,
        # SQLite's page cache. At 10,000 hosts the activations read pages all over the
        # database and 16 MiB filled (a quarter of the main process), for no CPU saved against 4.
        cache_mib: int = 4,
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
