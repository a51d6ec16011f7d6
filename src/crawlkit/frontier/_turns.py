"""The order of service within a priority: callbacks take turns, each first in, first out.

Plain first-in-first-out starves a chain. A listing page that links the next listing and twenty
items puts the next listing behind every item found so far, so the chain advances one page per
backlog and the crawl ends fetching it one page at a time, every other slot idle. Here each
request gets a *turn* when it is queued: one more than the last turn of its callback, but never
less than one more than the turn being served (start-time fair queuing, with the callback as the
flow). A callback with a long backlog has turns far ahead; a callback that queues one request now
and then gets a turn just ahead of what is being served, so it is fetched next. With one callback
the turns are first in, first out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

__all__ = ["Turns"]


class Turns:
    """Hands out turns per callback and follows the turn being served."""

    __slots__ = ("_last", "serving")

    def __init__(self, serving: int = 0, last: Mapping[str, int] | None = None) -> None:
        self.serving = serving  # the highest turn leased so far
        self._last: dict[str, int] = dict(last or {})

    def next(self, callback: str | None) -> int:
        """The turn of a new request of ``callback`` (``None`` and ``"parse"`` are one callback)."""
        lane = callback or "parse"
        last = self._last.get(lane, 0)
        turn = (last if last > self.serving else self.serving) + 1
        self._last[lane] = turn
        return turn

    def served(self, turn: int) -> None:
        """A request of this turn was leased."""
        if turn > self.serving:
            self.serving = turn

    def dumps(self) -> str:
        """The state as JSON; callbacks with no turn ahead of the one served are left out."""
        serving = self.serving
        ahead = {lane: last for lane, last in self._last.items() if last > serving}
        return json.dumps({"serving": serving, "last": ahead}, separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> Turns:
        """The state ``dumps()`` wrote; an empty or unreadable text starts afresh.

        Turns decide an order, not what gets fetched: a lost state costs some fairness for a
        while, never a request, so it is no reason to refuse a job.
        """
        if not text:
            return cls()
        try:
            state = json.loads(text)
            return cls(int(state["serving"]), {str(k): int(v) for k, v in state["last"].items()})
        except (ValueError, TypeError, KeyError, AttributeError):
            return cls()
