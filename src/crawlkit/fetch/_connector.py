"""The crawl's TCP connector: aiohttp's, with a bound on idle keep-alive connections in all.

aiohttp keeps every idle connection for ``keepalive_timeout`` (15 s), and sweeps them only that
often, so a connection may sit idle for up to 30 s. A crawl of one site reuses its few
connections at once and never notices; a crawl of many hosts leaves each host's connections (up
to ``concurrency_per_host`` of them) idle behind it when the host runs out of work: at 10,000
hosts, thousands of idle sockets, about 12 KB of the main process each, for hosts that will
never be asked again.

``BoundedIdleConnector`` keeps at most ``max_idle`` idle connections across all hosts and closes
the longest idle beyond that, as browsers bound their socket pools. The hosts with work are the
ones whose connections were used last, so they keep theirs, as long as the bound is above the
hosts taking turns (``idle_bound``); the hosts that finished lose theirs first. The count is
taken only every ``max_idle`` releases (a sum over the pool's hosts), so a crawl with fewer idle
connections than that pays one addition per release.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from typing import Any

import aiohttp

__all__ = ["BoundedIdleConnector", "idle_bound"]

log = logging.getLogger("crawlkit.fetch")


def idle_bound(concurrency: int) -> int:
    """Idle connections kept for a crawl of ``concurrency``: twice what can be in flight, 512 at least.

    At least twice the hosts the SQLite frontier works on at a time (256): each of them mostly
    holds one idle connection between two of its pages. With 64, a 10,000-host crawl closed every
    host's connection before its next page and opened 12 per host, one per page, at about 250 µs
    of CPU each on loopback: a fifth of the crawl's CPU.
    """
    return max(2 * concurrency, 512)


class BoundedIdleConnector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that keeps at most ``max_idle`` idle connections, the most recently used."""

    def __init__(self, *, max_idle: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if max_idle < 1:
            raise ValueError("max_idle must be at least 1")
        self._max_idle = max_idle
        self._released_since_count = 0

    @property
    def idle_connections(self) -> int:
        """Idle keep-alive connections held now, all hosts together."""
        return sum(len(queue) for queue in self._conns.values())

    def _release(self, *args: Any, **kwargs: Any) -> None:
        super()._release(*args, **kwargs)
        self._released_since_count += 1
        if self._released_since_count > self._max_idle:
            try:
                self._released_since_count = self._trim()
            except (AttributeError, TypeError, ValueError) as exc:
                # The pool's layout is aiohttp's own and may change in a release: then the bound
                # is lost (aiohttp's keepalive_timeout still closes idle connections), not the crawl.
                log.warning("idle connections are no longer bounded: aiohttp's pool changed (%r)", exc)
                self._max_idle = 1 << 62

    def _trim(self) -> int:
        """Close the longest idle connections down to half the bound; return how many stay idle."""
        pool = self._conns
        idle = sum(len(queue) for queue in pool.values())
        if idle <= self._max_idle:
            return idle
        excess = idle - self._max_idle // 2
        # Each host's queue is oldest first (released connections are appended, reuse pops the
        # left): the oldest ``excess`` overall are the first few of some queues.
        oldest = heapq.nsmallest(
            excess, ((used, i) for i, queue in enumerate(pool.values()) for _, used in queue)
        )
        per_queue = Counter(i for _, i in oldest)
        keys = list(pool)
        for i, count in per_queue.items():
            key = keys[i]
            queue = pool[key]
            for _ in range(count):
                protocol, _ = queue.popleft()
                transport = protocol.transport
                protocol.close()
                if key.is_ssl and transport is not None and not self._cleanup_closed_disabled:
                    self._cleanup_closed_transports.append(transport)  # aborted if TLS close hangs
            if not queue:
                del pool[key]
        return idle - excess
