"""The SQLite frontier's leases: handing out ready requests, and taking them back.

_frontier.py tells the design.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Sequence
from typing import cast

from ...http import Request
from .._base import Frontier, PushResult, ack_each
from ._intake import Intake
from ._store import FAIL, LEASED, PENDING, PICKLE_PROTOCOL, RETRY

__all__ = ["Leasing"]


class Leasing(Intake):
    """``lease()``, and the ways a lease ends: ack, retry, fail, release; ``fetched()``, ``cooldown()``."""

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
                or (host.more and queue[0][:3] > host.bound)  # not _ahead()
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
            # This class is the SqliteFrontier's leasing part: the whole frontier is what acks.
            return await ack_each(cast(Frontier, self), acks)  # no trip to the database
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
