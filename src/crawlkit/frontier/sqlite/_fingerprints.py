"""The SQLite frontier's cache of recent fingerprints: links seen again soon need no database trip."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FingerprintCache"]


class FingerprintCache:
    """Recent fingerprints known to be in the database, in two generations of ``size // 2``.

    When the young generation is full it becomes the old one, and the old one is dropped.
    ``complete`` says whether the cache holds every fingerprint in the database (all of them were
    loaded at open, and no generation has been dropped since). Then the database can refuse no
    row the cache let through, and inserts go in behind the crawl instead of being waited for.
    """

    __slots__ = ("complete", "generation", "old", "young")

    def __init__(self, size: int) -> None:
        self.generation = max(0, size // 2)  # 0: no cache
        self.young: set[bytes] = set()
        self.old: set[bytes] = set()
        self.complete = False

    def load(self, fingerprints: Iterable[bytes]) -> None:
        """Cache every fingerprint of the database (few enough to hold them all)."""
        self.young = set(fingerprints)
        if len(self.young) >= self.generation:
            self.old, self.young = self.young, set()
        self.complete = True

    def known_or_add(self, fingerprint: bytes) -> bool:
        """Whether ``fingerprint`` is cached; if not, it is now (the caller inserts its row)."""
        young = self.young
        if fingerprint in young or fingerprint in self.old:
            return True
        if self.generation:
            young.add(fingerprint)
            if len(young) >= self.generation:
                if self.old:
                    self.complete = False
                self.old, self.young = young, set()
        return False

    def clear(self) -> None:
        self.young.clear()
        self.old.clear()
