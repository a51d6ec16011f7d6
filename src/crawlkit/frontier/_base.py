"""The ``Frontier`` protocol: the scheduler queue every backend implements.

A request moves PENDING -> LEASED -> DONE or FAILED; a failed attempt that will be retried goes
back to PENDING with a not-before time. The frontier also owns per-host readiness (concurrency and
delay), because only it sees every lease: a shared frontier thereby enforces politeness across all
processes that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..http import Request

__all__ = [
    "Checkpoint",
    "Frontier",
    "FrontierStats",
    "HostLimits",
    "HostPolicy",
    "PushResult",
    "ack_each",
    "host_policy_functions",
]


@dataclass(frozen=True, slots=True)
class HostLimits:
    """How hard one host may be hit: requests being fetched at once, and seconds between starts."""

    concurrency: int
    delay: float = 0.0


@runtime_checkable
class HostPolicy(Protocol):
    """How hard each host may be hit, as a frontier asks it.

    ``limits(host)`` is asked once, when the frontier first meets the host (its concurrency is
    kept from then on). ``delay(host)`` is asked at each lease of the host: the seconds before
    the host's next request may start. It may change from one lease to the next (jitter,
    adaptive throttling, a robots.txt ``Crawl-delay``), which is why it is not part of the limits.
    """

    def limits(self, host: str) -> HostLimits: ...

    def delay(self, host: str) -> float: ...


LimitsFunction = Callable[[str], HostLimits]
DelayFunction = Callable[[str], float]


def host_policy_functions(
    policy: HostPolicy | LimitsFunction,
) -> tuple[LimitsFunction, DelayFunction | None]:
    """A frontier's two look-ups, from a ``HostPolicy`` or a plain ``host -> HostLimits`` function.

    With a plain function the delay function is ``None``: the frontier then uses the delay of
    the limits it cached, which costs nothing per lease.
    """
    if isinstance(policy, HostPolicy):
        return policy.limits, policy.delay
    return policy, None


@dataclass(slots=True)
class PushResult:
    """What ``push()`` did with a batch: how many were queued, and how many were duplicates."""

    queued: int = 0
    duplicates: int = 0
    over_depth: int = 0

    def add(self, other: PushResult) -> None:
        self.queued += other.queued
        self.duplicates += other.duplicates
        self.over_depth += other.over_depth


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What a durable frontier recorded at its last checkpoint."""

    output_offset: int
    state: bytes  # the spider's state, as JSON
    seeded: bool  # whether start_requests() had been exhausted
    finished: bool  # whether nothing is pending or leased


@dataclass(frozen=True, slots=True)
class FrontierStats:
    """A snapshot of the frontier's queues."""

    pending: int
    leased: int
    seen: int
    done: int
    failed: int
    hosts: int


@runtime_checkable
class Frontier(Protocol):
    """The scheduler queue.

    ``lease()`` returns at most ``n`` requests that are ready now (their host has a free slot
    and its delay has passed, their retry time has come); an empty list means none is ready.
    Within a host, higher priority goes first; within a priority, callbacks take turns and each
    callback's requests go first in, first out (``_turns.py``). A released request keeps its place; a
    retried one goes behind the requests of its callback.
    ``next_ready_in()`` says how long until one might be (``None``: nothing is pending).
    Every leased request is given back exactly once, through ``ack()`` (handled: its new
    requests are queued with it; ``ack_many()`` does the same for several, in one trip to a
    frontier's store where it has one), ``retry()`` (pending again, not before ``delay`` seconds) or
    ``fail()`` (given up). ``release()`` returns a leased request untouched, for a stop.
    ``fetched(request)`` says that a leased request's fetch is over: its host's slot is free for
    another request, while the request itself stays leased until it is given back (per-host
    concurrency limits what a host serves at once, not what waits for a parser or a commit).
    ``cooldown(host, seconds)`` holds a host back: none of its requests starts before that many
    seconds from now (a 429, a robots.txt ``Crawl-delay``); other hosts are served meanwhile.

    Durability: ``ack``/``retry``/``fail``/``push`` take effect at once for leasing, but a
    durable frontier makes them permanent only at ``checkpoint()``, in one transaction that also
    records the output file's committed byte offset and the spider's state. ``open()`` returns
    what the last checkpoint recorded (``None`` for a fresh or non-durable frontier); on open,
    every request that was leased is pending again.
    """

    durable: bool  # whether checkpoints outlive the process (the engine fsyncs output if so)

    async def open(self) -> Checkpoint | None: ...

    async def checkpoint(self, output_offset: int, state: bytes, seeded: bool) -> None: ...

    async def push(self, requests: Sequence[Request]) -> PushResult: ...

    async def lease(self, n: int) -> list[Request]: ...

    async def ack(self, request: Request, new_requests: Sequence[Request]) -> PushResult: ...

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult: ...

    async def retry(self, request: Request, delay: float) -> None: ...

    async def fail(self, request: Request, reason: str) -> None: ...

    async def release(self, requests: Sequence[Request]) -> None: ...

    def fetched(self, request: Request) -> None: ...

    def cooldown(self, host: str, seconds: float) -> None: ...

    def next_ready_in(self) -> float | None: ...

    def is_finished(self) -> bool: ...

    def statistics(self) -> FrontierStats: ...

    def __len__(self) -> int: ...

    async def close(self) -> None: ...


async def ack_each(frontier: Frontier, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
    """``ack_many()`` as one ``ack()`` after another, for a frontier with nothing to batch."""
    result = PushResult()
    for request, new_requests in acks:
        result.add(await frontier.ack(request, new_requests))
    return result
