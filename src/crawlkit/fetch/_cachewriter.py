"""The page store's write path: rows gathered on the event loop, written by one thread in batches.

A response a crawl keeps is a row of ``responses`` and a row of ``seen``. Handed to the writer
thread one by one, each woke the thread, which took the GIL from the event loop, committed a
transaction of a row or two and slept again: a wake-up, a GIL hand-over and a commit per page.
So rows wait on the loop's side in a batch, handed over when it holds ``BATCH_ROWS`` responses
or ``BATCH_BYTES`` of bodies, or ``LINGER`` seconds after its first row. The thread deflates the
bodies that need it and hashes them (both let go of the GIL while they work), and inserts the
batch with ``executemany`` in one transaction; a batch that fails is written again row by row,
so that one bad row costs only itself. ``CacheWriter.flush()`` hands the open batch over and
resolves once it is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ._cache import CacheEntry

__all__ = ["ENTRY_COLUMNS", "CacheWriter", "body_digest", "evict_oldest", "transaction"]

log = logging.getLogger("crawlkit.cache")

BATCH_ROWS = 512  # responses handed over together, at most
BATCH_BYTES = 8 << 20  # bodies handed over together, at most
LINGER = 0.05  # seconds a batch waits for more rows, at most
EVICT_TO = 0.9  # past the size cap, the oldest entries go until this fraction of it is left

ENTRY_COLUMNS = (
    "key, gen, method, url, final_url, status, headers, vary, coding, body, size, stored_at, "
    "etag, last_modified, digest, request"
)
_INSERT_RESPONSE = f"INSERT OR REPLACE INTO responses ({ENTRY_COLUMNS}) VALUES ({', '.join('?' * 16)})"
_INSERT_SEEN = "INSERT OR REPLACE INTO seen (key, gen, verdict, url) VALUES (?, ?, ?, ?)"


def body_digest(body: bytes) -> bytes:
    """What tells two versions of a page apart when it sends no validators."""
    return hashlib.blake2b(body, digest_size=16).digest()


@dataclass(slots=True)
class _Page:
    entry: CacheEntry
    compress: bool  # deflate an unencoded body
    digest_of: bytes | None  # the body whose digest goes into entry.digest


@dataclass(slots=True)
class _Batch:
    pages: list[_Page] = field(default_factory=list)
    seen: list[tuple[bytes, int, str, str]] = field(default_factory=list)
    writes: list[Callable[[sqlite3.Connection], None]] = field(default_factory=list)  # more rows
    size: int = 0
    then: Callable[[], None] | None = None  # run by the thread once the batch is committed


class CacheWriter:
    """One page store's writes: ``add``/``see`` on the loop's thread, committed by a thread of its own."""

    def __init__(self, path: Path, *, max_bytes: int, size: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = size  # bytes of stored bodies
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._open = _Batch()
        self._timer: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None

    # -- the loop's side --------------------------------------------------------------------

    def add(self, entry: CacheEntry, *, compress: bool, digest_of: bytes | None) -> None:
        self.size += entry.size
        batch = self._open
        batch.pages.append(_Page(entry, compress, digest_of))
        batch.size += entry.size
        self._added(batch)

    def see(self, row: tuple[bytes, int, str, str]) -> None:
        batch = self._open
        batch.seen.append(row)
        self._added(batch)

    def write(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """One more write of another table (a page's items), committed with the batch it joins."""
        batch = self._open
        batch.writes.append(write)
        self._added(batch)

    def _added(self, batch: _Batch) -> None:
        if (
            len(batch.pages) >= BATCH_ROWS
            or batch.size >= BATCH_BYTES
            or len(batch.seen) >= BATCH_ROWS
            or len(batch.writes) >= BATCH_ROWS
        ):
            self.hand_over()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a script, a test): nothing would hand it over later
                self.hand_over()
                return
            self._timer = loop.call_later(LINGER, self.hand_over)

    def hand_over(self, then: Callable[[], None] | None = None) -> None:
        """The open batch to the thread (``then`` runs once it is committed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._open = self._open, _Batch()
        batch.then = then
        if batch.pages or batch.seen or batch.writes or then is not None:
            self._queue.put(batch)

    async def flush(self) -> None:
        """Wait until every row added so far is committed."""
        if self._thread is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def resolve() -> None:
            if not done.done():
                done.set_result(None)

        def committed() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(resolve)

        self.hand_over(then=committed)
        await done

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="page-store", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Let the thread commit everything added, and end it."""
        self.hand_over()
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        try:
            while True:
                item = self._queue.get()
                batches: list[_Batch | None] = [item]
                while item is not None and len(batches) < 16:  # a backlog goes in one transaction
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batches.append(item)
                work = [batch for batch in batches if batch is not None]
                self._write(db, work)
                for batch in work:
                    if batch.then is not None:
                        batch.then()
                if self.max_bytes > 0 and self.size > self.max_bytes:
                    with contextlib.suppress(sqlite3.Error):
                        self.size = evict_oldest(db, self.max_bytes)[1]
                if batches[-1] is None:
                    return
        finally:
            db.close()

    def _write(self, db: sqlite3.Connection, batches: list[_Batch]) -> None:
        rows: list[tuple[Any, ...]] = []
        for batch in batches:
            for page in batch.pages:
                try:
                    rows.append(_row(page))
                except Exception as exc:  # one record lost; the others go on
                    self._failed(exc)
        seen = [row for batch in batches for row in batch.seen]
        writes = [write for batch in batches for write in batch.writes]
        try:
            with transaction(db):
                db.executemany(_INSERT_RESPONSE, rows)
                db.executemany(_INSERT_SEEN, seen)
                for write in writes:
                    write(db)
        except Exception:
            self._write_one_by_one(db, rows, seen, writes)

    def _write_one_by_one(
        self,
        db: sqlite3.Connection,
        rows: list[tuple[Any, ...]],
        seen: list[tuple[bytes, int, str, str]],
        writes: list[Callable[[sqlite3.Connection], None]],
    ) -> None:
        try:
            with transaction(db):
                for sql, values in ((_INSERT_RESPONSE, rows), (_INSERT_SEEN, seen)):
                    for value in values:
                        try:
                            db.execute(sql, value)
                        except (sqlite3.Error, ValueError) as exc:  # ValueError: text SQLite cannot take
                            self._failed(exc)
                for write in writes:
                    try:
                        write(db)
                    except (sqlite3.Error, ValueError) as exc:
                        self._failed(exc)
        except sqlite3.Error as exc:  # a cache that cannot be written costs only the cache
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.error is None:
            log.warning("the HTTP cache %s cannot be written: %s", self.path, exc)
        self.error = exc


def _row(page: _Page) -> tuple[Any, ...]:
    entry = page.entry
    if page.compress and entry.body is not None and not entry.coding:
        # zlib's format is what HTTP calls "deflate": the parser worker inflates it.
        entry.body, entry.coding = zlib.compress(entry.body, 6), "deflate"
    if page.digest_of is not None:
        entry.digest = body_digest(page.digest_of)
    return (
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
    )


def evict_oldest(db: sqlite3.Connection, max_bytes: int) -> tuple[int, int]:
    """The oldest entries removed until the bodies fit in ``EVICT_TO`` of ``max_bytes``:
    (entries removed, bytes of bodies left)."""
    target = int(max_bytes * EVICT_TO)
    total = int(db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0])
    cut: list[tuple[bytes, int]] = []
    for key, gen, size in db.execute("SELECT key, gen, size FROM responses ORDER BY stored_at"):
        if total <= target:
            break
        total -= size
        cut.append((key, gen))
    with transaction(db):
        db.executemany("DELETE FROM responses WHERE key = ? AND gen = ?", cut)
    return len(cut), total


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
