"""How a crawl stops: the stop signals, a graceful stop and a forced one, and why it stopped.

A first stop signal (SIGINT, SIGTERM, or SIGHUP: a closed terminal, a dropped ssh session) stops
leasing, returns queued requests to the frontier and lets in-flight work finish, for at most
``shutdown_timeout`` seconds; a second signal, or the timeout, stops at once (exit code 4). A
``close_after_*`` condition, ``close_spider``, the memory ceiling and ``on_no_proxy = "stop"`` stop
gracefully. An output (or frontier database) that cannot be written stops at once: nothing more
can be committed, so waiting for work in flight would only redo it.

The engine reads ``requested`` where it leases and seeds, and drains: its feeder hands the queued
requests back and ends the worker tasks, which finish what they hold or are cancelled here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ._closing import CloseConditions, stop_signals

if TYPE_CHECKING:
    from ..errors import StorageError
    from ..settings import Settings
    from ._stats import CrawlStats

__all__ = ["CrawlStop"]

log = logging.getLogger("crawlkit.engine")


class CrawlStop:
    """One crawl's stop: whether one was asked, whether it was forced, and its reason
    (``stats.stop_reason``, the summary's "stopped because")."""

    def __init__(
        self,
        settings: Settings,
        stats: CrawlStats,
        *,
        wake: Callable[[], None],
        in_flight: Callable[[], int],
        workers: Sequence[asyncio.Task[None]],
        is_committing: Callable[[asyncio.Task[Any]], bool],
    ) -> None:
        self.requested = False  # no more leasing or seeding
        self.forced = False  # work in flight was cancelled
        # Raised by the engine once the crawl has closed (the command prints it after the summary).
        self.storage_error: StorageError | None = None
        self._stats = stats
        self._shutdown_timeout = settings.shutdown_timeout
        self._close = CloseConditions(settings)
        # Whether a close_after_* condition counts pages, items or errors: checked after each page.
        self.counting = self._close.counting
        self._wake = wake  # the feeder, which may be asleep
        self._in_flight = in_flight
        self._workers = workers  # the engine's worker tasks, filled when the crawl starts
        self._is_committing = is_committing
        self._hard_stop_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def signals_handled(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """The stop signals stop this crawl; then the program's own handlers are put back."""
        previous = {sig: signal.getsignal(sig) for sig in stop_signals()}
        for sig in previous:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)  # what the program had before the crawl

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.requested:
            log.warning("second %s: stopping now", sig.name)
            self.stop_now(f"{sig.name} (forced)")
        else:
            in_flight = self._in_flight()
            log.warning(
                "%s: finishing the %d request%s in flight (at most %.0f s); again to stop at once",
                sig.name,
                in_flight,
                "" if in_flight == 1 else "s",
                self._shutdown_timeout,
            )
            self.stop(sig.name)

    def stop(self, reason: str) -> None:
        """Stop leasing; let in-flight work finish within ``shutdown_timeout``."""
        if self.requested:
            return
        self.requested = True
        self._stats.stop_reason = reason
        self._wake()
        loop = asyncio.get_running_loop()
        self._hard_stop_timer = loop.call_later(
            self._shutdown_timeout, self.stop_now, f"{reason} (shutdown timeout)"
        )

    def stop_now(self, reason: str) -> None:
        """Cancel in-flight work; what was not committed is returned to the frontier.

        A worker that is committing is let finish: cutting a commit in half would write items
        whose request is fetched again.
        """
        self.requested = True
        self.forced = True
        self._stats.stop_reason = reason
        self._wake()
        for task in self._workers:
            if not self._is_committing(task):
                task.cancel()

    def output_failed(self, exc: StorageError) -> None:
        """The output or the frontier's database cannot be written: stop at once.

        What the last checkpoint committed stays, and the same command resumes from there. The
        error is raised by the engine's ``run()``, so it is only logged at DEBUG here.
        """
        if self.storage_error is None:
            self.storage_error = exc
            log.debug("%s; stopping the crawl", exc)
        self.stop_now("output error")

    def check_counts(self) -> None:
        """After a page, when ``counting``: stop once a ``close_after_*`` count is reached."""
        if self.requested:
            return
        reason = self._close.reached(self._stats)
        if reason is not None:
            log.info("stopping: %s reached", reason)
            self.stop(reason)

    def start_close_timer(self) -> None:
        """``close_after_seconds``, from the start of the crawl proper."""
        self._close_timer = self._close.start_timer(self.stop)

    def cancel_close_timer(self) -> None:
        """The workers have ended: the time limit must not rename the reason of a stop."""
        if self._close_timer is not None:
            self._close_timer.cancel()

    def cancel_hard_stop(self) -> None:
        """The crawl has ended within ``shutdown_timeout``."""
        if self._hard_stop_timer is not None:
            self._hard_stop_timer.cancel()
