"""The main loop of a parser worker process (``python -m crawlkit.parsing``).

It reads a :class:`WorkerConfig`, imports the spider, then answers each batch of parse tasks with a
batch of outcomes, until its input closes (the main process ended or dismissed it). Batches are
answered in the order they come, but one marked urgent is run between two callbacks of the batch
in hand (see ``_WorkerLoop``).

The pipe to the main process is a private copy of fd 1; fd 1 itself is pointed at stderr so that a
callback's ``print()`` shows up on the terminal instead of corrupting the stream.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import ParseError
from ..guards import protect_handlers, redact_text, tune_gc, tune_malloc
from ..spider import SpiderRef, detach_state
from ._callbacks import CallbackRunner, ParseOutcome, ParseTask
from ._sentlinks import SentLinks
from ._taskclock import TaskClock
from ._wire import FrameReader, write_frame

__all__ = ["WorkerConfig", "main"]

# Fingerprints a worker remembers of the links it sent, per generation (two generations, about
# 75 bytes each: at most about 5 MB).
SENT_LINKS_GENERATION = 32_768


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    spider: SpiderRef
    spider_kwargs: dict[str, Any]
    serialize_items: bool
    max_response_size: int
    log_level: str
    depth_limit: int = 0  # links deeper than this are left to the frontier (sentlinks.py)


def make_runner(config: WorkerConfig, *, in_worker: bool) -> CallbackRunner:
    cls = config.spider.load()
    spider = cls(**config.spider_kwargs)
    if in_worker:
        detach_state(spider)  # spider.state lives in the main process; say so if a callback uses it
    return CallbackRunner(
        spider, serialize_items=config.serialize_items, max_response_size=config.max_response_size
    )


def main() -> int:
    # Ctrl-C reaches the whole foreground process group; the main process decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # So does a terminal's hangup (SIGHUP): the main process stops gracefully and needs its workers.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # The main process may ignore SIGTERM while it finishes; a worker should not inherit that.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reader = FrameReader(os.dup(0))
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    first = reader.wait()
    config = first[0] if first else None
    if not isinstance(config, WorkerConfig):
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s[worker {os.getpid()}]: %(message)s",
        datefmt="%H:%M:%S",  # the main process's format (cli._setup_logging): one log, one format
        stream=sys.stderr,
    )
    protect_handlers()  # worker logs carry URLs, and URLs can carry credentials
    try:
        runner = make_runner(config, in_worker=True)
    except Exception as exc:
        write_frame(out, ("init-error", f"{type(exc).__name__}: {exc}"))
        return 1
    tune_gc()
    tune_malloc()
    write_frame(out, ("ready", os.getpid()))
    links = SentLinks(SENT_LINKS_GENERATION, config.depth_limit)
    _WorkerLoop(runner, reader, out, _clock(sys.argv[1:]), links).serve()
    return 0


_Batch = tuple[int, list[ParseTask]]


class _WorkerLoop:
    """The loop inside a worker process; the pool's handle on the process is ``_pool._WorkerProcess``.

    Answers batches in the order they come, except that an urgent one goes first.

    The main process marks a batch urgent when it holds the one page of its callback waiting to
    be parsed: the next link of a chain of pages, typically, which nothing else can replace. It
    is run as soon as the callback running now returns, and answered at once.
    """

    def __init__(
        self,
        runner: CallbackRunner,
        reader: FrameReader,
        out: BinaryIO,
        clock: TaskClock | None,
        links: SentLinks,
    ) -> None:
        self._runner = runner
        self._reader = reader
        self._out = out
        self._clock = clock
        self._links = links
        self._normal: deque[_Batch] = deque()
        self._urgent: deque[_Batch] = deque()

    def serve(self) -> None:
        """Until the input ends (the main process ended or dismissed this worker)."""
        while True:
            self._take(self._reader.poll())
            if not self._urgent and not self._normal:
                frames = self._reader.wait()
                if not frames:
                    return
                self._take(frames)
            if self._urgent:
                self._run(self._urgent.popleft(), preemptible=False)
            else:
                self._run(self._normal.popleft(), preemptible=True)

    def _take(self, frames: list[Any]) -> None:
        for batch_id, urgent, tasks in frames:
            (self._urgent if urgent else self._normal).append((batch_id, tasks))

    def _run(self, batch: _Batch, *, preemptible: bool) -> None:
        batch_id, tasks = batch
        clock = self._clock
        runner = self._runner
        outcomes: list[ParseOutcome] = []
        last = len(tasks) - 1
        for index, task in enumerate(tasks):
            if clock is not None:
                clock.started(batch_id, index)
            try:
                outcome = runner.run(task)
            except Exception as exc:  # a bug of ours: report it on the task, keep the worker
                error = ParseError(redact_text(repr(exc)), task.url)
                outcome = ParseOutcome([], runner.serialize_items, [], error)
            if clock is not None:
                clock.finished()
            outcomes.append(outcome)
            if preemptible and index < last:
                self._take(self._reader.poll())
                while self._urgent:
                    self._run(self._urgent.popleft(), preemptible=False)
        self._send(batch_id, outcomes)

    def _send(self, batch_id: int, outcomes: list[ParseOutcome]) -> None:
        self._links.drop_sent(outcomes)
        try:
            write_frame(self._out, (batch_id, outcomes))
        except Exception as exc:
            # An item or request that cannot be pickled: send the batch back without payloads.
            # Its links never reach the crawl, so none of them is noted as sent.
            why = ParseError(f"callback output cannot be sent to the main process: {exc}", "")
            bare = [ParseOutcome([], o.items_are_json, [], why) for o in outcomes]
            write_frame(self._out, (batch_id, bare))
        else:
            self._links.note_sent(outcomes)


def _clock(argv: list[str]) -> TaskClock | None:
    """The task clock whose fd the main process passed (``--clock-fd N``), if any."""
    if len(argv) >= 2 and argv[0] == "--clock-fd":
        return TaskClock.attach(int(argv[1]))
    return None
