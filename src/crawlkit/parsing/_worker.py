"""The main loop of a parser worker process (``python -m crawlkit.parsing``).

It reads a :class:`WorkerConfig`, imports the spider, then answers each batch of parse tasks with a
batch of outcomes, until its input closes (the main process ended or dismissed it). Batches are
answered in the order they come, but one marked urgent is run between two callbacks of the batch
in hand (see ``_WorkerLoop``). A callback's output goes back in bounded parts as it is yielded.

The pipe to the main process is a private copy of fd 1; fd 1 itself is pointed at stderr so that a
callback's ``print()`` shows up on the terminal instead of corrupting the stream.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import ParseError
from ..guards import protect_handlers, redact_text, tune_gc, tune_malloc
from ..http import Request
from ..spider import SpiderRef, detach_state
from ._callbacks import PART_BYTES, PART_REQUESTS, CallbackRunner, ParseOutcome, ParseTask
from ._sentlinks import SentLinks
from ._taskclock import TaskClock
from ._wire import FrameReader, encode, write_frame

__all__ = ["WorkerConfig", "main"]

log = logging.getLogger("crawlkit.parse")

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
    depth_limit: int = 0  # links deeper than this are left to the frontier (_sentlinks.py)


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


@dataclass(slots=True)
class _Held:
    """Outcomes of a batch that are finished and not sent yet: those of tasks ``start`` on."""

    start: int
    outcomes: list[ParseOutcome] = field(default_factory=list)
    count: int = 0  # their requests and items
    size: int = 0  # their items' bytes, as JSON lines


class _WorkerLoop:
    """The loop inside a worker process; the pool's handle on the process is ``_pool._WorkerProcess``.

    Answers batches in the order they come, except that an urgent one goes first.

    The main process marks a batch urgent when it holds the one page of its callback waiting to
    be parsed: the next link of a chain of pages, typically, which nothing else can replace. It
    is run as soon as the callback running now returns, and answered at once.

    What goes back is bounded: a batch's outcomes go in one frame unless they hold more than a
    part's worth of requests or items (``PART_REQUESTS``, ``PART_BYTES``), and a callback that
    yields more than that sends its output in parts as it goes (``CallbackRunner.spill``). Frames
    are ``(batch_id, index, outcomes, is_part)``: the finished outcomes of the batch's tasks
    ``index`` on, or one part of task ``index``, whose outcome is still to come. A write blocks
    while the main process has not read the frames before it, which holds the callback back.
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
        self._held: dict[int, _Held] = {}  # by batch id: an urgent batch may run inside another
        self._running = (0, 0)  # the batch id and index of the task whose callback runs
        runner.spill = self._send_part

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
        held = self._held[batch_id] = _Held(0)
        last = len(tasks) - 1
        for index, task in enumerate(tasks):
            if clock is not None:
                clock.started(batch_id, index)
            self._running = (batch_id, index)
            try:
                outcome = runner.run(task)
            except Exception as exc:  # a bug of ours: report it on the task, keep the worker
                error = ParseError(redact_text(repr(exc)), task.url)
                outcome = ParseOutcome([], runner.serialize_items, [], error)
            if clock is not None:
                clock.finished()
            held.outcomes.append(outcome)
            items = outcome.items
            held.count += len(outcome.requests) + len(items)
            if outcome.items_are_json:
                held.size += sum(map(len, items))
            if held.count >= PART_REQUESTS or held.size >= PART_BYTES:
                self._send_held(batch_id, held)
            if preemptible and index < last:
                self._take(self._reader.poll())
                while self._urgent:
                    self._run(self._urgent.popleft(), preemptible=False)
        del self._held[batch_id]
        if held.outcomes:
            self._send_held(batch_id, held)

    def _send_held(self, batch_id: int, held: _Held) -> None:
        outcomes = held.outcomes
        self._send(batch_id, held.start, outcomes, is_part=False)
        held.start += len(outcomes)
        held.outcomes = []
        held.count = held.size = 0

    def _send_part(self, part: ParseOutcome) -> None:
        """A part of the running callback's output, sent while the callback goes on."""
        # Finished pages go first: the main process commits a page only once it has them, and a
        # checkpoint may be waiting for that commit before it lets this part's items in.
        for batch_id, held in list(self._held.items()):
            if held.outcomes:
                self._send_held(batch_id, held)
        batch_id, index = self._running
        self._send(batch_id, index, [part], is_part=True)

    def _send(self, batch_id: int, index: int, outcomes: list[ParseOutcome], *, is_part: bool) -> None:
        self._links.drop_sent(outcomes)
        try:
            frame = encode((batch_id, index, outcomes, is_part))
        except Exception:
            # A request or item that cannot be pickled (a lock in its meta, say): it alone is
            # dropped, named in the log and counted; the rest of its page goes on.
            frame = encode((batch_id, index, [_sendable(o) for o in outcomes], is_part))
        self._out.write(frame)
        self._out.flush()
        # Only links that reached the main process are remembered (an unsendable one was dropped).
        self._links.note_sent(outcomes)


def _sendable(outcome: ParseOutcome) -> ParseOutcome:
    """``outcome`` without the requests and items that cannot be pickled (in place)."""
    try:
        pickle.dumps(outcome, protocol=5)
        return outcome
    except Exception:
        pass
    requests: list[Request] = []
    for request in outcome.requests:
        try:
            pickle.dumps(request, protocol=5)
        except Exception as exc:
            log.error("request for %s cannot be sent to the main process, dropped: %s", request.url, exc)
            outcome.unsendable_requests = [*(outcome.unsendable_requests or ()), request.url]
        else:
            requests.append(request)
    items: list[Any] = []
    for item in outcome.items:
        try:
            pickle.dumps(item, protocol=5)
        except Exception as exc:
            log.error("item cannot be sent to the main process, dropped: %s: %.200r", exc, item)
            outcome.unsendable_items += 1
        else:
            items.append(item)
    outcome.requests = requests
    outcome.items = items
    try:
        pickle.dumps(outcome, protocol=5)
    except Exception as exc:  # not its requests or items: something of ours
        why = ParseError(f"callback output cannot be sent to the main process: {exc}", "")
        return ParseOutcome([], outcome.items_are_json, [], why)
    return outcome


def _clock(argv: list[str]) -> TaskClock | None:
    """The task clock whose fd the main process passed (``--clock-fd N``), if any."""
    if len(argv) >= 2 and argv[0] == "--clock-fd":
        return TaskClock.attach(int(argv[1]))
    return None
