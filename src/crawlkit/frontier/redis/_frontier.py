"""The Redis frontier: one crawl shared by worker processes on any number of machines.

Every worker process opens a ``RedisFrontier`` on the same Redis and job name. The queue, the
seen set and the per-host politeness state live in Redis and change only through the atomic Lua
scripts of ``_lua.py`` (its docstring gives the key layout), so a host's concurrency and delay
hold across all workers together.

A leased request belongs to one worker until that worker commits it or its lease expires. Leases
are renewed every ``lease_ttl / 3`` while the worker lives; the leases of a worker that died
(SIGKILL, a lost machine) expire, and any worker then puts them back in the queue.

Exactly-once output: each worker writes its own JSONL part. ``ack()`` frees the host slot and
queues the new links at once (so that the crawl goes on at full speed; a link queued twice is a
duplicate), but the acked request stays leased to the worker. ``checkpoint(offset)`` then, in one
script, marks the acked requests done and records the part's committed offset, *if* every one of
them is still leased to this worker; if one is not (the worker stalled past its lease and another
worker took the request), nothing is applied and the worker stops with a ``CommitError``: its part
past the committed offset never counts, and the requests are crawled again. The merged output
(``crawlkit export``) is each part up to its committed offset. Requests that bypass the seen set
(``dont_filter``) found by a page are queued only at the commit, or a redone page would queue
them twice.

Redis going away in mid-crawl: every call retries with backoff for ``retry_timeout`` seconds,
then raises a ``CommitError``. Each script is safe to run twice (a retry after a lost reply), and a
worker takes expired leases back only after it has itself been connected for a whole
``lease_ttl``, so that after an outage the others have had time to renew theirs.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from redis.exceptions import RedisError

from ...errors import CommitError, ConfigError
from ...http import Request
from .._base import Checkpoint, FrontierStats, HostLimits, HostPolicy, PushResult
from ._conn import RedisUnreachable, Scripts, client_name, job_prefix, safe_url
from ._encode import RequestEncoder
from ._sessions import RedisSessionStore

__all__ = ["RedisFrontier", "job_prefix", "safe_url"]

log = logging.getLogger("crawlkit.frontier.redis")

_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
# Ack scripts of one ack_many() in flight at once, each on its own connection of the pool.
_ACKS_IN_FLIGHT = 16


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


class RedisFrontier:
    """A frontier in Redis, shared by every worker that opens the same ``job``.

    ``worker_id`` must be unique among the live workers of a job; a process that reuses the id of
    a dead one takes over its part (``part`` is recorded for ``crawlkit export``). ``seen_shards``
    is fixed when the job is created. The module docstring tells the design.
    """

    durable = True

    def __init__(
        self,
        url: str,
        job: str,
        worker_id: str,
        host_limits: HostPolicy | Callable[[str], HostLimits],
        *,
        depth_limit: int = 0,
        spider_name: str = "",
        part: str = "",
        node: str = "",
        lease_ttl: float = 30.0,
        retry_timeout: float = 120.0,
        seen_shards: int = 65536,
        poll_interval: float = 0.05,
    ) -> None:
        self.url = url
        self.job = job
        self.worker_id = worker_id
        self._redis = Scripts(url, job, retry_timeout, client_name(job, worker_id))
        self._encoder = RequestEncoder(host_limits, depth_limit)
        self._spider = spider_name
        self._part = part
        self._node = node
        self._ttl = lease_ttl
        self._ttl_ms = max(1, int(lease_ttl * 1000))
        self._seen_shards = seen_shards
        self._poll = poll_interval
        self._token = secrets.token_hex(16)  # tells this process from another with the same id
        self._opened = False
        self._closed = False
        self._failure: BaseException | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._acking: set[asyncio.Task[Any]] = set()
        self._ack_slots = asyncio.Semaphore(_ACKS_IN_FLIGHT)
        self._leases: dict[Request, bytes] = {}  # leased, not yet acked: request -> handle
        self._acked: list[bytes] = []  # handles acked since the last commit
        self._deferred: list[Request] = []  # dont_filter requests found since the last commit
        self._commit_seq = 0
        # What this worker's last script reported about the whole crawl (every script that
        # changes the queue reports it, so these are never older than this worker's last call).
        self._pending = 0
        self._leased = 0
        self._seen = 0
        self._done = 0
        self._failed = 0
        self._seeded = False
        self._ready_hosts = 0
        self._wait = -1.0
        self._wait_noted_at = 0.0  # time.monotonic() when ``_wait`` was reported
        self._mine_acked = 0  # of ``_leased``: this worker's acked requests, waiting for its commit

    # -- plumbing -------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._opened or self._closed:
            raise RuntimeError("the frontier is closed" if self._closed else "open() the frontier first")

    def _poison(self, error: CommitError) -> CommitError:
        """Refuse every later call: a commit after this could count output it should not."""
        self._failure = self._failure or error
        return error

    async def _run(
        self, name: str, args: Sequence[Any], budget: float | None = None, *, poison: bool = True
    ) -> list[Any]:
        """Run one script (``Scripts.run``). A failure poisons the frontier, except that Redis
        being unreachable does not when ``poison`` is false (renewals, cooldowns: a later call may
        still succeed, and nothing depends on them having happened).
        """
        try:
            return await self._redis.run(name, args, budget)
        except CommitError as exc:
            if poison or not isinstance(exc, RedisUnreachable):
                self._poison(exc)
            raise

    def _note(self, reply: list[Any], at: int) -> None:
        """Keep the figures a script's reply ends with (``with_view`` in the scripts): the wait
        for the next ready request, the crawl-wide counters, this worker's acks to commit."""
        if reply[0] != b"ok" or len(reply) < at + 9:
            return  # a refused call changed nothing (a lost lease)
        wait, pending, leased, seen, done, failed, seeded, ready, acked = reply[at : at + 9]
        self._wait = float(wait)
        self._wait_noted_at = time.monotonic()
        self._pending = _int(pending)
        self._leased = _int(leased)
        self._seen = _int(seen)
        self._done = _int(done)
        self._failed = _int(failed)
        self._seeded = seeded == b"1"
        self._ready_hosts = _int(ready)
        self._mine_acked = _int(acked)

    def _take(self, request: Request, what: str) -> bytes:
        handle = self._leases.pop(request, None)
        if handle is None:
            raise ValueError(f"{what}() of a request that is not leased: {request!r}")
        return handle

    def _spawn(
        self, coro: Coroutine[Any, Any, list[Any]], tasks: set[asyncio.Task[Any]]
    ) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        # Retrieved here, so that a failure nobody awaits is not reported as never retrieved;
        # a failure that matters has poisoned the frontier already.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    # -- opening, checkpoints, closing ----------------------------------------------------------

    async def open(self) -> Checkpoint | None:
        if self._opened or self._closed:
            raise RuntimeError("a RedisFrontier can be opened only once")
        await self._redis.connect()
        try:
            await self._redis.warn_about_config()
            reply = await self._claim_worker_id()
        except BaseException:
            self._closed = True
            await self._redis.close()
            raise
        self._opened = True
        created, offset, state, seq, seeded, shards = reply[1:7]
        self._pending, self._leased, self._seen, self._done, self._failed = map(_int, reply[7:12])
        self._wait = 0.0 if self._pending else -1.0
        self._seeded = seeded == b"1"
        self._encoder.set_shards(_int(shards))
        self._commit_seq = _int(seq)
        if _int(reply[12]):
            log.info(
                "worker %s: %d requests it had leased before are pending again", self.worker_id, reply[12]
            )
        self._renewer = asyncio.create_task(self._renew_forever(), name="lease-renewal")
        if _int(created):
            return None
        finished = self._seeded and self._pending == 0 and self._leased == 0
        return Checkpoint(
            output_offset=_int(offset), state=state or b"", seeded=self._seeded, finished=finished
        )

    async def _claim_worker_id(self) -> list[Any]:
        """Run the open script; wait (at most about one lease_ttl) while the id is held."""
        args = [
            self.worker_id,
            self._token,
            self._ttl_ms,
            self._spider,
            self._seen_shards,
            self._part,
            self._node,
        ]
        give_up_at = time.monotonic() + self._ttl * 1.5 + 1.0
        warned = False
        while True:
            try:
                reply = await self._redis.call_once("open", args)
            except (RedisError, OSError) as exc:
                raise ConfigError(f"cannot use Redis at {safe_url(self.url)}: {exc}") from exc
            status = reply[0]
            if status == b"ok":
                return reply
            if status == b"spider":
                raise ConfigError(
                    f"job {self.job!r} in Redis belongs to spider {reply[1].decode(errors='replace')!r}, "
                    f"not {self._spider!r}; set another job_name, or reset the job"
                )
            if status == b"format":
                raise ConfigError(
                    f"job {self.job!r} in Redis was created by an older crawlkit, which queued "
                    "requests in another order; finish it with that version, or reset the job"
                )
            if time.monotonic() >= give_up_at:
                raise ConfigError(
                    f"worker id {self.worker_id!r} of job {self.job!r} is in use by another live "
                    "process; give each worker its own worker_id"
                )
            if not warned:
                log.warning(
                    "worker id %r is held by another process, or by one that died less than "
                    "lease_ttl (%.0f s) ago; waiting for it",
                    self.worker_id,
                    self._ttl,
                )
                warned = True
            await asyncio.sleep(0.25)

    async def checkpoint(self, output_offset: int, state: bytes, seeded: bool) -> None:
        self._check()
        if self._acking:
            await asyncio.gather(*list(self._acking), return_exceptions=True)
            self._check()
        handles = list(self._acked)
        deferred = list(self._deferred)
        extra: list[Any] = []
        count = self._encoder.push_args(deferred, PushResult(), extra)
        seq = self._commit_seq + 1
        args = [self.worker_id, self._token, self._ttl_ms, seq, output_offset, state, int(seeded)]
        reply = await self._run("commit", [*args, len(handles), *handles, count, *extra])
        status = reply[0]
        if status == b"fenced":
            raise self._poison(
                CommitError(f"worker id {self.worker_id!r} was taken over by another process; this one stops")
            )
        if status == b"lost":
            raise self._poison(
                CommitError(
                    f"worker {self.worker_id!r} lost {len(reply[1])} of its leases before it could "
                    f"commit them (it was stalled or cut off from Redis for longer than lease_ttl = "
                    f"{self._ttl:g} s, and other workers took the requests back); what it wrote "
                    "since its last commit does not count. Start it again to go on"
                )
            )
        self._note(reply, 1)
        self._commit_seq = seq
        del self._acked[: len(handles)]
        del self._deferred[: len(deferred)]

    async def close(self) -> None:
        """Give back what this worker still holds; never touch the rest of the shared state."""
        if not self._opened or self._closed:
            self._closed = True
            return
        self._closed = True
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        pending = self._acking | self._background
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            budget = min(5.0, self._redis.retry_timeout)
            reply = await self._redis.run("close", [self.worker_id, self._token], budget)
            if _int(reply[1]):
                log.info("worker %s: %d uncommitted requests are pending again", self.worker_id, reply[1])
        except CommitError as exc:
            log.warning("could not give back this worker's leases (%s); they expire in %g s", exc, self._ttl)
        finally:
            self._leases.clear()
            self._acked.clear()
            self._deferred.clear()
            await self._redis.close()

    async def _renew_forever(self) -> None:
        """Renew this worker's leases; take back expired ones (of any worker) once connected long.

        Ends when the frontier closes, even if the cancellation that ``close()`` sends is lost:
        one sent while a Redis call is under way can be swallowed inside redis-py, and the loop
        went to sleep again with ``close()`` waiting for it forever."""
        while not self._closed:
            await asyncio.sleep(self._ttl / 3)
            try:
                handles = [*self._leases.values(), *self._acked]
                args = [self.worker_id, self._token, self._ttl, self._ttl_ms, *handles]
                reply = await self._run("renew", args, budget=0.0, poison=False)
                if reply[0] == b"fenced":
                    self._poison(
                        CommitError(
                            f"worker id {self.worker_id!r} was taken over by another process; this one stops"
                        )
                    )
                    return
                redis = self._redis
                if redis.outage_since is None and time.monotonic() - redis.healthy_since >= self._ttl:
                    reply = await self._run("reclaim", [1000], budget=0.0, poison=False)
                    if _int(reply[1]):
                        log.warning(
                            "took back %d requests whose leases expired (a worker died or stalled)", reply[1]
                        )
            except CommitError as exc:
                if self._failure is not None:
                    return
                log.debug("lease renewal failed: %s", exc)

    def session_store(self) -> RedisSessionStore:
        """The crawl's shared pool of sessions, on this worker's connection (``_sessions.py``).

        Its syncs are fenced by this worker's token, as commits are."""
        self._check()
        return RedisSessionStore(self._redis, self.worker_id, self._token, self._ttl)

    # -- queueing and leasing -------------------------------------------------------------------

    async def push(self, requests: Sequence[Request]) -> PushResult:
        self._check()
        result = PushResult()
        args: list[Any] = []
        count = self._encoder.push_args(requests, result, args)
        if count:
            reply = await self._run("push", [self.worker_id, count, *args])
            self._note(reply, 3)
            result.queued += _int(reply[1])
            result.duplicates += _int(reply[2])
        return result

    async def lease(self, n: int) -> list[Request]:
        self._check()
        if n <= 0:
            return []
        reply = await self._run("lease", [self.worker_id, n, self._ttl])
        pairs = reply[1]
        self._note(reply, 2)
        out: list[Request] = []
        for i in range(0, len(pairs), 2):
            handle, blob = pairs[i], pairs[i + 1]
            if blob is None:  # pragma: no cover - the scripts never leave a queued id without data
                log.error("leased request %s has no data; it is dropped when its lease expires", handle)
                continue
            request: Request = pickle.loads(blob)
            self._leases[request] = handle
            out.append(request)
        return out

    async def ack(self, request: Request, new_requests: Sequence[Request]) -> PushResult:
        self._check()
        handle = self._take(request, "ack")
        # Recorded first: a cancelled ack still commits, since its items are in the output.
        self._acked.append(handle)
        result = PushResult()
        args: list[Any] = []
        count = self._encoder.push_args(new_requests, result, args, deferred=self._deferred)
        delay = self._encoder.current_delay(self._encoder.host(request.url))
        # Shielded: the host slot and the new links must reach Redis even if the caller is
        # cancelled, or a committed page would lose its links.
        task = self._spawn(self._run("ack", [self.worker_id, handle, delay, count, *args]), self._acking)
        reply = await asyncio.shield(task)
        self._note(reply, 3)
        result.queued += _int(reply[1])
        result.duplicates += _int(reply[2])
        return result

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        # One script per ack, each atomic on the server and independent of the others (its lease,
        # its host's slot, its links): sent together, a batch costs a round trip or two, not one
        # an ack. The engine holds its commit lock meanwhile, and every page behind waits for it.
        async def one(request: Request, links: Sequence[Request]) -> PushResult:
            async with self._ack_slots:  # each script in flight holds a connection of the pool
                return await self.ack(request, links)

        result = PushResult()
        for acked in await asyncio.gather(*(one(request, links) for request, links in acks)):
            result.add(acked)
        return result

    async def retry(self, request: Request, delay: float) -> None:
        self._check()
        handle = self._take(request, "retry")
        data = pickle.dumps(request, _PICKLE_PROTOCOL)  # with its new attempt count
        args = [self.worker_id, handle, data, repr(max(0.0, float(delay))), request.callback or "parse"]
        reply = await self._run("retry", args)
        self._note(reply, 1)
        if reply[0] == b"lost":
            log.warning("retry of %s came after its lease expired; another worker has it", request.url)

    async def fail(self, request: Request, reason: str) -> None:
        self._check()
        handle = self._take(request, "fail")
        reply = await self._run("fail", [self.worker_id, handle, reason])
        self._note(reply, 1)
        if reply[0] == b"lost":
            log.warning("failure of %s came after its lease expired; another worker has it", request.url)

    def fetched(self, request: Request) -> None:
        """Nothing: a shared frontier frees the host's slot at the ack, in the same script.

        Freeing it earlier would cost a round trip to Redis for every page.
        """

    async def release(self, requests: Sequence[Request]) -> None:
        self._check()
        handles = [h for h in (self._leases.pop(r, None) for r in requests) if h is not None]
        if handles:
            self._note(await self._run("release", [self.worker_id, *handles]), 2)

    def cooldown(self, host: str, seconds: float) -> None:
        """Start none of ``host``'s requests, in any worker, for ``seconds`` from now."""
        if not self._opened or self._closed or self._failure is not None or seconds <= 0:
            return
        self._spawn(
            self._run("cooldown", [host, repr(float(seconds))], budget=1.0, poison=False), self._background
        )

    # -- introspection --------------------------------------------------------------------------

    def next_ready_in(self) -> float | None:
        """0 when a request was ready at this worker's last call; else at most a poll interval.

        Other workers free slots, queue links and take requests without telling this one, so
        this is never ``None`` before the crawl is over: look again soon.
        """
        if self.is_finished():
            return None
        if self._wait == 0:
            return 0.0
        poll = self._poll if self._pending else self._poll * 4
        if self._wait > 0:
            left = self._wait - (time.monotonic() - self._wait_noted_at)
            return max(0.001, min(left, poll))
        return poll

    def is_finished(self) -> bool:
        """Whether the whole crawl is over: seeded, nothing pending, nothing leased by anyone.

        This worker's own acked requests do not count: its last checkpoint commits them (and
        should it fail, closing puts them back in the queue for the others, who wait for them).
        """
        return self._seeded and self._pending == 0 and self._leased == self._mine_acked

    def statistics(self) -> FrontierStats:
        """The crawl's counters as of this worker's last call. This worker's acked requests are
        done, as in the other frontiers (its commit makes them permanent); other workers' count
        as leased until theirs. ``hosts``: the hosts that can start a request now."""
        return FrontierStats(
            pending=self._pending,
            leased=self._leased - self._mine_acked,
            seen=self._seen,
            done=self._done + self._mine_acked,
            failed=self._failed,
            hosts=self._ready_hosts,
        )

    def __len__(self) -> int:
        return self._pending

    def __repr__(self) -> str:
        return f"<RedisFrontier {safe_url(self.url)} job={self.job!r} worker={self.worker_id!r}>"
