"""Pauses of the whole process: SIGSTOP, Ctrl-Z, a debugger, a virtual machine frozen.

While the process is stopped, servers go on answering and their bytes wait in the kernel; the
clocks go on too. When it runs again, every timer that fell due meanwhile fires before the
waiting bytes are read: requests in flight "time out", and those that were answered report the
pause as their latency. Neither says anything about their hosts, so the engine must not hold them
against the hosts, nor against the requests' retry budgets.

A pause is told apart from a blocked event loop by the loop watchdog's two clocks: its heartbeat
in the loop and its watcher thread. A blocking call in the loop delays the heartbeat only; the
thread goes on running. A stopped process runs neither, so when the thread finds that its own
wait lasted far longer than asked, or the loop finds that the thread has not run for as long,
the process was stopped.

One crawl runs per process and a pause stops all of it, so the record is one object for the
process, :data:`PAUSES`.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["PAUSES", "PauseClock"]

log = logging.getLogger("crawlkit.engine")

# A gap in both clocks longer than this is a pause. Shorter ones happen on a loaded machine and
# hurt nothing: the read timeouts are seconds long.
PAUSE_MIN = 1.0


class PauseClock:
    """When the process was last stopped, and for how long in all.

    ``ended`` is the monotonic time at which the last pause was noticed to have ended: a request
    that started before it was in flight during a pause (:meth:`spanned`).
    """

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0  # seconds
        self.ended = float("-inf")
        self._lock = threading.Lock()
        self._tick = 0.0  # when the watcher thread last ran
        self._watched = 0  # watchers running (the thread ticks only while one is)

    def watching(self, running: bool) -> None:
        """A watcher thread starts (``True``) or stops (``False``) calling :meth:`tick`."""
        with self._lock:
            self._watched += 1 if running else -1
            self._tick = time.monotonic()

    def tick(self, slack: float) -> bool:
        """From the watcher thread, about every ``slack`` seconds: whether a pause just ended."""
        now = time.monotonic()
        with self._lock:
            since, self._tick = self._tick, now
            return now - since > slack + PAUSE_MIN and self._noticed(since, now)

    def spanned(self, started: float) -> bool:
        """Whether a request that started at ``started`` (monotonic) was in flight during a pause.

        Asked in the loop; it looks at the thread's clock too, since after a pause the loop may
        run a little before the thread does.
        """
        if started < self.ended:
            return True
        return self.check() and started < self.ended

    def check(self) -> bool:
        """From the loop: whether a pause just ended that the watcher thread has not told yet."""
        now = time.monotonic()
        if not self._watched or now - self._tick <= PAUSE_MIN:  # a plain read: the usual case
            return False
        with self._lock:
            since = self._tick
            if not self._watched or now - since <= PAUSE_MIN:
                return False
            self._tick = now
            return self._noticed(since, now)

    def _noticed(self, since: float, now: float) -> bool:
        if self.ended >= since:
            return False  # told already, from the other side
        seconds = now - since
        self.count += 1
        self.total += seconds
        self.ended = now
        log.warning(
            "the process was stopped for %.1f s; requests in flight then are retried, without "
            "counting against their retries or their hosts",
            seconds,
        )
        return True


PAUSES = PauseClock()
