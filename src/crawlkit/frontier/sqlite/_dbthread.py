"""The SQLite frontier's database thread: one thread, one connection, jobs run in order.

Lighter than an executor: a job costs the event loop one queue put and one wake-up, and a job
that nobody waits for (buffered writes, inserts whose outcome is known) costs no wake-up at all.

Once a job has failed, the jobs after it fail with the same error without running (only those
sent with ``always``, such as closing the database, still run). A job that nobody waits for may
fail while later ones are already queued: a checkpoint among them must not commit a transaction
that lost that job's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DatabaseThread", "Job", "wait_for"]


class Job:
    """One piece of work for the database thread, and its outcome."""

    __slots__ = ("always", "args", "done", "error", "fn", "loop", "result", "waiter")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop | None,
        always: bool = False,
    ):
        self.fn = fn
        self.args = args
        self.loop = loop  # None: nobody waits for it
        self.always = always  # runs even after a job has failed
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None


def _finish(job: Job) -> None:
    job.done = True
    waiter = job.waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class DatabaseThread:
    """Runs jobs one at a time, in the order they were sent."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.failure: BaseException | None = None  # of the first job that failed
        self._thread = threading.Thread(target=self._run, name="crawlkit-frontier-db", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self.failure is not None and not job.always:
                job.error = self.failure
            else:
                try:
                    job.result = job.fn(*job.args)
                except BaseException as exc:
                    job.error = exc
                    self.failure = self.failure or exc
            if job.loop is None:
                job.done = True  # read by the event loop without a wake-up: a plain flag will do
                continue
            with contextlib.suppress(RuntimeError):  # a closed event loop: nobody waits any more
                job.loop.call_soon_threadsafe(_finish, job)

    def send(self, fn: Callable[..., Any], *args: Any, wait: bool = True, always: bool = False) -> Job:
        job = Job(fn, args, asyncio.get_running_loop() if wait else None, always)
        self._jobs.put(job)
        return job

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()


async def wait_for(job: Job) -> bool:
    """Wait for a job to end, even if cancelled meanwhile; return whether it was."""
    assert job.loop is not None
    cancelled = False
    while not job.done:
        job.waiter = job.loop.create_future()
        try:
            await job.waiter
        except asyncio.CancelledError:
            cancelled = True
    return cancelled
