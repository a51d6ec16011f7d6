"""What a worker and a shared frontier exchange about the crawl's sessions (``fetch`` keeps them).

A shared frontier (Redis) holds one pool of sessions for all its workers. A session is leased to
one worker at a time; at each sync the worker sends what changed (its sessions' documents, its
retirements, what it gives back) and gets back what it lost and what it may use from now on. The
documents are opaque JSON here: the frontier stores them and never reads them.
"""

from __future__ import annotations

import dataclasses

__all__ = ["SessionSync", "SessionSyncReply"]


@dataclasses.dataclass(slots=True)
class SessionSync:
    """One sync of a worker's sessions with the shared pool.

    ``held``: the sessions the worker uses and keeps (their leases are renewed); ``documents``:
    the new state of those that changed, by id; ``retired``: sessions never to be used again, by
    any worker, with why; ``released``: sessions given back (their documents are in
    ``documents``); ``size``: the pool's size, ``one_each``: whether it grows to one session per
    live worker; ``want``: at most how many more sessions to take; ``leaving``: the worker stops.
    """

    held: list[str]
    documents: dict[str, bytes]
    retired: dict[str, str]
    released: list[str]
    size: int
    one_each: bool
    want: int
    leaving: bool = False


@dataclasses.dataclass(slots=True)
class SessionSyncReply:
    """``lost``: sessions of ``held`` that are no longer the worker's (retired elsewhere, or taken
    after its lease expired); ``claimed``: sessions now leased to it, each with its document
    (None: a new place in the pool, for a session the worker makes); ``share``: the most a
    worker should hold (the pool's size over the live workers, rounded up); ``workers``: the
    live workers."""

    lost: list[str]
    claimed: list[tuple[str, bytes | None]]
    share: int
    workers: int
