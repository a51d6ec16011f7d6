"""The job's page store: one SQLite file (``JOB/cache.sqlite``) of responses and crawl history.

It serves two uses:

* the development cache (``http_cache``): whole responses, the body compressed, the headers as
  JSON (never pickle), replayed instead of the network, or only from here with ``--offline``;
* the re-crawl (``--recrawl``): what each page's last response said about it, its validators
  (``ETag``, ``Last-Modified``) and a digest of its body, and the request that fetched it, so
  that the next crawl can visit it again and ask whether it changed.

Every crawl of the job is a *generation* (a row of ``crawls``). A response stored during
generation G is a row ``(key, G)``; the rows of earlier generations stay untouched until G
finishes, so a re-crawl killed and resumed compares a page against the same baseline as before
the kill, and a page whose new version was stored but whose items were not committed is seen as
changed again. What G learned about each page (new, changed, unchanged, gone) goes to ``seen``;
``finish()`` folds it all in, in one transaction: the newest row of each page stays, gone pages
go, and the generation's counts are recorded.

Reads happen on the event loop: a lookup is one point read by primary key, from the page
cache, and costs tens of microseconds. Writes, compression included, go to one writer thread in
batches, so the loop never waits for the disk; ``flush()`` waits until what was queued is
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CacheEntry", "CrawlRecord", "PageStore", "body_digest"]

log = logging.getLogger("crawlkit.cache")

FILENAME = "cache.sqlite"
_BATCH = 256  # writes committed together by the writer thread
_EVICT_TO = 0.9  # past the size cap, the oldest entries go until this fraction of it is left

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key BLOB NOT NULL,
    gen INTEGER NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    final_url TEXT NOT NULL,
    status INTEGER NOT NULL,
    headers TEXT NOT NULL,
    vary TEXT,
    coding TEXT NOT NULL,
    body BLOB,
    size INTEGER NOT NULL,
    stored_at REAL NOT NULL,
    etag TEXT,
    last_modified TEXT,
    digest BLOB NOT NULL,
    request TEXT,
    PRIMARY KEY (key, gen)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS responses_age ON responses (stored_at);
CREATE TABLE IF NOT EXISTS seen (
    key BLOB NOT NULL,
    gen INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    url TEXT NOT NULL,
    PRIMARY KEY (key, gen)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS crawls (
    gen INTEGER PRIMARY KEY,
    mode TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    counts TEXT
);
"""

_ENTRY_COLUMNS = (
    "key, gen, method, url, final_url, status, headers, vary, coding, body, size, stored_at, "
    "etag, last_modified, digest, request"
)


def body_digest(body: bytes) -> bytes:
    """What tells two versions of a page apart when it sends no validators."""
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass(slots=True)
class CacheEntry:
    """One stored response. ``body`` is Content-Encoded with ``coding`` (``None``: not stored)."""

    key: bytes
    gen: int
    method: str
    url: str
    final_url: str
    status: int
    headers: list[tuple[str, str]]
    vary: dict[str, str] | None
    coding: str
    body: bytes | None
    size: int
    stored_at: float
    etag: str | None
    last_modified: str | None
    digest: bytes
    request: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> CacheEntry:
        headers = [(str(k), str(v)) for k, v in orjson.loads(row[6])]
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            headers,
            orjson.loads(row[7]) if row[7] else None,
            row[8],
            row[9],
            row[10],
            row[11],
            row[12],
            row[13],
            row[14],
            orjson.loads(row[15]) if row[15] else None,
        )


@dataclass(slots=True)
class CrawlRecord:
    """One crawl of the job: a generation, with what it found when it ended."""

    gen: int
    mode: str  # "crawl" or "recrawl"
    started: float
    ended: float | None
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "gen": self.gen,
            "mode": self.mode,
            "started": self.started,
            "ended": self.ended,
            **self.counts,
        }


class PageStore:
    """The job's ``cache.sqlite``; ``open()`` on the event loop's thread, ``close()`` at the end."""

    def __init__(self, path: Path, *, max_bytes: int = 0, max_age: float = 0.0) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.gen = 0  # the generation responses are stored under (set by begin())
        self._db: sqlite3.Connection | None = None  # reads, on the caller's thread
        self._writes: queue.SimpleQueue[Callable[[sqlite3.Connection], None] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._size = 0  # bytes of stored bodies: kept by the writer thread
        self._error: BaseException | None = None
        # More of what finish() folds in, in its transaction: (db, gen) -> None (_cacheitems.py).
        self.folds: list[Callable[[sqlite3.Connection, int], None]] = []

    # -- life -------------------------------------------------------------------------------

    def open(self) -> PageStore:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)  # it holds whole requests, as the frontier does
        self._db = db
        self._size = int(db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0])
        self.evict()
        return self

    def start_writer(self) -> None:
        """Start the writer thread (a crawl's store; the ``cache`` command only reads and purges)."""
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="page-store", daemon=True)
            self._writer.start()

    def stop_writer(self) -> None:
        """Let the writer thread commit what was queued, and end it."""
        if self._writer is not None:
            self._writes.put(None)
            self._writer.join()
            self._writer = None

    def close(self) -> None:
        self.stop_writer()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> PageStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "PageStore.open() first"
        return self._db

    # -- generations ------------------------------------------------------------------------

    def last_crawl(self) -> CrawlRecord | None:
        row = self.db.execute(
            "SELECT gen, mode, started, ended, counts FROM crawls ORDER BY gen DESC LIMIT 1"
        ).fetchone()
        return _record(row) if row else None

    def history(self) -> list[CrawlRecord]:
        rows = self.db.execute("SELECT gen, mode, started, ended, counts FROM crawls ORDER BY gen")
        return [_record(row) for row in rows]

    def begin(self, mode: str) -> CrawlRecord:
        """A new generation, or the open one (a crawl resumed): responses go under it."""
        last = self.last_crawl()
        if last is not None and last.ended is None:
            self.gen = last.gen
            return last
        gen = (last.gen if last else 0) + 1
        started = time.time()
        self.db.execute("INSERT INTO crawls (gen, mode, started) VALUES (?, ?, ?)", (gen, mode, started))
        self.gen = gen
        return CrawlRecord(gen, mode, started, None, {})

    def page_count(self) -> int:
        return int(
            self.db.execute("SELECT count(DISTINCT key) FROM responses WHERE request IS NOT NULL").fetchone()[
                0
            ]
        )

    def finish(self, extra: dict[str, int] | None = None) -> CrawlRecord:
        """The generation is over: fold what it learned in, record its counts (one transaction)."""
        self.stop_writer()  # every record of the generation is in, before it is folded
        gen = self.gen
        db = self.db
        counts = dict.fromkeys(("new", "changed", "unchanged", "gone"), 0)
        with _transaction(db):
            for verdict, count in db.execute(
                "SELECT verdict, count(*) FROM seen WHERE gen = ? GROUP BY verdict", (gen,)
            ):
                counts[verdict] = count
            counts.update(extra or {})
            # Gone pages are forgotten. An unchanged page keeps the row it had: the next
            # re-crawl compares with the newest row of every generation before it.
            db.execute(
                "DELETE FROM responses WHERE key IN "
                "(SELECT key FROM seen WHERE gen = ? AND verdict = 'gone')",
                (gen,),
            )
            # Only the newest row of each page is kept.
            db.execute(
                "DELETE FROM responses WHERE gen < "
                "(SELECT max(gen) FROM responses r WHERE r.key = responses.key)"
            )
            for fold in self.folds:
                fold(db, gen)
            db.execute("DELETE FROM seen WHERE gen < ?", (gen,))
            db.execute(
                "UPDATE crawls SET ended = ?, counts = ? WHERE gen = ?",
                (time.time(), orjson.dumps(counts).decode(), gen),
            )
        self._size = int(db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0])
        record = self.last_crawl()
        assert record is not None
        return record

    def seen_urls(self, verdict: str, gen: int | None = None) -> list[str]:
        rows = self.db.execute(
            "SELECT url FROM seen WHERE gen = ? AND verdict = ? ORDER BY url",
            (self.gen if gen is None else gen, verdict),
        )
        return [url for (url,) in rows]

    # -- reading ----------------------------------------------------------------------------

    def newest(self, key: bytes) -> CacheEntry | None:
        """The newest stored response of ``key`` (this generation's, else an earlier one)."""
        row = self.db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM responses WHERE key = ? ORDER BY gen DESC LIMIT 1", (key,)
        ).fetchone()
        return CacheEntry.from_row(row) if row else None

    def baseline(self, key: bytes) -> CacheEntry | None:
        """What the crawls before this generation stored for ``key``: what a re-crawl compares with."""
        row = self.db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM responses WHERE key = ? AND gen < ? ORDER BY gen DESC LIMIT 1",
            (key, self.gen),
        ).fetchone()
        return CacheEntry.from_row(row) if row else None

    def was_seen(self, key: bytes) -> str | None:
        row = self.db.execute(
            "SELECT verdict FROM seen WHERE key = ? AND gen = ?", (key, self.gen)
        ).fetchone()
        return row[0] if row else None

    def requests_to_revisit(self, containing: str | None = None) -> Iterator[dict[str, Any]]:
        """The requests of every page earlier generations stored, as JSON records, oldest first
        (``containing``: only those whose JSON holds that text, sifted by SQLite)."""
        rows = self.db.execute(
            # A row with no request is robots.txt's: not a page.
            "SELECT request, stored_at FROM responses WHERE request IS NOT NULL AND gen < ? AND gen = "
            "(SELECT max(gen) FROM responses r WHERE r.key = responses.key AND r.gen < ?) "
            "AND (? IS NULL OR instr(request, ?) > 0) ORDER BY stored_at",
            (self.gen, self.gen, containing, containing),
        )
        for request, stored_at in rows:
            record = orjson.loads(request)
            record["__stored_at"] = stored_at
            yield record

    def entries(self, pattern: str | None = None, limit: int = 1000) -> list[tuple[Any, ...]]:
        """Rows for ``crawlkit cache JOB``: url, status, size, stored_at, gen, validators."""
        sql = "SELECT url, status, size, stored_at, gen, etag, last_modified, body IS NOT NULL FROM responses"
        args: tuple[Any, ...] = ()
        if pattern:
            sql += " WHERE url GLOB ?"
            args = (pattern,)
        return self.db.execute(sql + " ORDER BY url LIMIT ?", (*args, limit)).fetchall()

    def find(self, url_or_key: str) -> CacheEntry | None:
        row = self.db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM responses WHERE url = ? OR final_url = ? OR hex(key) = upper(?) "
            "ORDER BY gen DESC LIMIT 1",
            (url_or_key, url_or_key, url_or_key),
        ).fetchone()
        return CacheEntry.from_row(row) if row else None

    def totals(self) -> tuple[int, int, int]:
        """Pages, responses with a body, bytes of bodies."""
        row = self.db.execute(
            "SELECT count(DISTINCT key), count(body), coalesce(sum(size), 0) FROM responses"
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    # -- writing ----------------------------------------------------------------------------

    def store(self, entry: CacheEntry, *, compress: bool) -> None:
        """Queue ``entry`` for the writer thread; ``compress``: deflate an unencoded body there."""
        self._size += entry.size

        def write(db: sqlite3.Connection) -> None:
            if compress and entry.body is not None and not entry.coding:
                # zlib's format is what HTTP calls "deflate": the parser worker inflates it.
                entry.body, entry.coding = zlib.compress(entry.body, 6), "deflate"
            db.execute(
                f"INSERT OR REPLACE INTO responses ({_ENTRY_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.key,
                    entry.gen,
                    entry.method,
                    entry.url,
                    entry.final_url,
                    entry.status,
                    orjson.dumps(entry.headers).decode(),
                    orjson.dumps(entry.vary).decode() if entry.vary is not None else None,
                    entry.coding,
                    entry.body,
                    entry.size,
                    entry.stored_at,
                    entry.etag,
                    entry.last_modified,
                    entry.digest,
                    orjson.dumps(entry.request).decode() if entry.request is not None else None,
                ),
            )

        self._writes.put(write)

    def see(self, key: bytes, url: str, verdict: str) -> None:
        """Record what this generation learned about a page: new, changed, unchanged or gone."""
        gen = self.gen

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO seen (key, gen, verdict, url) VALUES (?, ?, ?, ?)",
                (key, gen, verdict, url),
            )

        self._writes.put(write)

    def queue_write(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """Queue one more write for the writer thread, committed with its batch."""
        self._writes.put(write)

    async def flush(self) -> None:
        """Wait until every write queued so far is committed."""
        if self._writer is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not done.done():
                done.set_result(None)

        def mark(_: sqlite3.Connection) -> None:
            loop.call_soon_threadsafe(resolve)

        self._writes.put(mark)
        await done

    def evict(self) -> int:
        """Entries past ``max_age``, then the oldest past ``max_bytes``; the number removed."""
        db = self.db
        removed = 0
        with _transaction(db):
            if self.max_age > 0:
                removed += db.execute(
                    "DELETE FROM responses WHERE stored_at < ?", (time.time() - self.max_age,)
                ).rowcount
        if removed:
            self._size = int(db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0])
        if self.max_bytes > 0 and self._size > self.max_bytes:
            removed += self._evict_on(db)
        if removed:
            log.info("cache: %d entries evicted (age or size limit)", removed)
        return removed

    def purge(self, pattern: str | None = None) -> int:
        """Remove the entries whose URL matches ``pattern`` (a glob), or every one; the count."""
        db = self.db
        with _transaction(db):
            if pattern:
                count = db.execute("DELETE FROM responses WHERE url GLOB ?", (pattern,)).rowcount
            else:
                count = db.execute("DELETE FROM responses").rowcount
        db.execute("VACUUM")
        return int(count)

    def _write_loop(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        try:
            while True:
                job = self._writes.get()
                batch = [job]
                while job is not None and len(batch) < _BATCH:
                    try:
                        job = self._writes.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(job)
                ends = batch[-1] is None
                try:
                    with _transaction(db):
                        for write in batch:
                            if write is not None:
                                self._run(write, db)
                except sqlite3.Error as exc:  # a cache that cannot be written costs only the cache
                    self._failed(exc)
                if self.max_bytes > 0 and self._size > self.max_bytes:
                    self._evict_on(db)
                if ends:
                    return
        finally:
            db.close()

    def _run(self, write: Callable[[sqlite3.Connection], None], db: sqlite3.Connection) -> None:
        # One write that fails is one record lost; the others, and flush()'s marks, go on.
        try:
            write(db)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self._error is None:
            log.warning("the HTTP cache %s cannot be written: %s", self.path, exc)
        self._error = exc

    def _evict_on(self, db: sqlite3.Connection) -> int:
        """The oldest entries removed until the bodies fit in ``_EVICT_TO`` of the cap."""
        target = int(self.max_bytes * _EVICT_TO)
        total = int(db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0])
        cut: list[tuple[bytes, int]] = []
        for key, gen, size in db.execute("SELECT key, gen, size FROM responses ORDER BY stored_at"):
            if total <= target:
                break
            total -= size
            cut.append((key, gen))
        with _transaction(db):
            db.executemany("DELETE FROM responses WHERE key = ? AND gen = ?", cut)
        self._size = total
        return len(cut)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _record(row: tuple[Any, ...]) -> CrawlRecord:
    return CrawlRecord(row[0], row[1], row[2], row[3], orjson.loads(row[4]) if row[4] else {})
