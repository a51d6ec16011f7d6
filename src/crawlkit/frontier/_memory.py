"""The in-memory frontier: fast, and lost when the process ends."""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..http import Request, host_of
from ._base import (
    Checkpoint,
    FrontierStats,
    HostLimits,
    HostPolicy,
    PushResult,
    ack_each,
    host_policy_functions,
)
from ._turns import Turns

__all__ = ["MemoryFrontier"]

# Heap entries are (-priority, turn, sequence, request): higher priority first, then callbacks
# take turns (see _turns.py), each first in, first out.
_Entry = tuple[int, int, int, Request]


@dataclass(slots=True)
class _Host:
    queue: list[_Entry] = field(default_factory=list)
    in_flight: int = 0  # leased requests still being fetched: what the host's slots count
    leased: int = 0  # leased requests not given back yet (fetched or not): the host stays till 0
    next_start: float = 0.0  # monotonic time before which no request may start (delay)
    limits: HostLimits | None = None
    # The key under which the host's live entry sits in the ready heap (None: not there), and
    # whether it waits in the timed heap. The ready heap may hold stale entries for a host; only
    # the one whose key matches ``ready_key`` is live.
    ready_key: int | None = None
    timed: bool = False


class MemoryFrontier:
    """Per-host queues feeding a heap of ready hosts.

    A host is *ready* when it has pending requests, a free slot and its delay has passed. Ready
    hosts sit in a heap ordered by their best request's priority; hosts waiting for their delay sit
    in a heap ordered by time. Requests waiting to be retried sit in a third heap until their time
    comes. Leasing is O(log hosts) and never scans a host that cannot be served.
    """

    durable = False

    def __init__(
        self,
        host_limits: HostPolicy | Callable[[str], HostLimits],
        depth_limit: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits_for, self._delay_for = host_policy_functions(host_limits)
        self._depth_limit = depth_limit
        self._clock = clock
        self._seq = itertools.count()
        self._turns = Turns()
        self._hosts: dict[str, _Host] = {}
        self._ready: list[tuple[int, int, str]] = []  # (-priority, seq, host)
        self._timed: list[tuple[float, int, str]] = []  # (ready-at, seq, host)
        self._delayed: list[tuple[float, int, int, Request]] = []  # retries: (not-before, seq, turn, request)
        self._seen: set[bytes] = set()
        self._pending = 0
        self._leased = 0
        self._leases: dict[Request, tuple[str, int]] = {}  # leased, not given back -> (host, turn)
        self._fetched: set[Request] = set()  # leases whose fetch is over: their slot is free
        self._done = 0
        self._failed = 0

    async def open(self) -> Checkpoint | None:
        return None

    async def checkpoint(self, output_offset: int, state: bytes, seeded: bool) -> None:
        return None  # nothing here outlives the process

    # -- queueing ---------------------------------------------------------------------------

    def _host(self, name: str) -> _Host:
        host = self._hosts.get(name)
        if host is None:
            host = self._hosts[name] = _Host(limits=self._limits_for(name))
        return host

    def _enqueue(self, request: Request, turn: int | None = None) -> None:
        """Queue a request: a new one (or a retry) gets a turn; a released one keeps its own."""
        name = host_of(request.url)
        host = self._host(name)
        if turn is None:
            turn = self._turns.next(request.callback)
        heapq.heappush(host.queue, (-request.priority, turn, next(self._seq), request))
        self._pending += 1
        self._schedule(name, host)

    def _schedule(self, name: str, host: _Host) -> None:
        """Put a host in the ready or the timed heap if it can serve now or later.

        A host already in the ready heap gets a fresh entry when its best request improved
        (a higher-priority push); the old entry goes stale.
        """
        if host.timed or not host.queue:
            return
        assert host.limits is not None
        if host.in_flight >= host.limits.concurrency:
            return  # rescheduled when a lease of this host ends
        best = host.queue[0][0]
        if host.ready_key is not None and host.ready_key <= best:
            return
        if host.next_start > self._clock():
            heapq.heappush(self._timed, (host.next_start, next(self._seq), name))
            host.timed = True
        else:
            heapq.heappush(self._ready, (best, next(self._seq), name))
            host.ready_key = best

    async def push(self, requests: Sequence[Request]) -> PushResult:
        result = PushResult()
        seen = self._seen
        limit = self._depth_limit
        for request in requests:
            if limit and request.depth > limit:
                result.over_depth += 1
                continue
            if not request.dont_filter:
                fp = request.fingerprint
                if fp in seen:
                    result.duplicates += 1
                    continue
                seen.add(fp)
            self._enqueue(request)
            result.queued += 1
        return result

    # -- leasing ----------------------------------------------------------------------------

    def _promote_due(self, now: float) -> None:
        while self._delayed and self._delayed[0][0] <= now:
            _, _, turn, request = heapq.heappop(self._delayed)
            self._pending -= 1  # _enqueue counts it again
            self._enqueue(request, turn)
        while self._timed and self._timed[0][0] <= now:
            _, _, name = heapq.heappop(self._timed)
            host = self._hosts[name]
            host.timed = False
            self._schedule(name, host)

    async def lease(self, n: int) -> list[Request]:
        now = self._clock()
        self._promote_due(now)
        out: list[Request] = []
        while len(out) < n:
            self._drop_stale()
            if not self._ready:
                break
            _, _, name = heapq.heappop(self._ready)
            host = self._hosts[name]
            host.ready_key = None
            assert host.limits is not None
            _, turn, _, request = heapq.heappop(host.queue)
            self._turns.served(turn)
            out.append(request)
            self._leases[request] = (name, turn)
            host.in_flight += 1
            host.leased += 1
            self._pending -= 1
            self._leased += 1
            delay = host.limits.delay if self._delay_for is None else self._delay_for(name)
            if delay > 0:
                host.next_start = now + delay
            self._schedule(name, host)
        return out

    def cooldown(self, host: str, seconds: float) -> None:
        """Start none of ``host``'s requests for ``seconds`` from now; a host not in play is ignored."""
        entry = self._hosts.get(host)
        if entry is None:
            return
        until = self._clock() + seconds
        if until <= entry.next_start:
            return
        entry.next_start = until
        entry.ready_key = None  # its entry in the ready heap, if any, goes stale
        self._schedule(host, entry)  # into the timed heap (unless already there: it re-checks)

    def _take(self, request: Request, what: str) -> str:
        """Check that ``request`` is leased, stop counting it as leased, and return its host."""
        lease = self._leases.pop(request, None)
        if lease is None:
            raise ValueError(f"{what}() of a request that is not leased: {request!r}")
        return lease[0]

    def fetched(self, request: Request) -> None:
        lease = self._leases.get(request)
        if lease is None or request in self._fetched:
            return
        self._fetched.add(request)
        name = lease[0]
        host = self._hosts[name]
        host.in_flight -= 1
        self._schedule(name, host)

    def _end_lease(self, request: Request, name: str) -> None:
        host = self._hosts[name]
        if request in self._fetched:
            self._fetched.remove(request)
        else:
            host.in_flight -= 1
        host.leased -= 1
        self._leased -= 1
        self._schedule(name, host)
        if not host.queue and not host.leased and host.next_start <= self._clock():
            # Memory grows with the hosts in play, not with every host ever seen.
            del self._hosts[name]

    async def ack(self, request: Request, new_requests: Sequence[Request]) -> PushResult:
        name = self._take(request, "ack")
        result = await self.push(new_requests)
        self._end_lease(request, name)
        self._done += 1
        return result

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        return await ack_each(self, acks)

    async def retry(self, request: Request, delay: float) -> None:
        self._end_lease(request, self._take(request, "retry"))
        turn = self._turns.next(request.callback)  # behind the requests of its callback
        self._pending += 1
        if delay <= 0:
            self._pending -= 1
            self._enqueue(request, turn)
        else:
            heapq.heappush(self._delayed, (self._clock() + delay, next(self._seq), turn, request))

    async def fail(self, request: Request, reason: str) -> None:
        self._end_lease(request, self._take(request, "fail"))
        self._failed += 1

    async def release(self, requests: Sequence[Request]) -> None:
        for request in requests:
            lease = self._leases.pop(request, None)
            if lease is None:
                continue  # already given back: the engine releases after a cancelled ack
            name, turn = lease
            self._end_lease(request, name)
            self._enqueue(request, turn)  # it keeps its place

    # -- introspection ----------------------------------------------------------------------

    def _drop_stale(self) -> None:
        ready = self._ready
        while ready:
            key, _, name = ready[0]
            host = self._hosts.get(name)
            if host is not None and host.ready_key == key:
                return
            heapq.heappop(ready)

    def next_ready_in(self) -> float | None:
        self._drop_stale()
        if self._ready:
            return 0.0
        times = []
        if self._timed:
            times.append(self._timed[0][0])
        if self._delayed:
            times.append(self._delayed[0][0])
        if not times:
            return None
        return max(0.0, min(times) - self._clock())

    def is_finished(self) -> bool:
        return self._pending == 0 and self._leased == 0

    def statistics(self) -> FrontierStats:
        return FrontierStats(
            pending=self._pending,
            leased=self._leased,
            seen=len(self._seen),
            done=self._done,
            failed=self._failed,
            hosts=len(self._hosts),
        )

    def __len__(self) -> int:
        return self._pending

    async def close(self) -> None:
        return None
