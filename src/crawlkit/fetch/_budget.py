"""A byte budget for response bodies in flight: read from the network, or waiting to be parsed.

Counting requests in flight does not bound memory: sixteen 32 MiB bodies are half a gigabyte. The
fetcher takes a :class:`Hold` per response and grows it before it reads body bytes (by the
Content-Length when one is declared, else chunk by chunk); the engine releases the hold when the
parser is done with the body. A fetch that would pass ``max_inflight_bytes`` waits for room
instead of reading more.

Deadlock freedom: a reader waits only while complete bodies hold budget, and those are always
released (parsing always ends). Readers can block each other only when every byte held belongs to
a body still being read (bodies of unknown length, read chunk by chunk); then the oldest reader
may go past the limit and finish. The budget is therefore passed by at most one body
(``max_response_size``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["ByteBudget", "Hold"]


class ByteBudget:
    """Bytes held by responses in flight; ``limit`` 0 means no limit (only counting)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.complete = 0  # bytes of bodies read in full: released when their parsing ends
        self.peak = 0
        self.waits = 0  # how many times a fetch waited for room
        self._reading: dict[Hold, None] = {}  # holds still reading, oldest first
        self._waiters: list[asyncio.Future[None]] = []

    def hold(self) -> Hold:
        """A new, empty hold for one response."""
        hold = Hold(self)
        self._reading[hold] = None
        return hold

    async def read_held(self, read: Callable[[Hold], Awaitable[bytes]]) -> tuple[bytes, Hold]:
        """A body read by ``read`` under a new hold, given back here if reading fails."""
        hold = self.hold()
        try:
            body = await read(hold)
        except BaseException:
            hold.release()
            raise
        hold.done_reading()
        return body, hold

    def _may_grow(self, hold: Hold, n: int) -> bool:
        if not self.limit or self.used + n <= self.limit:
            return True
        # Past the limit: only if waiting could free nothing, and then only the oldest reader.
        return self.complete == 0 and next(iter(self._reading), None) is hold

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Hold:
    """The bytes one response holds; see the module docs."""

    __slots__ = ("_budget", "size")

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.size = 0

    async def grow(self, n: int) -> None:
        """Take ``n`` more bytes, waiting while the budget is full."""
        budget = self._budget
        if not budget._may_grow(self, n):
            budget.waits += 1
            loop = asyncio.get_running_loop()
            while not budget._may_grow(self, n):
                waiter = loop.create_future()
                budget._waiters.append(waiter)
                await waiter
        budget.used += n
        self.size += n
        if budget.used > budget.peak:
            budget.peak = budget.used

    def shrink(self, n: int) -> None:
        """Give back ``n`` bytes taken in advance but not needed (a short chunk)."""
        n = min(n, self.size)
        self.size -= n
        self._budget.used -= n
        if n:
            self._budget._wake()

    def done_reading(self) -> None:
        """The body is complete: this hold no longer has a reader's right of way."""
        budget = self._budget
        if self in budget._reading:
            del budget._reading[self]
            budget.complete += self.size

    def release(self) -> None:
        """Give everything back (the parser is done, or the fetch failed). Safe to call twice."""
        budget = self._budget
        if self in budget._reading:
            del budget._reading[self]
        else:
            budget.complete -= self.size
        budget.used -= self.size
        self.size = 0
        budget._wake()
