"""What a re-crawl keeps in the job's page store beside the page records: each page's items.

``items`` holds, per page (its request's fingerprint) and generation, the JSON lines the page
wrote, as written (after the pipelines), deflated, one row a page: no pickle. A row is queued on
the store's writer thread when the page is committed; each checkpoint waits for the store's
writes before the frontier records its acks, so a page the frontier records as done has its
items stored. A page stored but not acked (a kill in between) is fetched again by the resumed
crawl, and its row is replaced: a row is keyed by page and generation, never appended to.

A re-crawl writes an unchanged page's items from the newest row of a generation before its own
that is not older than the page's record: what the page wrote when it was last parsed.

``crawl_options`` holds the options a generation started with, so that a re-crawl resumed with
other ones is refused rather than half of its output written one way and half the other.

When a generation finishes (``fold()``, in ``PageStore.finish()``'s transaction), the rows of
gone pages go, each page keeps only its newest row, and a row older than its page's record (a
page changed whose callback failed: nothing was stored for the new version) goes too, so that a
later re-crawl parses that page again. Pages found unchanged get their record's time moved to
the generation's start: ``recrawl_after`` and a sitemap's ``<lastmod>`` compare with when a page
was last known to be as stored.
"""

from __future__ import annotations

import sqlite3
import zlib
from typing import Any

import orjson

from ._cache import PageStore

__all__ = ["PageItems", "crawl_options", "record_crawl_options", "refresh_unchanged"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key BLOB NOT NULL,
    gen INTEGER NOT NULL,
    count INTEGER NOT NULL,
    lines BLOB NOT NULL,
    PRIMARY KEY (key, gen)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crawl_options (
    gen INTEGER PRIMARY KEY,
    options TEXT NOT NULL
);
"""
_LEVEL = 6  # items are small and repetitive: level 6 costs little more than 1 and keeps a third less


def ensure_schema(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)


class PageItems:
    """Each page's items in the job's ``cache.sqlite``; reads on the loop, writes on the store's thread."""

    def __init__(self, store: PageStore) -> None:
        self.store = store
        ensure_schema(store.db)
        store.folds.append(_fold_items)

    def keep(self, key: bytes, gen: int, lines: list[bytes]) -> None:
        """Store the JSON lines (newline included) a page wrote in generation ``gen``."""

        def write(db: sqlite3.Connection) -> None:
            # Deflated here, on the writer thread: the event loop only joins the lines.
            db.execute(
                "INSERT OR REPLACE INTO items (key, gen, count, lines) VALUES (?, ?, ?, ?)",
                (key, gen, len(lines), zlib.compress(b"".join(lines), _LEVEL)),
            )

        self.store.queue_write(write)

    def stored(self, key: bytes, since_gen: int, before_gen: int) -> list[bytes] | None:
        """The items a page wrote when last parsed (a generation from ``since_gen`` up to, not
        including, ``before_gen``); None when none were stored."""
        row = self.store.db.execute(
            "SELECT lines FROM items WHERE key = ? AND gen >= ? AND gen < ? ORDER BY gen DESC LIMIT 1",
            (key, since_gen, before_gen),
        ).fetchone()
        if row is None:
            return None
        return zlib.decompress(row[0]).splitlines(keepends=True)

    def pages_without_items(self, before_gen: int) -> int:
        """Stored pages (not robots.txt) of earlier generations with no items row to write."""
        return int(
            self.store.db.execute(
                "SELECT count(*) FROM responses r WHERE request IS NOT NULL AND gen < ? AND NOT EXISTS "
                "(SELECT 1 FROM items i WHERE i.key = r.key AND i.gen >= r.gen AND i.gen < ?)",
                (before_gen, before_gen),
            ).fetchone()[0]
        )


def _fold_items(db: sqlite3.Connection, gen: int) -> None:
    db.execute(
        "DELETE FROM items WHERE key IN (SELECT key FROM seen WHERE gen = ? AND verdict = 'gone')",
        (gen,),
    )
    db.execute("DELETE FROM items WHERE gen < (SELECT max(gen) FROM items i WHERE i.key = items.key)")
    # After the page records' own fold, a page has one record: items older than it describe
    # another version of the page, and items with no record are of a page purged or evicted.
    db.execute(
        "DELETE FROM items WHERE NOT EXISTS "
        "(SELECT 1 FROM responses r WHERE r.key = items.key AND r.gen <= items.gen)"
    )
    db.execute("DELETE FROM crawl_options WHERE gen < ?", (gen,))


def refresh_unchanged(store: PageStore, started: float) -> None:
    """Fold step of a re-crawl: its unchanged pages were known as stored at ``started``."""

    def fold(db: sqlite3.Connection, gen: int) -> None:
        db.execute(
            "UPDATE responses SET stored_at = max(stored_at, ?) WHERE key IN "
            "(SELECT key FROM seen WHERE gen = ? AND verdict = 'unchanged')",
            (started, gen),
        )

    store.folds.append(fold)


def record_crawl_options(store: PageStore, gen: int, options: dict[str, Any]) -> dict[str, Any]:
    """The options generation ``gen`` started with: recorded now, or those recorded before."""
    db = store.db
    ensure_schema(db)
    row = db.execute("SELECT options FROM crawl_options WHERE gen = ?", (gen,)).fetchone()
    if row is not None:
        recorded: dict[str, Any] = orjson.loads(row[0])
        return recorded
    db.execute(
        "INSERT INTO crawl_options (gen, options) VALUES (?, ?)", (gen, orjson.dumps(options).decode())
    )
    return options


def crawl_options(store: PageStore, gen: int) -> dict[str, Any] | None:
    ensure_schema(store.db)
    row = store.db.execute("SELECT options FROM crawl_options WHERE gen = ?", (gen,)).fetchone()
    return orjson.loads(row[0]) if row else None
