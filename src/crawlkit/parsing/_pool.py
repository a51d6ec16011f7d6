"""The parser pool: worker processes that run spider callbacks, seen from the event loop.

Each worker is a long-lived ``python -m crawlkit.parsing`` process on a pair of pipes.
Tasks queue here and go out in batches: a worker gets whatever is waiting (up to
``parse_batch_size``) whenever it has fewer than two batches in flight, so batches grow with load
and a lone task never waits for company.

Callbacks take turns here as they do in the frontier: a page whose callback has no other page in
the pool (the next page of a pagination chain, typically) does not queue behind the pages of a
busy callback. It goes at once, as an urgent batch of its own, to the worker with the least work,
which runs it as soon as the callback in hand returns. On a loaded crawl a chain of pages then
advances about twice as fast as it did queued behind the batches.

A worker that dies takes its in-flight batches with it. Each task of a lost batch is sent again on
its own; a task that kills a worker on its own is the culprit, and fails with
:class:`ParserCrashed`. The dead worker is replaced and the crawl goes on.

Leaky and hanging callbacks: a worker that has been sent ``max_tasks`` responses is retired (it
gets no more work, finishes what it has, and exits when its input is closed) and a fresh one takes
its place, which frees whatever a callback kept. Each worker writes which task it runs, and since
when, to a :class:`TaskClock`; a callback that runs past ``timeout`` seconds gets its worker
killed. That one response fails with :class:`ParseTimeout`, and the rest of the worker's batches
are parsed again elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ParseError, ParserCrashed, ParseTimeout
from ._callbacks import CallbackRunner, ParseOutcome, ParseTask
from ._taskclock import TaskClock
from ._wire import HEADER, encode, encode_parts
from ._worker import WorkerConfig, make_runner

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["InlineParser", "OnPart", "Parser", "ParserPool", "PoolStatistics", "make_parser"]

# Takes a part of a page's output (a callback that yields more than a part's worth): the pool
# reads nothing more from that worker until it returns, which holds the callback back.
OnPart = Callable[[ParseOutcome], Awaitable[None]]

log = logging.getLogger("crawlkit.parse")

_BATCHES_PER_WORKER = 2


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    workers: int
    queued: int
    in_flight: int
    crashes: int
    restarts: int
    recycled: int = 0  # workers replaced after parse_worker_max_tasks responses
    timeouts: int = 0  # workers killed for a callback past parse_timeout


@dataclass(slots=True)
class _Job:
    task: ParseTask
    future: asyncio.Future[ParseOutcome]
    solo: bool = False  # re-sent alone after its batch was lost with a crashed worker
    on_part: OnPart | None = None
    streamed: bool = False  # parts of its output went out: it cannot be parsed again


@dataclass(eq=False)
class _WorkerProcess:
    """The pool's handle on one worker process: its pipes' reader, the batches it holds, its state.

    Its other end, inside the process, is ``_worker._WorkerLoop``.
    """

    proc: asyncio.subprocess.Process
    batches: dict[int, list[_Job]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    alive: bool = True
    solo: bool = False  # running a suspect alone: nothing else may share its fate
    clock: TaskClock | None = None
    sent: int = 0  # tasks sent to it over its life
    retiring: bool = False  # replaced after max_tasks: gets no more work, then exits
    hung: _Job | None = None  # the job it was killed for (past the parse timeout)


class Parser:
    """What the engine needs of a parser: submit a task, get an outcome."""

    async def start(self) -> None:
        raise NotImplementedError

    async def parse(self, task: ParseTask, on_part: OnPart | None = None) -> ParseOutcome:
        """The outcome of ``task``; a big output comes in parts to ``on_part`` first, if given."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def statistics(self) -> PoolStatistics:
        raise NotImplementedError

    def pids(self) -> list[int]:
        """The worker processes' ids (for the memory ceiling)."""
        return []


class InlineParser(Parser):
    """Runs callbacks in the event loop's thread (``parse_workers = 0``): for debugging only."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._runner: CallbackRunner | None = None

    async def start(self) -> None:
        self._runner = make_runner(self._config, in_worker=False)

    async def parse(self, task: ParseTask, on_part: OnPart | None = None) -> ParseOutcome:
        assert self._runner is not None
        return self._runner.run(task)

    async def close(self) -> None:
        self._runner = None

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(workers=0, queued=0, in_flight=0, crashes=0, restarts=0)


class ParserPool(Parser):
    """A pool of parser worker processes."""

    def __init__(
        self,
        config: WorkerConfig,
        workers: int,
        batch_size: int,
        *,
        max_tasks: int = 0,
        timeout: float = 0.0,
    ) -> None:
        self._config = config
        self._size = workers
        self._batch_size = batch_size
        self._max_tasks = max_tasks  # 0: never recycle
        self._timeout = timeout  # 0: no parse timeout
        self._recycled = 0
        self._timeouts = 0
        self._watcher: asyncio.Task[None] | None = None
        self._workers: list[_WorkerProcess] = []
        self._queue: deque[_Job] = deque()
        self._per_callback: Counter[str | None] = Counter()  # jobs in the pool, by callback
        self._batch_ids = itertools.count()
        self._closing = False
        self._crashes = 0
        self._restarts = 0
        self._spawning: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # kept: each lookup is a getpid() in Python 3.11
        # One worker first, the others once it is up. At start this process imports the HTTP
        # client meanwhile, and on two cores three processes starting at once put the first
        # request ~40 ms later than two do; the first pages do not need every worker.
        self._workers.append(await self._spawn())
        for _ in range(self._size - 1):
            self._start_worker(None, restart=False)
        if self._timeout > 0:
            self._watcher = asyncio.create_task(self._watch_hangs(), name="parser-timeouts")

    async def _spawn(self) -> _WorkerProcess:
        clock = TaskClock.create() if self._timeout > 0 else None
        extra = ["--clock-fd", str(clock.fileno())] if clock is not None else []
        try:
            proc = await _launch(
                sys.executable,
                "-m",
                "crawlkit.parsing",
                *extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                # Its own session: a terminal's Ctrl-C goes to the main process alone, which then
                # decides how to stop. A worker exits by itself when its input closes.
                start_new_session=True,
                pass_fds=(clock.fileno(),) if clock is not None else (),
            )
        except BaseException:
            if clock is not None:
                clock.close()
            raise
        try:
            return await self._handshake(proc, clock)
        except BaseException:
            if clock is not None:
                clock.close()
            raise

    async def _handshake(self, proc: asyncio.subprocess.Process, clock: TaskClock | None) -> _WorkerProcess:
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
        worker = _WorkerProcess(proc, clock=clock)
        worker.reader = asyncio.create_task(self._read_results(worker), name=f"parser-{proc.pid}")
        return worker

    async def parse(self, task: ParseTask, on_part: OnPart | None = None) -> ParseOutcome:
        future: asyncio.Future[ParseOutcome] = (self._loop or asyncio.get_running_loop()).create_future()
        job = _Job(task, future, on_part=on_part)
        callback = task.request.callback
        waiting = self._per_callback
        alone = callback not in waiting
        waiting[callback] += 1
        try:
            if not (alone and self._send_urgent(job)):
                self._queue.append(job)
                self._dispatch()
            return await future
        finally:
            waiting[callback] -= 1
            if not waiting[callback]:
                del waiting[callback]

    def _send_urgent(self, job: _Job) -> bool:
        """Send a job ahead of the queue, to the worker with the fewest tasks in hand."""
        best: _WorkerProcess | None = None
        least = 0
        for worker in self._workers:
            if not self._can_take(worker):
                continue
            in_hand = sum(len(batch) for batch in worker.batches.values())
            if best is None or in_hand < least:
                best, least = worker, in_hand
        if best is None:
            return False
        self._send(best, [job], urgent=True)
        return True

    @staticmethod
    def _can_take(worker: _WorkerProcess) -> bool:
        stdin = worker.proc.stdin
        assert stdin is not None
        return (
            worker.alive
            and not worker.solo
            and not worker.retiring
            # Its input closed: the worker is dying, and its reader has not seen the end of
            # its output yet. Writing would raise (uvloop) or lose the batch with the worker.
            and not stdin.is_closing()
        )

    def _send(self, worker: _WorkerProcess, batch: list[_Job], *, urgent: bool = False) -> None:
        stdin = worker.proc.stdin
        assert stdin is not None
        batch_id = next(self._batch_ids)
        try:
            frame = encode_parts((batch_id, urgent, [job.task for job in batch]))
        except Exception:
            batch = _sendable(batch)  # unpicklable meta or cb_kwargs: those tasks alone fail
            if not batch:
                return
            frame = encode_parts((batch_id, urgent, [job.task for job in batch]))
        worker.solo = batch[0].solo
        worker.batches[batch_id] = batch
        stdin.writelines(frame)  # one vectored write of the header and the pickle: no copy to join them
        worker.sent += len(batch)
        if self._max_tasks and worker.sent >= self._max_tasks:
            self._retire(worker)

    def _dispatch(self) -> None:
        queue = self._queue
        for worker in self._workers:
            while queue and len(worker.batches) < _BATCHES_PER_WORKER and self._can_take(worker):
                if queue[0].solo and worker.batches:
                    break  # a suspect waits for a worker with nothing else in flight
                self._send(worker, self._take_batch())
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

    async def _read_results(self, worker: _WorkerProcess) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        try:
            while True:
                batch_id, index, outcomes, is_part = await _read(stdout)
                batch = worker.batches[batch_id]
                if is_part:
                    await self._take_part(batch[index], outcomes[0])
                    continue
                for job, outcome in zip(batch[index:], outcomes, strict=False):
                    if not job.future.done():
                        job.future.set_result(outcome)
                if index + len(outcomes) < len(batch):
                    continue  # the rest of the batch comes in frames of its own
                del worker.batches[batch_id]
                worker.solo = False
                if worker.retiring and not worker.batches:
                    _close_input(worker)  # done with its last batch: it exits, and we see EOF
                self._dispatch()
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            pass
        await self._on_worker_exit(worker)

    @staticmethod
    async def _take_part(job: _Job, part: ParseOutcome) -> None:
        job.streamed = True
        if job.on_part is None or job.future.done():
            return
        try:
            await job.on_part(part)
        except Exception:  # the taker's own errors are its to report; this reader goes on
            log.exception("internal error while taking a part of the output of %s", job.task.url)

    async def _on_worker_exit(self, worker: _WorkerProcess) -> None:
        worker.alive = False
        code = await worker.proc.wait()
        if worker.clock is not None:
            worker.clock.close()
        if worker in self._workers:
            self._workers.remove(worker)
        # Jobs answered already (a batch answered in several frames) are not lost.
        lost = [job for batch in worker.batches.values() for job in batch if not job.future.done()]
        worker.batches.clear()
        if self._closing:
            for job in lost:
                if not job.future.done():
                    job.future.set_result(_failed(job.task, "the parser pool closed", ParseError))
            return
        if worker.hung is not None:
            self._timed_out(worker, lost)
            return
        if worker.retiring and not lost:
            self._recycled += 1
            log.debug("parser worker %d recycled after %d responses", worker.proc.pid, worker.sent)
            return
        self._crashes += 1
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        # Part of its output is in the crawl already (items written, links queued): parsing it
        # again would write those items twice. It was the page being parsed, the likely culprit.
        for job in [job for job in lost if job.streamed]:
            lost.remove(job)
            why = f"parser worker died ({how}) in the callback, after part of its output"
            log.error("%s: %s", job.task.url, why)
            job.future.set_result(_failed(job.task, why, ParserCrashed))
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
        if not worker.retiring:  # a retiring worker's replacement is on its way already
            self._start_worker(None)

    def _timed_out(self, worker: _WorkerProcess, lost: list[_Job]) -> None:
        """The worker was killed for a callback past the timeout: fail that one, redo the rest."""
        culprit = worker.hung
        assert culprit is not None
        self._timeouts += 1
        log.error(
            "parser worker killed: the callback for %s ran longer than parse_timeout (%g s)",
            culprit.task.url,
            self._timeout,
        )
        if not culprit.future.done():
            culprit.future.set_result(
                _failed(
                    culprit.task,
                    f"the callback ran longer than parse_timeout ({self._timeout:g} s); "
                    "its parser worker was killed",
                    ParseTimeout,
                )
            )
        # The others did nothing wrong: they go back to the front of the queue as they were.
        for job in reversed([job for job in lost if job is not culprit]):
            self._queue.appendleft(job)
        if not worker.retiring:
            self._start_worker(None)

    def _retire(self, worker: _WorkerProcess) -> None:
        worker.retiring = True
        self._start_worker(worker)

    def _start_worker(self, retiring: _WorkerProcess | None, *, restart: bool = True) -> None:
        spawn = asyncio.create_task(self._add_worker(retiring, restart))
        self._spawning.add(spawn)
        spawn.add_done_callback(self._spawning.discard)

    async def _add_worker(self, retiring: _WorkerProcess | None, restart: bool) -> None:
        """Start a worker in place of a dead one or of ``retiring`` (recycled after max_tasks),
        or, with ``restart`` False, one of the pool's own that ``start()`` left to start later."""
        try:
            worker = await self._spawn()
        except ParseError as exc:
            log.error("cannot %s a parser worker: %s", "replace" if restart else "start", exc)
            if retiring is not None and retiring.alive and not self._closing:
                retiring.retiring = False  # better a leaky worker than none
                self._dispatch()
            if not self._workers:
                self._fail_queue(str(exc))
            return
        if self._closing:
            await _stop(worker)
            return
        if restart and retiring is None:
            self._restarts += 1
        self._workers.append(worker)
        self._dispatch()

    async def _watch_hangs(self) -> None:
        """Kill a worker whose current callback has run past the timeout (see TaskClock)."""
        period = min(1.0, self._timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for worker in list(self._workers):
                clock = worker.clock
                if clock is None or not worker.alive or worker.hung is not None or not worker.batches:
                    continue
                batch_id, index, started = clock.read()
                if not started or now - started <= self._timeout:
                    continue
                jobs = worker.batches.get(batch_id, [])
                if 0 <= index < len(jobs):
                    worker.hung = jobs[index]
                    with contextlib.suppress(ProcessLookupError):
                        worker.proc.kill()

    def _fail_queue(self, why: str) -> None:
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_result(_failed(job.task, why, ParseError))

    async def close(self) -> None:
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        # A worker still starting is not waited for (a tiny crawl would end ~0.1 s later for a
        # worker it never used): its start is cancelled, which kills and reaps the process.
        for spawn in self._spawning:
            spawn.cancel()
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
            recycled=self._recycled,
            timeouts=self._timeouts,
        )

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers if w.alive]


async def _read(stream: asyncio.StreamReader) -> Any:
    header = await stream.readexactly(HEADER.size)
    (size,) = HEADER.unpack(header)
    return pickle.loads(await stream.readexactly(size))


def _close_input(worker: _WorkerProcess) -> None:
    stdin = worker.proc.stdin
    if stdin is not None and not stdin.is_closing():
        stdin.close()  # the worker exits when its input ends


async def _launch(*argv: str, **options: Any) -> asyncio.subprocess.Process:
    """``create_subprocess_exec()`` that a cancellation does not cut in half, which would leak
    the process: cancelled, it lets the launch finish, kills and reaps the process, and re-raises."""
    launch = asyncio.ensure_future(asyncio.create_subprocess_exec(*argv, **options))
    try:
        return await asyncio.shield(launch)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # a launch that failed started nothing
            proc = await launch
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        raise


async def _stop(worker: _WorkerProcess, grace: float = 5.0) -> None:
    proc = worker.proc
    _close_input(worker)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    if worker.reader is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await worker.reader


def _sendable(batch: list[_Job]) -> list[_Job]:
    """The jobs of ``batch`` whose task can be pickled; the others fail, each with its reason."""
    kept = []
    for job in batch:
        try:
            pickle.dumps(job.task, protocol=5)
        except Exception as exc:
            if not job.future.done():
                job.future.set_result(_failed(job.task, f"cannot send to a parser: {exc}"))
        else:
            kept.append(job)
    return kept


def _failed(task: ParseTask, why: str, kind: type[ParseError] = ParseError) -> ParseOutcome:
    return ParseOutcome([], False, [], kind(why, task.url))


def make_parser(config: WorkerConfig, settings: Settings) -> Parser:
    """The crawl's parser: a pool of ``parse_workers`` processes, or callbacks inline (0)."""
    workers = settings.effective_parse_workers
    if not workers:
        return InlineParser(config)
    return ParserPool(
        config,
        workers,
        settings.parse_batch_size,
        max_tasks=settings.parse_worker_max_tasks,
        timeout=settings.parse_timeout,
    )
