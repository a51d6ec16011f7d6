"""One worker's side of a shared crawl's session pool: its sessions synced with the shared pool.

In a shared (Redis) crawl the sessions are one pool for every worker, kept by the frontier
(``frontier/redis/_sessions.py``). A session is *leased* to one worker at a time, not used by
several at once: the worker that holds it is the only one to count its uses and score, to see
its cookies change and to retire it, so none of that needs a round trip to Redis per request,
and nothing a worker does to a session can be overwritten by another's stale copy. A session
used from two workers at once would also be two visitors to the site (each earning its own
cookies) behind one identity.

The worker syncs with the shared pool (one script):

* at each checkpoint, before the frontier's commit, so that a page recorded as done has its
  session's cookies in the pool (a login is never recorded without the session it opened);
* at once when it retires a session (a block, its uses, its age, its score), or has none to use;
* every ``lease_ttl / 3`` seconds at least, to renew its leases.

Each sync writes the documents of the sessions used since the last one, retires, gives back
what this worker holds beyond its share (the pool's size over the live workers, rounded up, so
that a worker joining late gets its part of the live pool within a sync), and takes free
sessions, or new places, up to the share. A worker that stops gives back all it holds; one that
is killed stops renewing, and its sessions come back free, as of its last sync, when their
leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from ..errors import CommitError
from ..frontier import SessionSync, SessionSyncReply
from ._sessions import NoSessionAvailable, Session, SessionPool

__all__ = ["SessionStore", "SharedSessions"]

log = logging.getLogger("crawlkit.fetch")

_REFILL_PAUSE = 0.25  # seconds between syncs for sessions that found none
_STARVED_WAIT = 2.0  # seconds a request waits for a session before it goes back to the queue
_HANDOVER_PAUSE = 0.05  # seconds between syncs while a session given back still has requests


class SessionStore(Protocol):
    """Where the shared pool lives (a Redis frontier's ``session_store()``)."""

    @property
    def lease_ttl(self) -> float: ...

    async def sync(self, sync: SessionSync, budget: float | None = None) -> SessionSyncReply: ...


class SharedSessions:
    """Keeps ``pool`` (this worker's sessions) in step with the shared pool in ``store``.

    ``size`` is the whole pool's, for all workers together; with ``one_each`` it grows to one
    session per live worker (the default size), so that no worker is left without one.
    """

    def __init__(self, pool: SessionPool, store: SessionStore, *, size: int, one_each: bool) -> None:
        self.pool = pool
        self.store = store
        self.size = size
        self.one_each = one_each
        self.interval = store.lease_ttl / 3
        self.share = size
        self.workers = 1
        self._retired: dict[str, str] = {}  # retired here, not synced yet
        self._releasing: list[Session] = []  # given back at the next sync
        self._lock = asyncio.Lock()  # one sync at a time
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._found_none_at = -1e9  # time.monotonic() of the last refill that found nothing
        self._starved_logged = False
        self._closed = False
        pool.shared = self
        for session in pool.live:  # sessions of a per-worker checkpoint: the shared pool's rule
            pool.drop(session)

    def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="session-sync")

    def note_retired(self, sid: str, why: str) -> None:
        """A session retired here: never used again by any worker, from the next sync (at once)."""
        self._retired[sid] = why
        self._found_none_at = -1e9  # its place is free: a refill may get a new session for it
        self._wake.set()

    async def refill(self) -> bool:
        """Sync now for sessions to use; whether any came. A sync that found none is not tried
        again for a quarter of a second, however many requests ask."""
        if time.monotonic() - self._found_none_at < _REFILL_PAUSE or self._closed:
            return False
        before = len(self.pool.live)
        if self._lock.locked():  # a sync is under way: its answer serves this caller too
            async with self._lock:
                return len(self.pool.live) > before
        try:
            await self.sync(budget=0.0)
        except CommitError as exc:
            log.debug("session sync failed: %s", exc)
        if len(self.pool.live) > before:
            return True
        self._found_none_at = time.monotonic()
        return False

    async def wait_for_session(self) -> bool:
        """Wait a little for a session (another worker gives back what is past its share at its
        next sync): a request that gives up goes back to the queue, which costs the frontier two
        scripts each time; waiting here costs a sync every quarter of a second, for all."""
        deadline = time.monotonic() + _STARVED_WAIT
        while time.monotonic() < deadline and not self._closed:
            await asyncio.sleep(_REFILL_PAUSE)
            if self.pool.live or await self.refill():
                return True
        return False

    def starved(self) -> NoSessionAvailable:
        """The error of a request that finds no session here (logged the first time)."""
        if not self._starved_logged:
            self._starved_logged = True
            log.warning(
                "this worker holds no session: the shared pool's %d are held by the other %d "
                "worker(s); it waits for one (session_pool_size sets the pool's size)",
                self.size,
                max(self.workers - 1, 0),
            )
        return NoSessionAvailable("every session of the shared pool is held by another worker")

    async def sync(self, budget: float | None = None, *, leaving: bool = False) -> None:
        """One sync with the shared pool; ``budget`` bounds the wait for an unreachable Redis."""
        async with self._lock:
            await self._sync(budget, leaving)

    async def close(self) -> None:
        """Give back every session this worker holds (after the last checkpoint)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.sync(budget=5.0, leaving=True)
        except CommitError as exc:
            log.warning(
                "could not give back this worker's sessions (%s); they are free again in %g s",
                exc,
                self.store.lease_ttl,
            )

    async def _run(self) -> None:
        while not self._closed:  # also when the cancellation of close() was lost in a Redis call
            # A session given back waits for its requests: it goes as soon as they are answered.
            handing_over = any(s.retired is None for s in self._releasing)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _HANDOVER_PAUSE if handing_over else self.interval)
            self._wake.clear()
            try:
                await self.sync(budget=0.0)
            except CommitError as exc:
                log.debug("session sync failed (tried again at the next): %s", exc)
            except Exception:  # a bug: logged, and the next sync tries again
                log.exception("session sync failed")

    async def _sync(self, budget: float | None, leaving: bool) -> None:
        pool = self.pool
        if leaving:
            self._releasing += pool.live
        elif len(pool.live) > self.share:
            # Another worker joined: what is past this worker's share goes back for it, idle
            # sessions first (they go at once; a busy one waits for its requests).
            busy_first = sorted(pool.live, key=lambda s: s.in_flight == 0)
            self._releasing += busy_first[self.share :]
        for session in self._releasing:
            pool.drop(session)
        # Handed on only once idle: no two workers ever have a request of one session in flight.
        releasing = [s for s in self._releasing if s.retired is None and (leaving or not s.in_flight)]
        held = pool.live
        busy = [s for s in self._releasing if s.retired is None and s not in releasing]
        touched, pool.touched = pool.touched, set()
        mine = {s.id for s in (*held, *busy, *releasing)}
        documents = {s.id: pool.document(s) for s in {*touched, *releasing} if s.id in mine}
        retired = dict(self._retired)
        request = SessionSync(
            held=[s.id for s in (*held, *busy)],
            documents=documents,
            retired=retired,
            released=[s.id for s in releasing],
            size=self.size,
            one_each=self.one_each,
            want=0 if leaving else self.size,
            leaving=leaving,
        )
        try:
            reply = await self.store.sync(request, budget)
        except BaseException:
            pool.touched |= touched  # their documents go with the next sync
            raise
        for sid, why in retired.items():
            if self._retired.get(sid) == why:
                del self._retired[sid]
        lost = set(reply.lost)
        self._releasing = [
            s for s in self._releasing if s not in releasing and s.retired is None and s.id not in lost
        ]
        for session in held:
            if session.id in lost:
                pool.drop(session)  # retired by another worker, or taken after a stall
        self.share, self.workers = reply.share, reply.workers
        for sid, document in reply.claimed:
            if pool.adopt(sid, document) is None:
                self.note_retired(sid, "proxy_gone")  # its proxy is not one of this worker's
        if pool.live:
            self._starved_logged = False
        if len(pool.live) > self.share and not leaving:
            await self._sync(budget, leaving)  # another worker joined: its part goes back now
