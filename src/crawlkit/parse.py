"""The parser pool: worker processes that run spider callbacks, seen from the event loop.

Each worker is a long-lived ``python -m crawlkit.parse_worker`` process on a pair of pipes.
Tasks queue here and go out in batches: a worker gets whatever is waiting (up to
``parse_batch_size``) whenever it has fewer than two batches in flight, so batches grow with load
and a lone task never waits for company.

A worker that dies takes its in-flight batches with it. Each task of a lost batch is sent again on
its own; a task that kills a worker on its own is the culprit, and fails with
:class:`ParserCrashed`. The dead worker is replaced and the crawl goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .callbacks import CallbackRunner, ParseOutcome, ParseTask
from .errors import ParseError, ParserCrashed
from .parse_worker import WorkerConfig, make_runner
from .wire import HEADER, encode

__all__ = ["InlineParser", "Parser", "ParserPool", "PoolStatistics"]

log = logging.getLogger("crawlkit.parse")

_BATCHES_PER_WORKER = 2


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    workers: int
    queued: int
    in_flight: int
    crashes: int
    restarts: int


@dataclass(slots=True)
class _Job:
    task: ParseTask
    future: asyncio.Future[ParseOutcome]
    solo: bool = False  # re-sent alone after its batch was lost with a crashed worker


@dataclass(eq=False)
class _Worker:
    proc: asyncio.subprocess.Process
    batches: dict[int, list[_Job]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True
    solo: bool = False  # running a suspect alone: nothing else may share its fate


class Parser:
    """What the engine needs of a parser: submit a task, get an outcome."""

    async def start(self) -> None:
        raise NotImplementedError

    async def parse(self, task: ParseTask) -> ParseOutcome:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def statistics(self) -> PoolStatistics:
        raise NotImplementedError


class InlineParser(Parser):
    """Runs callbacks in the event loop's thread (``parse_workers = 0``): for debugging only."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._runner: CallbackRunner | None = None

    async def start(self) -> None:
        self._runner = make_runner(self._config, in_worker=False)

    async def parse(self, task: ParseTask) -> ParseOutcome:
        assert self._runner is not None
        return self._runner.run(task)

    async def close(self) -> None:
        self._runner = None

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(workers=0, queued=0, in_flight=0, crashes=0, restarts=0)


class ParserPool(Parser):
    """A pool of parser worker processes."""

    def __init__(self, config: WorkerConfig, workers: int, batch_size: int) -> None:
        self._config = config
        self._size = workers
        self._batch_size = batch_size
        self._workers: list[_Worker] = []
        self._queue: deque[_Job] = deque()
        self._batch_ids = itertools.count()
        self._closing = False
        self._crashes = 0
        self._restarts = 0
        self._spawning: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        workers = await asyncio.gather(*(self._spawn() for _ in range(self._size)))
        self._workers.extend(workers)

    async def _spawn(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "crawlkit.parse_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C goes to the main process alone, which then
            # decides how to stop. A worker exits by itself when its input closes.
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(encode(self._config))
            await proc.stdin.drain()
            hello = await _read(proc.stdout)
        except (asyncio.IncompleteReadError, ConnectionError):
            code = await proc.wait()
            raise ParseError(f"parser worker exited with code {code} while starting") from None
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        if hello[0] != "ready":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise ParseError(f"parser worker could not load the spider: {hello[1]}")
        worker = _Worker(proc)
        worker.reader = asyncio.create_task(self._read_results(worker), name=f"parser-{proc.pid}")
        return worker

    async def parse(self, task: ParseTask) -> ParseOutcome:
        future: asyncio.Future[ParseOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(task, future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        queue = self._queue
        for worker in self._workers:
            while queue and worker.alive and not worker.solo and len(worker.batches) < _BATCHES_PER_WORKER:
                if queue[0].solo and worker.batches:
                    break  # a suspect waits for a worker with nothing else in flight
                batch = self._take_batch()
                worker.solo = batch[0].solo
                batch_id = next(self._batch_ids)
                try:
                    frame = encode([(i, job.task) for i, job in enumerate(batch)])
                except Exception as exc:  # unpicklable meta or cb_kwargs: fail those tasks
                    worker.solo = False
                    for job in batch:
                        if not job.future.done():
                            job.future.set_result(_failed(job.task, f"cannot send to a parser: {exc}"))
                    continue
                worker.batches[batch_id] = batch
                assert worker.proc.stdin is not None
                worker.proc.stdin.write(frame)
            if not queue:
                return

    def _take_batch(self) -> list[_Job]:
        queue = self._queue
        first = queue.popleft()
        if first.solo:
            return [first]
        batch = [first]
        while queue and len(batch) < self._batch_size and not queue[0].solo:
            batch.append(queue.popleft())
        return batch

    async def _read_results(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        try:
            while True:
                results = await _read(stdout)
                # Batches come back in the order they were sent.
                batch_id = next(iter(worker.batches))
                batch = worker.batches.pop(batch_id)
                worker.solo = False
                for task_id, outcome in results:
                    future = batch[task_id].future
                    if not future.done():
                        future.set_result(outcome)
                self._dispatch()
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            pass
        await self._on_worker_exit(worker)

    async def _on_worker_exit(self, worker: _Worker) -> None:
        worker.alive = False
        code = await worker.proc.wait()
        if worker in self._workers:
            self._workers.remove(worker)
        lost = [job for batch in worker.batches.values() for job in batch]
        worker.batches.clear()
        if self._closing:
            for job in lost:
                if not job.future.done():
                    job.future.set_result(_failed(job.task, "the parser pool closed", ParseError))
            return
        self._crashes += 1
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        # A job is the culprit only when it was the one job on the worker; the others are
        # suspects, each re-parsed alone on a worker of its own.
        culprits = lost if len(lost) == 1 else []
        for job in culprits:
            log.error("parser worker died (%s) while parsing %s", how, job.task.url)
            if not job.future.done():
                job.future.set_result(
                    _failed(job.task, f"parser worker died ({how}) in the callback", ParserCrashed)
                )
        suspects = [job for job in lost if job not in culprits]
        if suspects:
            log.warning("parser worker died (%s); re-parsing its %d pages one by one", how, len(suspects))
        for job in reversed(suspects):
            job.solo = True
            self._queue.appendleft(job)
        spawn = asyncio.create_task(self._replace())
        self._spawning.add(spawn)
        spawn.add_done_callback(self._spawning.discard)

    async def _replace(self) -> None:
        try:
            worker = await self._spawn()
        except ParseError as exc:
            log.error("cannot replace a parser worker: %s", exc)
            if not self._workers:
                self._fail_queue(str(exc))
            return
        if self._closing:
            await _stop(worker)
            return
        self._restarts += 1
        self._workers.append(worker)
        self._dispatch()

    def _fail_queue(self, why: str) -> None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_result(_failed(job.task, why, ParseError))

    async def close(self) -> None:
        self._closing = True
        # A replacement still starting is let finish (it takes a fraction of a second) and is
        # then stopped by _replace(); cancelling a process launch half-way leaks the process.
        await asyncio.gather(*list(self._spawning), return_exceptions=True)
        await asyncio.gather(*(_stop(w) for w in list(self._workers)), return_exceptions=True)
        self._fail_queue("the parser pool closed")

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            workers=len(self._workers),
            queued=len(self._queue),
            in_flight=sum(len(b) for w in self._workers for b in w.batches.values()),
            crashes=self._crashes,
            restarts=self._restarts,
        )


async def _read(stream: asyncio.StreamReader) -> Any:
    header = await stream.readexactly(HEADER.size)
    (size,) = HEADER.unpack(header)
    return pickle.loads(await stream.readexactly(size))


async def _stop(worker: _Worker, grace: float = 5.0) -> None:
    proc = worker.proc
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()  # the worker exits when its input ends
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if worker.reader is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.reader


def _failed(task: ParseTask, why: str, kind: type[ParseError] = ParseError) -> ParseOutcome:
    return ParseOutcome([], False, [], kind(why, task.url))
