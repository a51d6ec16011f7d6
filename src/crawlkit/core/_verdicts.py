"""What the engine does with a downloader's verdict, when an attempt gave no page to parse.

A request ends unparsed (robots.txt, a filtered redirect, a binary file: no failure; a
re-crawl's unchanged page, whose stored items are committed as a callback's would be), goes back
to the frontier to be tried again, or fails for good: counted, announced to ``request_failed``
listeners, and handed to its errback, whose outcome is committed as a callback's would be.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..errors import FetchError
from ..fetch import DEFER, PAUSED, Downloader, Ended, Failed, Halt, Replaced, Rotated, Unchanged, Verdict
from ..frontier import Frontier
from ..http import Failure, Request
from ..parsing import ParseOutcome, ParseTask, filter_reason
from ._commit import CommitStep
from ._hooks import CrawlSignals
from ._stats import CrawlStats

if TYPE_CHECKING:
    from ..fetch import Fetched

__all__ = ["VerdictActions"]

log = logging.getLogger("crawlkit.engine")

# Runs a task through the parser pool for ``request`` (an errback's, here).
Parse = Callable[[Request, ParseTask], Awaitable[ParseOutcome]]


class VerdictActions:
    """Acts on the verdicts of one crawl's downloader."""

    def __init__(
        self,
        frontier: Frontier,
        stats: CrawlStats,
        commits: CommitStep,
        downloader: Downloader,
        signals: CrawlSignals,
        parse: Parse,
        stop: Callable[[str], None] | None = None,
    ) -> None:
        self._frontier = frontier
        self._stats = stats
        self._commits = commits
        self._downloader = downloader
        self._signals = signals
        self._parse = parse
        self._stop = stop

    async def act_on(self, request: Request, verdict: Verdict) -> ParseOutcome | None:
        """What the verdict asks: the outcome to commit (an errback's, or an unchanged page's stored
        items), or None."""
        if verdict is PAUSED:
            await self._retry_after_pause(request)
            return None
        if isinstance(verdict, Rotated):
            await self._rotate(request, verdict)
            return None
        if isinstance(verdict, Halt):
            await self._frontier.release([request])
            if self._stop is not None:
                self._stop(verdict.reason)
            return None
        if isinstance(verdict, Failed):
            if verdict.retry_in is not None:
                await self._retry(request, verdict.error, verdict.retry_in)
                return None
            return await self._failed_for_good(request, verdict.error, verdict.response)
        if isinstance(verdict, Unchanged):
            # Written as they were stored: after the pipelines, which they passed then.
            return ParseOutcome(verdict.lines, True, [])
        if isinstance(verdict, Ended):
            await self.end_unparsed(request, verdict.reason)
        elif isinstance(verdict, Replaced):
            replacement = verdict.request
            if filter_reason(None, replacement) is None:  # fingerprinted here, as a start request
                log.debug("%s replaced by a middleware with %s", request.url, replacement.url)
                self._stats.not_parsed["replaced"] += 1
                self._stats.count_push(await self._commits.ack_unparsed(request, (replacement,)))
            else:
                log.warning(
                    "%s: a middleware replaced it with %s, not fetchable", request.url, replacement.url
                )
                await self.end_unparsed(request, "replaced_unfetchable")
        return None

    async def end_unparsed(self, request: Request, reason: str | None) -> None:
        """A request that ends with no callback: robots.txt, a filtered redirect, a binary file.

        ``DEFER`` hands it back to the frontier unstarted; any other reason is counted as a link
        not followed. Either way it is no failure.
        """
        if reason == DEFER:
            await self._frontier.release([request])
            return
        if reason is not None:
            self._stats.filtered[reason] += 1
        await self._commits.ack_unparsed(request)

    async def _retry(self, request: Request, error: FetchError, delay: float) -> None:
        request.attempt += 1
        stats = self._stats
        stats.retries += 1
        stats.retry_reasons[error.reason] += 1
        log.info("retrying %s in %.1f s (attempt %d): %s", request.url, delay, request.attempt + 1, error)
        await self._frontier.retry(request, delay)

    async def _rotate(self, request: Request, verdict: Rotated) -> None:
        """Again as someone else (a fresh session, another proxy), using none of its retries."""
        stats = self._stats
        stats.retries += 1
        stats.retry_reasons[verdict.error.reason] += 1
        await self._frontier.retry(request, verdict.delay)

    async def _failed_for_good(
        self, request: Request, failure: FetchError, response: Fetched | None
    ) -> ParseOutcome | None:
        """Count the failure; run the request's errback if it has one (its outcome is committed
        as a callback's, which acks the request), else fail the request in the frontier."""
        log.warning("failed %s: %s", request.url, failure)
        stats = self._stats
        stats.fail_page(failure.reason, request.url)
        if request.depth == 0:
            stats.start_failed(request.url, f"{failure.reason}: {failure}")
        if self._signals.has("request_failed"):
            answer = self._downloader.response_of(request, response) if response is not None else None
            await self._signals.send("request_failed", request, Failure(request, failure, answer))
        if request.errback is None:
            await self._frontier.fail(request, failure.reason)
            return None
        if response is not None:
            task = ParseTask(
                request,
                response.url,
                response.status,
                response.headers,
                response.body,
                response.content_encoding,
                failure,
            )
        else:
            task = ParseTask(request, request.url, 0, [], b"", "", failure)
        return await self._parse(request, task)

    async def _retry_after_pause(self, request: Request) -> None:
        """A request that timed out because the process was stopped goes again, at once.

        The pause is no fault of the host's or the request's: no retry of its budget is used,
        and the host's delay does not grow (``guards/_pauses.py`` logs the pause once).
        """
        self._stats.retries += 1
        self._stats.retry_reasons["paused"] += 1
        log.debug("retrying %s: it timed out while the process was stopped", request.url)
        await self._frontier.retry(request, 0.0)
