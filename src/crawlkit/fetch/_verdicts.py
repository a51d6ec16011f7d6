"""What the downloader answers when an attempt gave no page for the parser: a verdict.

The engine acts on its kind (``core/_verdicts.py``): ``Ended`` (no callback, no failure: counted as
filtered, or ``DEFERRED`` back to the frontier unstarted), ``Unchanged`` (a re-crawl's unchanged
page: its stored items are committed as its output), ``Failed`` (retry, or fail for good),
``Replaced`` (a middleware's request instead), ``Rotated`` (again as someone else, for free),
``Halt`` (stop the crawl), ``PAUSED`` (again at once: it timed out while the process was stopped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import FetchError
from ..http import Request
from ._politeness import DEFER

if TYPE_CHECKING:
    from ._client import Fetched

__all__ = [
    "DEFERRED",
    "NO_PROXY_STOP",
    "PAUSED",
    "Ended",
    "Failed",
    "Halt",
    "Replaced",
    "Rotated",
    "Unchanged",
    "Verdict",
]

# The stop reason of a crawl halted because every proxy rests (on_no_proxy = "stop"): an early,
# resumable stop, as a signal's.
NO_PROXY_STOP = "no proxy available"


class Verdict:
    """An attempt that produced no page for the parser; the engine acts on its kind."""

    __slots__ = ()


class Ended(Verdict):
    """The request ends with no callback, and is no failure; ``reason`` is counted as filtered
    (``None``: counted by the downloader already, as a binary file is)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str | None) -> None:
        self.reason = reason


class Unchanged(Verdict):
    """A re-crawl's unchanged page (``recrawl_output = "all"``): no callback; ``lines``, the JSON
    lines it wrote when last parsed, are committed as its output."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines


class Failed(Verdict):
    """A failed attempt: retry in ``retry_in`` seconds, or (``None``) fail for good with ``error``."""

    __slots__ = ("error", "response", "retry_in")

    def __init__(self, error: FetchError, retry_in: float | None, response: Fetched | None = None) -> None:
        self.error = error
        self.retry_in = retry_in
        self.response = response


class Replaced(Verdict):
    """A middleware returned ``request``: it is scheduled instead, and this one ends."""

    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request


class Rotated(Verdict):
    """Go again in ``delay`` seconds as someone else, using none of the request's retries."""

    __slots__ = ("delay", "error")

    def __init__(self, error: FetchError, delay: float) -> None:
        self.error = error
        self.delay = delay


class Halt(Verdict):
    """The request goes back to the frontier unstarted, and the crawl stops for ``reason``."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


DEFERRED = Ended(DEFER)  # handed back to the frontier unstarted
# Timed out while the process was stopped (SIGSTOP, a debugger): no fault of the host's or the
# request's, so it goes again at once, using none of its retries (``guards/_pauses.py``).
PAUSED = Ended("paused")
