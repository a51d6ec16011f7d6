"""The event-loop watchdog: finds what blocks the event loop, and says so by name.

Every fetch, commit and checkpoint of a crawl shares one event loop. A pipeline that does blocking
I/O (``requests.get``, ``time.sleep``, a synchronous database driver) stops all of them at once,
and the only symptom is a slow crawl. Two parts find it:

* a heartbeat in the loop, a callback every few tens of milliseconds that measures how late it
  runs: lateness past ``loop_stall_warning`` seconds is a stall, logged when the loop is free
  again, with how long it lasted;
* a thread that looks at the loop while a stall happens: it reads what the engine marked as
  running (:func:`running`: "pipeline app.pipelines:SaveToDb", "spider.opened()") and the loop
  thread's innermost Python frame, which is the line that blocks. A stall that goes on for
  seconds is reported from the thread while it lasts.

The same two clocks tell when the whole process was stopped (``_pauses.py``): then neither ran,
and what looks like a stall is a pause, which is no fault of the loop's and is not reported as one.

The marker is a plain global: one crawl runs per process, and a read from another thread sees
either the old or the new value, both of which are meaningful.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

from ._pauses import PAUSES

__all__ = ["LoopWatchdog", "running"]

log = logging.getLogger("crawlkit.watchdog")

_current: str | None = None

# A stall this long (or this many thresholds) is also reported while it lasts.
_LONG_STALL = 5.0
# The same culprit is named at most once per this many seconds; the others are counted.
_REPEAT_EVERY = 30.0


@contextlib.contextmanager
def running(what: str) -> Iterator[None]:
    """Mark ``what`` (user code: a pipeline, a spider hook) as running in the event loop."""
    global _current
    previous, _current = _current, what
    try:
        yield
    finally:
        _current = previous


@dataclass(slots=True)
class _Sighting:
    beat: int  # the heartbeat that the stall delayed
    what: str | None
    where: str | None
    reported: bool = False  # logged from the thread already (a long stall)


class LoopWatchdog:
    """Heartbeat and watcher thread for one event loop; ``start()`` in the loop, ``stop()`` after.

    ``threshold`` 0 reports no stall; the pauses of the process are measured all the same.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.interval = min(0.05, threshold / 5) if threshold > 0 else 0.05
        # How often the thread looks; it also ticks the pause clock.
        self.poll = max(0.01, threshold / 4) if threshold > 0 else 0.05
        self.stalls = 0
        self.longest = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._handle: asyncio.TimerHandle | None = None
        self._beat = 0
        self._last_beat = 0.0  # monotonic time of the last heartbeat
        self._expected = 0.0
        self._sighting: _Sighting | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_named: dict[tuple[str | None, str | None], float] = {}
        self._unnamed: dict[tuple[str | None, str | None], int] = {}

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._last_beat = time.monotonic()
        self._schedule()
        PAUSES.watching(True)
        self._thread = threading.Thread(target=self._watch, name="crawlkit-loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            PAUSES.watching(False)

    # -- in the loop -------------------------------------------------------------------------

    def _schedule(self) -> None:
        assert self._loop is not None
        self._expected = time.monotonic() + self.interval
        self._handle = self._loop.call_later(self.interval, self._on_beat)

    def _on_beat(self) -> None:
        now = time.monotonic()
        late = now - self._expected
        sighting = self._sighting
        previous = self._last_beat
        self._beat += 1
        self._last_beat = now
        self._sighting = None
        self._schedule()
        # The process stopped since the last beat: no stall of the loop's (told by the thread,
        # or noticed here if the thread has not run since).
        paused = PAUSES.check() or PAUSES.ended > previous
        if self.threshold > 0 and late >= self.threshold and not paused:
            self._stalled(late, sighting)

    def _stalled(self, seconds: float, sighting: _Sighting | None) -> None:
        self.stalls += 1
        self.longest = max(self.longest, seconds)
        what = sighting.what if sighting is not None else None
        where = sighting.where if sighting is not None else None
        if sighting is not None and sighting.reported:
            log.warning("the event loop is free again after %.2f s", seconds)
            return
        key = (what, where)
        now = time.monotonic()
        if now - self._last_named.get(key, -_REPEAT_EVERY) < _REPEAT_EVERY:
            self._unnamed[key] = self._unnamed.get(key, 0) + 1
            return
        self._last_named[key] = now
        again = self._unnamed.pop(key, 0)
        log.warning(
            "the event loop was blocked for %.2f s%s%s; every request waited meanwhile. "
            "Blocking calls in pipelines and spider hooks stall the whole crawl: make them async, "
            "or run them with asyncio.to_thread()%s",
            seconds,
            f" by {what}" if what else "",
            f" (at {where})" if where else "",
            f" ({again} more such stalls in the last {_REPEAT_EVERY:.0f} s)" if again else "",
        )

    # -- in the watcher thread ---------------------------------------------------------------

    def _watch(self) -> None:
        poll = self.poll
        while not self._stop.wait(poll):
            PAUSES.tick(poll)
            if self.threshold <= 0:
                continue
            beat, since = self._beat, time.monotonic() - self._last_beat
            if since < self.interval + self.threshold / 2 or PAUSES.ended > self._last_beat:
                continue  # no stall, or the loop has not beaten since the process was stopped
            sighting = self._sighting
            if sighting is None or sighting.beat != beat:
                sighting = _Sighting(beat, _current, _innermost(self._loop_thread))
                self._sighting = sighting
            elif sighting.what is None and _current is not None:
                sighting.what = _current
            if since >= max(_LONG_STALL, 20 * self.threshold) and not sighting.reported:
                sighting.reported = True
                log.warning(
                    "the event loop has been blocked for %.1f s%s%s; nothing else can run meanwhile",
                    since,
                    f" by {sighting.what}" if sighting.what else "",
                    f" (at {sighting.where})" if sighting.where else "",
                )


_LIBRARY_DIRS = tuple(
    {
        os.path.dirname(__file__),
        os.path.dirname(os.__file__),
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
    }
)


def _innermost(thread_id: int) -> str | None:
    """Where the thread is now: its innermost frame in the user's code (else its innermost one).

    A blocking call usually sits deep in a library (a socket read in a driver); the line worth
    naming is the user's line that called it.
    """
    frame: FrameType | None = sys._current_frames().get(thread_id)
    first: str | None = None
    while frame is not None:
        filename = frame.f_code.co_filename
        described = f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
        first = first or described
        if not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<"):
            return described
        frame = frame.f_back
    return first
