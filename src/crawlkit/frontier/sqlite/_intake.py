"""New requests into the SQLite frontier: depth limit, duplicates, numbering, the insert.

_frontier.py tells the design.
"""

from __future__ import annotations

import heapq
import pickle
from collections.abc import Iterable, Sequence

from ...http import Request
from .._base import PushResult
from ._hosts import HostWindows
from ._state import _host
from ._store import LEASED, PENDING, PICKLE_PROTOCOL, Row

__all__ = ["MAX_INSERTS_BEHIND", "Intake"]

# Inserts sent to the database thread and not waited for, at most.
MAX_INSERTS_BEHIND = 64


class Intake(HostWindows):
    """``push()``, and the new requests of an ack: checked, numbered and inserted in one trip."""

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
                if len(host.queue) + loaded < host.window and ahead(host, (neg_priority, turn, rid)):
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
