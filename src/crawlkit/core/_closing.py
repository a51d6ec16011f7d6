"""Close conditions: stop a crawl cleanly after N items, N pages, N errors or T seconds.

A condition that is met calls the engine's graceful ``stop(reason)``: leasing stops, what is in
flight finishes (so a crawl may end a little past N), output is flushed and checkpointed. The
reason is the summary's "stopped because"; the exit code is that of a finished crawl (0, or 1
if something failed), not the one of a crawl stopped by a signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings
    from ._stats import CrawlStats

__all__ = ["CloseConditions"]


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
