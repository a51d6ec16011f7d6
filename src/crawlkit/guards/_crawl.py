"""What watches over a running crawl: the memory ceiling, the event-loop watchdog, log redaction.

The engine enters :func:`crawl_guards` around the crawl proper; each guard is off when its
setting is 0 (the watchdog then still measures pauses of the process, ``_pauses.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from ._memory import MemoryGuard
from ._redact import protect_loggers
from ._watchdog import LoopWatchdog

if TYPE_CHECKING:
    # Types only: the guards watch these parts and must not import them (they import the guards).
    from ..fetch import ByteBudget
    from ..frontier import Frontier
    from ..parsing import Parser
    from ..settings import Settings

__all__ = ["crawl_guards"]


@contextlib.asynccontextmanager
async def crawl_guards(
    settings: Settings,
    *,
    parser: Parser,
    frontier: Frontier,
    budget: ByteBudget,
    stop: Callable[[str], None],
    browser_bytes: Callable[[], int] | None = None,
) -> AsyncIterator[None]:
    """Run the guards while the block runs; ``stop(reason)`` is a graceful stop.

    ``browser_bytes`` (``BrowserFetcher.memory_bytes``) counts a rendering crawl's browser.
    """
    protect_loggers("crawlkit")
    # Runs with loop_stall_warning = 0 too, reporting no stall: it also measures pauses.
    watchdog = LoopWatchdog(settings.loop_stall_warning)
    task: asyncio.Task[None] | None = None
    if settings.max_memory_mb > 0:

        def parse_queue() -> int:
            pool = parser.statistics()
            return pool.queued + pool.in_flight

        guard = MemoryGuard(
            settings.max_memory_mb,
            worker_pids=parser.pids,
            frontier_size=lambda: len(frontier),
            inflight_bytes=lambda: budget.used,
            parse_queue=parse_queue,
            stop=stop,
            browser_bytes=browser_bytes,
        )
        task = asyncio.create_task(guard.run(), name="memory-guard")
    watchdog.start()
    try:
        yield
    finally:
        watchdog.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
