"""Sticky sessions of the fetch API: ``session=NAME`` is one visitor across calls.

A named session is a crawl's ``Session``: its own cookie jar, its own header profile and, when the
server has proxies, its own proxy, all kept for its life; in the browser it is a context of its
own. The book holds at most ``limit`` sessions, in memory only: a session unused for ``idle``
seconds is dropped, and when the book is full a new name takes the place of the session unused
the longest (one in use is never dropped; if all are, the new one is refused). A name is the only
key: whoever knows it shares the session, so a client picks names others cannot guess. A session
dropped and named again starts afresh (``new: true`` in the answer), and never sees the cookies of
the one before: each gets an id of its own, and the browser keys its context by that id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import count

from ..fetch import HeaderProfile, Proxy, Session

__all__ = ["NamedSession", "SessionBook", "SessionsFull"]


class SessionsFull(Exception):
    """Every session of a full book is in use: a new one cannot be made now."""


@dataclass(eq=False, slots=True)
class NamedSession:
    name: str
    session: Session
    proxy_choice: str  # how its proxy was chosen: "auto", "none" or "HOST:PORT"
    last_used: float
    in_use: int = 0
    calls: int = field(default=0)


class SessionBook:
    """The named sessions; ``take()`` before a fetch and ``give_back()`` after it."""

    def __init__(
        self,
        profiles: Callable[[], HeaderProfile],
        *,
        limit: int,
        idle: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._profiles = profiles
        self.limit = limit
        self.idle = idle
        self._clock = clock
        self._sessions: dict[str, NamedSession] = {}
        self._ids = count(1)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, name: str) -> NamedSession | None:
        """The live session ``name``, or None (never made, or dropped)."""
        self._expire()
        return self._sessions.get(name)

    def take(self, name: str, proxy: Proxy | None, proxy_choice: str) -> tuple[NamedSession, bool]:
        """The session ``name``, made with ``proxy`` if it is new; and whether it is."""
        self._expire()
        named = self._sessions.get(name)
        new = named is None
        if named is None:
            if len(self._sessions) >= self.limit:
                self._make_room()
            session = Session(f"fetch-{next(self._ids)}", proxy, self._profiles(), time.time())
            named = self._sessions[name] = NamedSession(name, session, proxy_choice, self._clock())
        named.in_use += 1
        named.calls += 1
        named.last_used = self._clock()
        return named, new

    def give_back(self, named: NamedSession) -> None:
        named.in_use -= 1
        named.last_used = self._clock()

    def _expire(self) -> None:
        now = self._clock()
        for name, named in list(self._sessions.items()):
            if named.in_use == 0 and now - named.last_used > self.idle:
                del self._sessions[name]

    def _make_room(self) -> None:
        idle = [n for n in self._sessions.values() if n.in_use == 0]
        if not idle:
            raise SessionsFull(f"all {self.limit} sessions are in use; try again shortly")
        oldest = min(idle, key=lambda n: n.last_used)
        del self._sessions[oldest.name]
