"""Close conditions: stop a crawl cleanly after N items, N pages, N errors or T seconds.

A condition that is met calls the engine's graceful ``stop(reason)``: leasing stops, what is in
flight finishes (so a crawl may end a little past N), output is flushed and checkpointed. The
reason is the summary's "stopped because"; the exit code is that of a finished crawl (0, or 1
if something failed), not the one of a crawl stopped by a signal.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings
    from ._stats import CrawlStats

__all__ = ["STOP_SIGNALS", "CloseConditions", "stop_signals"]

# The signals that stop a crawl gracefully (a second one at once; exit code 3). SIGHUP too: its
# default, to die on the spot, left no summary and no stats file when a terminal closed or an ssh
# session dropped.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_signals() -> tuple[signal.Signals, ...]:
    """The stop signals to handle now: SIGHUP only if it is not ignored (``nohup`` ignores it)."""
    return tuple(
        sig for sig in STOP_SIGNALS if sig != signal.SIGHUP or signal.getsignal(sig) != signal.SIG_IGN
    )


class CloseConditions:
    """The ``close_after_*`` settings; 0 turns one off."""

    def __init__(self, settings: Settings) -> None:
        self.items = settings.close_after_items
        self.pages = settings.close_after_pages
        self.errors = settings.close_after_errors
        self.seconds = settings.close_after_seconds
        self.counting = bool(self.items or self.pages or self.errors)

    def reached(self, stats: CrawlStats) -> str | None:
        """The reason to stop, if a counted condition is met (``None``: go on)."""
        if self.items and stats.items >= self.items:
            return f"close_after_items ({self.items})"
        if self.pages and stats.pages >= self.pages:
            return f"close_after_pages ({self.pages})"
        if self.errors and stats.pages_failed + stats.items_failed >= self.errors:
            return f"close_after_errors ({self.errors})"
        return None

    def start_timer(self, stop: Callable[[str], None]) -> asyncio.TimerHandle | None:
        """Call ``stop`` when ``close_after_seconds`` have passed; cancel the handle at the end."""
        if not self.seconds:
            return None
        seconds = self.seconds
        return asyncio.get_running_loop().call_later(seconds, stop, f"close_after_seconds ({seconds:g} s)")
