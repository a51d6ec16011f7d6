"""The SQLite frontier's active hosts: their windows of loaded requests, readiness, refills.

_frontier.py tells the design.
"""

from __future__ import annotations

import heapq
import itertools

from ._state import FrontierState, _Host, _host
from ._store import DEACTIVATE, HOST_ADD, MAX_WINDOW, UNCLAIM, Entry, Maintained, Rank

__all__ = ["HostWindows"]

_WAITING_HOSTS = 4  # active hosts at most, waiting for their delay or not, in ``max_hosts``


class HostWindows(FrontierState):
    """Which hosts are in memory, what each has loaded, and when each can serve."""

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

    def _new_host(self, name: str) -> _Host:
        limits = self._limits_for(name)
        # How many requests of a host are loaded at most: ``host_window``, or more for a busy
        # host. At least twice the host's concurrency, so that it does not run dry between two
        # refills: a one-host crawl with 64 requests in flight and a window of 16 went to the
        # database for every dozen pages.
        window = max(self._window, min(2 * limits.concurrency, MAX_WINDOW))
        refill_below = min(max(self._low, window // 4), limits.concurrency)
        return _Host(limits, window, refill_below)

    def _schedule(self, name: str, host: _Host) -> None:
        """Put a host in the ready or timed heap if it can serve; mark it for a refill if due."""
        queue = host.queue
        if host.more:  # _ahead(), inline: this runs a few times for every page
            servable = bool(queue) and queue[0][:3] <= host.bound
            if not servable or len(queue) < host.refill_below:
                self._refill.add(name)
        else:
            servable = bool(queue)
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
        window = host.window
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

    def _room(self) -> int:
        """How many more hosts may be active now.

        ``max_hosts`` counts the hosts that can be served when their turn comes; hosts waiting
        for a delay to run out (``download_delay``, ``Crawl-delay``, a rest) are not counted, up
        to four times ``max_hosts`` in all. Without delays few hosts at a time do best, each
        finishing soon on the connection it keeps; with a delay of a second, 256 hosts would
        serve 256 pages a second whatever the concurrency.
        """
        waiting = len(self._timed) + len(self._cooling)
        return min(self._max_hosts + waiting, _WAITING_HOSTS * self._max_hosts) - len(self._hosts)

    def _maintenance_due(self, wall: float) -> bool:
        return bool(
            self._refill
            or (self._candidates and self._room() > 0)
            or (self._next_due is not None and wall >= self._next_due)
        )

    async def _maintain(self, wall: float) -> None:
        """One trip to the database: refill hosts running low, activate hosts, see retries due."""
        refills = []
        for name in itertools.islice(self._refill, 256):
            host = self._hosts[name]
            refills.append((name, max(host.window - len(host.queue), self._low)))
        came_due = None
        if self._next_due is not None and wall >= self._next_due:
            came_due = (self._due_until, wall)
        activate = 0
        if self._candidates or came_due is not None:  # rows that came due may be of inactive hosts
            activate = min(self._room(), 256)

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
                    fresh = self._hosts[name] = self._new_host(name)
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
