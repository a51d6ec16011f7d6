"""The feeder's hand-off to the engine's worker tasks (``Engine._queue``)."""

from __future__ import annotations

import asyncio
import collections
import contextlib

from ..http import Request

__all__ = ["Handoff"]


class Handoff:
    """The feeder's requests on their way to the worker tasks, first in, first out.

    What ``asyncio.Queue`` does here, without its ``get_running_loop()`` (a ``getpid()``
    syscall in Python 3.11) each time a worker task waits, which is once a page.
    """

    __slots__ = ("_items", "_waiters", "loop")

    def __init__(self) -> None:
        self._items: collections.deque[Request | None] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.loop: asyncio.AbstractEventLoop | None = None  # the crawl's, set by Engine.run()

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Request | None) -> None:
        self._items.append(item)
        self._wake_one()

    def get_nowait(self) -> Request | None:
        return self._items.popleft()  # IndexError when empty

    async def get(self) -> Request | None:
        while not self._items:
            loop = self.loop or asyncio.get_running_loop()
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                # Woken for an item and cancelled before taking it: the item is another's.
                if self._items and not waiter.cancelled():
                    self._wake_one()
                raise
        return self._items.popleft()

    def _wake_one(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
