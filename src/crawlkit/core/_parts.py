"""Pages whose output arrives in parts, and what a checkpoint must wait for because of them.

A callback that yields more than a part's worth (``parsing.PART_REQUESTS``, ``PART_BYTES``)
sends its output to the main process in parts while it runs, so that a page with a million links
never sits in one list. Each part is taken at once: its links are pushed to the frontier and its
items go into the exporter. The page itself is acked, as any page, with its last part.

Exactly-once output on resume rests on one rule: a checkpoint's offset covers only items of
acked pages. Links pushed early break nothing (the frontier drops a link it has seen, so a page
redone after a crash pushes its links again harmlessly), but items written early would be kept by
a checkpoint and written again by the redone page. So a page is *open* from its first part with
items until it is committed (or given up, which keeps what it wrote, as a callback error does),
and a checkpoint waits until no page is open; while it waits, no new page opens, so it cannot
be starved. A page cut off in the middle (a forced stop) stays open for good: no checkpoint is
made after it, and the resume cuts the output back to the last one and redoes the work since.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..http import Request
from ..parsing import ParseOutcome
from ._stats import CrawlStats

__all__ = ["OpenPages", "count_outcome"]


class OpenPages:
    """The pages with items in the output and no ack yet; what lets a checkpoint in."""

    def __init__(self) -> None:
        self._open: set[Request] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()
        self._admit = asyncio.Event()  # cleared while a checkpoint waits for, or runs without, them
        self._admit.set()
        self._checkpoints = 0
        self.torn = False  # a page was cut off with items written: no checkpoint may follow

    def __len__(self) -> int:
        return len(self._open)

    async def open(self, request: Request) -> None:
        """Before the page's first items go into the output (waits while a checkpoint wants in)."""
        if request in self._open:
            return
        await self._admit.wait()
        self._open.add(request)
        self._none_open.clear()

    def close(self, request: Request) -> None:
        """The page was committed or given up: its items belong to the output for good."""
        self._open.discard(request)
        if not self._open:
            self._none_open.set()

    def tear(self, request: Request) -> None:
        """The page was cut off unacked: if it wrote items, nothing more may be checkpointed."""
        if request in self._open:
            self.torn = True
            self._none_open.set()  # a checkpoint waiting for it gives up instead

    @asynccontextmanager
    async def quiet(self) -> AsyncIterator[bool]:
        """Hold new pages back until no page is open; yields whether a checkpoint may be made."""
        self._checkpoints += 1
        self._admit.clear()
        try:
            await self._none_open.wait()
            yield not self.torn
        finally:
            self._checkpoints -= 1
            if not self._checkpoints:
                self._admit.set()


def count_outcome(stats: CrawlStats, outcome: ParseOutcome) -> None:
    """Count what the parser dropped or could not send from a page's output, or a part of it."""
    if outcome.filtered:
        stats.filtered.update(outcome.filtered)
    if outcome.duplicates:
        stats.duplicates += outcome.duplicates
    if outcome.unserializable:
        stats.fail_item("item_not_json", outcome.unserializable)
    if outcome.invalid:
        stats.fail_item("invalid_item", len(outcome.invalid))
    if outcome.unsendable_requests:
        # Each is a request that will never be fetched: a page lost, named in the worker's log.
        for _ in outcome.unsendable_requests:
            stats.fail_page("request_not_picklable")
    if outcome.unsendable_items:
        stats.fail_item("item_not_picklable", outcome.unsendable_items)
