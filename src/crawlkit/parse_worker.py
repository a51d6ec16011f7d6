"""The main loop of a parser worker process (``python -m crawlkit.parse_worker``).

It reads a :class:`WorkerConfig`, imports the spider, then answers each batch of parse tasks with a
batch of outcomes, until its input closes (the main process ended or dismissed it).

The pipe to the main process is a private copy of fd 1; fd 1 itself is pointed at stderr so that a
callback's ``print()`` shows up on the terminal instead of corrupting the stream.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from .callbacks import CallbackRunner, ParseOutcome, ParseTask
from .errors import ParseError
from .gctune import tune_gc
from .loader import SpiderRef
from .malloctune import tune_malloc
from .redact import protect_handlers, redact_text
from .taskclock import TaskClock
from .wire import read_frame, write_frame

__all__ = ["WorkerConfig", "main"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    spider: SpiderRef
    spider_kwargs: dict[str, Any]
    serialize_items: bool
    max_response_size: int
    log_level: str


def make_runner(config: WorkerConfig, *, in_worker: bool) -> CallbackRunner:
    cls = config.spider.load()
    spider = cls(**config.spider_kwargs)
    if in_worker:
        spider._state = None  # spider.state lives in the main process; say so if a callback uses it
    return CallbackRunner(
        spider, serialize_items=config.serialize_items, max_response_size=config.max_response_size
    )


def main() -> int:
    # Ctrl-C reaches the whole foreground process group; the main process decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The main process may ignore SIGTERM while it finishes; a worker should not inherit that.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    inp = os.fdopen(os.dup(0), "rb", buffering=1 << 20)
    out = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    config = read_frame(inp)
    if not isinstance(config, WorkerConfig):
        return 2
    logging.basicConfig(
        level=config.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s[worker {os.getpid()}]: %(message)s",
        stream=sys.stderr,
    )
    protect_handlers()  # worker logs carry URLs, and URLs can carry credentials
    clock = _clock(sys.argv[1:])
    started = 0
    try:
        runner = make_runner(config, in_worker=True)
    except Exception as exc:
        write_frame(out, ("init-error", f"{type(exc).__name__}: {exc}"))
        return 1
    tune_gc()
    tune_malloc()
    write_frame(out, ("ready", os.getpid()))
    while True:
        batch = read_frame(inp)
        if batch is None:
            return 0
        results: list[tuple[int, ParseOutcome]] = []
        for task_id, task in batch:
            assert isinstance(task, ParseTask)
            if clock is not None:
                started += 1
                clock.started(started)
            try:
                outcome = runner.run(task)
            except Exception as exc:  # a bug of ours: report it on the task, keep the worker
                error = ParseError(redact_text(repr(exc)), task.url)
                outcome = ParseOutcome([], runner.serialize_items, [], error)
            if clock is not None:
                clock.finished()
            results.append((task_id, outcome))
        try:
            write_frame(out, results)
        except Exception as exc:
            # An item or request that cannot be pickled: send the batch back without payloads.
            fallback = [
                (
                    task_id,
                    ParseOutcome(
                        [],
                        o.items_are_json,
                        [],
                        ParseError(f"callback output cannot be sent to the main process: {exc}", ""),
                    ),
                )
                for task_id, o in results
            ]
            write_frame(out, fallback)


def _clock(argv: list[str]) -> TaskClock | None:
    """The task clock whose fd the main process passed (``--clock-fd N``), if any."""
    if len(argv) >= 2 and argv[0] == "--clock-fd":
        return TaskClock.attach(int(argv[1]))
    return None


if __name__ == "__main__":
    # Run the copy imported under the package's name, so that pickled WorkerConfig and
    # ParseTask objects resolve to the same classes as in the main process.
    from crawlkit.parse_worker import main as package_main

    sys.exit(package_main())
