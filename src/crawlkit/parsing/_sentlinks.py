"""The links a parser worker has already handed to the crawl, so that it does not send them again.

Pages of one site link the same URLs over and over (a menu, related items, pagination). Each
such link used to cross the pipe to the main process, pickled and unpickled, only for the
frontier to find its fingerprint already seen. A worker remembers the fingerprints it has sent
and drops a link it sent before; the frontier would have dropped it anyway, and the crawl counts
it as a duplicate all the same.

Only links that reached the main process are remembered: those of a batch are noted once its
frame has been written, so a batch that cannot be sent (an unpicklable item) notes nothing. The
main process pushes a page's links when it commits the page; a page it does not commit ends the
crawl (a stop, a full disk), and this worker with it. A page given up to a bug of crawlkit's own
(``internal_error``) still has its links pushed (``Engine._give_up``), or they would be lost for
the rest of the crawl. A link over the depth limit is left to the frontier, which counts it as
such rather than as a duplicate; a ``dont_filter`` request is never dropped. Memory is bounded: two
generations of at most ``generation`` fingerprints each (about 75 bytes apiece); when the young
one is full the old one is forgotten, and a forgotten link is only sent again, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..http import Request
from ._callbacks import ParseOutcome

__all__ = ["SentLinks"]


class SentLinks:
    """Fingerprints of links sent to the main process: drops links sent before from outcomes."""

    __slots__ = ("_depth_limit", "_generation", "_old", "_young")

    def __init__(self, generation: int, depth_limit: int = 0) -> None:
        if generation < 1:
            raise ValueError("generation must be at least 1")
        self._generation = generation
        self._depth_limit = depth_limit
        self._young: set[bytes] = set()
        self._old: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def drop_sent(self, outcomes: Iterable[ParseOutcome]) -> None:
        """Remove from ``outcomes`` the links sent before, or earlier in these outcomes.

        The outcomes go out in one frame, so a link kept in one of them makes its repeats in
        the others redundant. Each outcome counts what it lost in ``duplicates``.
        """
        young = self._young
        old = self._old
        limit = self._depth_limit
        batch: set[bytes] = set()
        for outcome in outcomes:
            kept: list[Request] = []
            for request in outcome.requests:
                # Left to the frontier: dont_filter links, and links past the depth limit.
                if not request.dont_filter and not (limit and request.depth > limit):
                    fp = request.fingerprint
                    if fp in young or fp in old or fp in batch:
                        outcome.duplicates += 1
                        continue
                    batch.add(fp)
                kept.append(request)
            if len(kept) != len(outcome.requests):
                outcome.requests = kept

    def note_sent(self, outcomes: Iterable[ParseOutcome]) -> None:
        """Remember the links of ``outcomes``, whose frame has been written."""
        generation = self._generation
        limit = self._depth_limit
        young = self._young
        for outcome in outcomes:
            for request in outcome.requests:
                if not request.dont_filter and not (limit and request.depth > limit):  # as above
                    if len(young) >= generation:
                        self._old = young
                        young = self._young = set()
                    young.add(request.fingerprint)
