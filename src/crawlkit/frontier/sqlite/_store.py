"""The SQLite frontier's database side: the schema, its queries, and the store that runs them.

Everything here runs in the frontier's one database thread (see ``_dbthread.py``), except the SQL
of writes that need no answer, which the frontier buffers (``HOST_ADD``, ``UNCLAIM``, ``FAIL``,
``RETRY``, ``DEACTIVATE``) and the types of what goes back and forth. ``_frontier.py`` tells the
design.
"""

from __future__ import annotations

import errno
import itertools
import operator
import pickle
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ...errors import ConfigError, FrontierError
from ...http import Request
from .._base import Checkpoint

__all__ = [
    "DEACTIVATE",
    "DONE",
    "FAIL",
    "FAILED",
    "HOST_ADD",
    "LEASED",
    "MAX_WINDOW",
    "PENDING",
    "PICKLE_PROTOCOL",
    "RETRY",
    "SCHEMA_VERSION",
    "UNCLAIM",
    "Entry",
    "Maintained",
    "Opened",
    "Rank",
    "Row",
    "Store",
    "Write",
    "write_failed",
]

SCHEMA_VERSION = 2  # 2: the turn of each request, and the turns state at a checkpoint

PENDING, LEASED, DONE, FAILED = 0, 1, 2, 3

T = TypeVar("T")

# A loaded request: (-priority, turn, id, request), the order of service within a host: higher
# priority first, then callbacks take turns (``frontier/_turns.py``), then first in, first out.
Entry = tuple[int, int, int, Request]
# Where an entry ranks: (-priority, turn, id).
Rank = tuple[int, int, int]
# A buffered write that needs no answer: (sql, parameters).
Write = tuple[str, tuple[Any, ...]]
# A request to insert: (id, fingerprint or None, host, priority, turn, state, request, the request
# pickled). The event loop pickles it: once a row is loaded, the loop may change the request
# (its attempt, its meta) while the database thread would still be reading it.
Row = tuple[int, bytes | None, str, int, int, int, Request, bytes]

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL

_QUEUE_INDEX = "CREATE INDEX requests_queue ON requests (host, priority DESC, turn, id) WHERE state = 0"
_SCHEMA = (
    """
CREATE TABLE meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    spider_name TEXT NOT NULL,
    created REAL NOT NULL,
    checkpointed REAL,
    output_offset INTEGER NOT NULL DEFAULT 0,
    state BLOB NOT NULL DEFAULT x'',
    seeded INTEGER NOT NULL DEFAULT 0,
    seen INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    turns TEXT NOT NULL DEFAULT ''
)
    """,
    """
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    fingerprint BLOB UNIQUE,
    host TEXT NOT NULL,
    priority INTEGER NOT NULL,
    turn INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL,
    not_before REAL NOT NULL DEFAULT 0,
    data BLOB,
    reason TEXT
)
    """,
    _QUEUE_INDEX,
    "CREATE INDEX requests_delayed ON requests (not_before) WHERE state = 0 AND not_before > 0",
    "CREATE INDEX requests_claimed ON requests (host) WHERE state = 1",
    """
CREATE TABLE hosts (
    host TEXT PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    wake REAL NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID
    """,
    "CREATE INDEX hosts_waiting ON hosts (priority DESC) WHERE pending > 0 AND active = 0",
    "CREATE INDEX hosts_active ON hosts (host) WHERE active = 1",
)
_TABLES = frozenset({"meta", "requests", "hosts"})

# Multi-row inserts, padded to a few sizes (by repeating the last row, which the primary key
# then ignores) so that SQLite keeps a handful of prepared statements.
_INSERT_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_INSERT = {
    n: "INSERT OR IGNORE INTO requests (id, fingerprint, host, priority, turn, state, data) VALUES "
    + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * n)
    for n in _INSERT_SIZES
}
# The counts of the hosts table are kept for inactive hosts only (those are the ones to choose
# from); a host's count is recomputed when it becomes inactive.
_HOST_UPSERT = """
    ON CONFLICT (host) DO UPDATE SET
        pending = pending + excluded.pending,
        priority = CASE WHEN pending > 0 THEN max(priority, excluded.priority) ELSE excluded.priority END,
        wake = CASE WHEN pending > 0 THEN min(wake, excluded.wake) ELSE excluded.wake END
    WHERE active = 0
"""
# Count rows of an inactive host that became PENDING: (host, count, priority, not_before).
HOST_ADD = "INSERT INTO hosts (host, pending, priority, wake) VALUES (?, ?, ?, ?)" + _HOST_UPSERT
# The same for the PENDING rows of a batch of new ids (the WHERE disambiguates the upsert).
_HOSTS_ADD_NEW = (
    "INSERT INTO hosts (host, pending, priority, wake)"
    " SELECT host, count(*), max(priority), 0 FROM requests WHERE id BETWEEN ? AND ? AND state = 0"
    " GROUP BY host" + _HOST_UPSERT
)
_NEW_CLAIMED = "SELECT group_concat(id) FROM requests WHERE id BETWEEN ? AND ? AND state = 1"
_LOAD = (
    "SELECT group_concat(id || ' ' || priority || ' ' || turn || ' ' || hex(data), ' ') FROM"
    " (SELECT id, priority, turn, data FROM requests WHERE state = 0 AND host = ? AND not_before <= ?"
    " ORDER BY priority DESC, turn, id LIMIT ?)"
)
_IDS = "(SELECT value FROM json_each(?))"
MAX_WINDOW = 1024  # loaded requests of one host, however high its concurrency
_CLAIM_IDS = "UPDATE requests SET state = 1 WHERE id IN " + _IDS
_FINGERPRINTS = "SELECT fingerprint FROM requests WHERE fingerprint IS NOT NULL LIMIT ?"
_DONE = "UPDATE requests SET state = 2, data = NULL WHERE id = ?"
_DONE_IDS = "UPDATE requests SET state = 2, data = NULL WHERE id IN " + _IDS
_ACTIVATE = "UPDATE hosts SET active = 1 WHERE host = ?"
UNCLAIM = "UPDATE requests SET state = 0, not_before = ? WHERE id = ?"
FAIL = "UPDATE requests SET state = 3, reason = ? WHERE id = ?"
RETRY = "UPDATE requests SET id = ?, turn = ?, not_before = ?, data = ?, state = ? WHERE id = ?"
DEACTIVATE = (
    "UPDATE hosts SET active = 0,"
    " pending = (SELECT count(*) FROM requests WHERE state = 0 AND host = ?1),"
    " priority = coalesce((SELECT max(priority) FROM requests WHERE state = 0 AND host = ?1), 0),"
    " wake = 0"
    " WHERE host = ?1"
)
_CANDIDATES = (
    "SELECT host FROM hosts WHERE pending > 0 AND active = 0 AND wake <= ? ORDER BY priority DESC LIMIT ?"
)
_NOT_YET_DUE = (
    "UPDATE hosts SET"
    " pending = (SELECT count(*) FROM requests WHERE state = 0 AND host = ?1),"
    " wake = coalesce((SELECT min(not_before) FROM requests WHERE state = 0 AND host = ?1), 0)"
    " WHERE host = ?1"
)
_NEXT_DUE = "SELECT min(not_before) FROM requests WHERE state = 0 AND not_before > 0 AND not_before > ?"
_CAME_DUE = (
    "SELECT host, max(priority) FROM requests WHERE state = 0 AND not_before > 0"
    " AND not_before > ? AND not_before <= ? GROUP BY host"
)


def _upgrade_from_1(db: sqlite3.Connection) -> None:
    """Give a job directory of schema 1 the turns of schema 2, keeping everything it holds.

    Its pending requests all get turn 0: they keep their order among themselves (by id) and are
    served before the requests queued from now on.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()[0] == 1:
            db.execute("ALTER TABLE requests ADD COLUMN turn INTEGER NOT NULL DEFAULT 0")
            db.execute("ALTER TABLE meta ADD COLUMN turns TEXT NOT NULL DEFAULT ''")
            db.execute("DROP INDEX IF EXISTS requests_queue")
            db.execute(_QUEUE_INDEX)
            db.execute("UPDATE meta SET schema_version = 2 WHERE id = 1")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _id_list(ids: Iterable[int]) -> str:
    return "[" + ",".join(map(str, ids)) + "]"


# -- the database side: everything below runs in the frontier's one database thread ----------------


@dataclass(frozen=True, slots=True)
class Opened:
    checkpoint: Checkpoint | None
    pending: int
    seen: int
    done: int
    failed: int
    next_id: int
    next_due: float | None
    turns: str
    # Every fingerprint in the database, if there are at most as many as asked for; else None.
    fingerprints: list[bytes] | None


@dataclass(slots=True)
class Maintained:
    refilled: list[tuple[str, int, list[Entry]]] = field(default_factory=list)
    activated: list[tuple[str, list[Entry]]] = field(default_factory=list)
    candidates_left: bool = True
    came_due: list[tuple[str, int]] = field(default_factory=list)
    next_due: float | None = None


class Store:
    """The connection and every query; used by the database thread alone."""

    def __init__(self, path: Path, spider_name: str, cache_kib: int) -> None:
        self.path = path
        self.spider_name = spider_name
        self.cache_kib = cache_kib
        self.db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        db = self.db
        if db is None:
            raise RuntimeError("the frontier database is closed")
        return db

    def _corrupt(self, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"frontier database {self.path} is corrupt or not a crawlkit frontier ({exc}); "
            "move it away or use --fresh"
        )

    def _read_only(self, exc: sqlite3.Error) -> str:
        """Why the database cannot be written, from the OS (SQLite says only 'readonly')."""
        cause = str(exc)
        # The job's folder was found writable before the crawl started: the files are the cause.
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                with path.open("r+b"):  # opened for writing, nothing written
                    pass
            except FileNotFoundError:
                continue
            except OSError as exc_os:
                name = errno.errorcode.get(exc_os.errno or 0)
                cause = f"{path.name}: {exc_os.strerror or exc_os}" + (f" ({name})" if name else "")
                break
        return (
            f"frontier database {self.path} cannot be written ({cause}); it is not corrupt, and it "
            "holds the job's committed state: make it writable (its permissions, its owner, an "
            "immutable flag (lsattr), or a read-only file system) and run the same command again"
        )

    def open(self, wall: float, fingerprints: int = 0) -> Opened:
        """Open (or create) the database; return what it holds, with up to ``fingerprints`` of them."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, timeout=2.0)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the frontier database {self.path}: {exc}") from exc
        try:
            opened = self._open(db, wall, fingerprints)
        except ConfigError:
            db.close()
            raise
        except sqlite3.OperationalError as exc:
            db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise ConfigError(
                    f"frontier database {self.path} is in use by another crawl; "
                    "wait for it to end or use another --job-dir"
                ) from exc
            code = getattr(exc, "sqlite_errorname", "")
            if code.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
                # The disk, not the file: full, a file size limit, an I/O error.
                raise FrontierError(write_failed(self.path, exc)) from exc
            if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
                # Not corrupt: the advice to use --fresh would discard the committed state.
                raise ConfigError(self._read_only(exc)) from exc
            raise self._corrupt(exc) from exc
        except sqlite3.DatabaseError as exc:
            db.close()
            raise self._corrupt(exc) from exc
        self.db = db
        return opened

    @staticmethod
    def _tables(db: sqlite3.Connection) -> set[str]:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _open(self, db: sqlite3.Connection, wall: float, fingerprints: int) -> Opened:
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigError(f"frontier database {self.path} cannot use WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous = FULL")  # commits happen only at checkpoints: make them last
        db.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")
        db.execute("PRAGMA journal_size_limit = 67108864")
        db.execute("PRAGMA temp_store = MEMORY")
        tables = self._tables(db)
        if not tables:
            db.execute("BEGIN IMMEDIATE")
            tables = self._tables(db)  # another process may have just created it
            if not tables:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO meta (id, schema_version, spider_name, created) VALUES (1, ?, ?, ?)",
                    (SCHEMA_VERSION, self.spider_name, wall),
                )
                tables = set(_TABLES)
            db.execute("COMMIT")
        if not tables >= _TABLES:
            missing = ", ".join(sorted(_TABLES - tables))
            raise ConfigError(
                f"frontier database {self.path} is corrupt or not a crawlkit frontier (no table {missing}); "
                "move it away or use --fresh"
            )
        version_row = db.execute("SELECT schema_version FROM meta WHERE id = 1").fetchone()
        if version_row is None:
            raise ConfigError(
                f"frontier database {self.path} is corrupt (its meta row is missing); "
                "move it away or use --fresh"
            )
        version = version_row[0]
        if version == 1:
            _upgrade_from_1(db)
        elif version != SCHEMA_VERSION:
            raise ConfigError(
                f"frontier database {self.path} has schema version {version}, but this crawlkit "
                f"uses {SCHEMA_VERSION}; use --fresh or another --job-dir"
            )
        row = db.execute(
            "SELECT spider_name, checkpointed, output_offset, state, seeded,"
            " seen, done, failed, turns FROM meta WHERE id = 1"
        ).fetchone()
        spider, checkpointed, offset, state, seeded, seen, done, failed, turns = row
        if spider != self.spider_name:
            raise ConfigError(
                f"job directory belongs to spider {spider!r}, not {self.spider_name!r}; "
                "use --fresh or another --job-dir"
            )
        # One write transaction from here to the next checkpoint. IMMEDIATE: a second crawl on
        # the same job directory fails here, not halfway through its run.
        db.execute("BEGIN IMMEDIATE")
        stale = db.execute(
            "SELECT DISTINCT host FROM requests WHERE state = 1 UNION SELECT host FROM hosts WHERE active = 1"
        ).fetchall()
        db.execute("UPDATE requests SET state = 0 WHERE state = 1")
        db.executemany(DEACTIVATE, stale)  # which counts their pending requests afresh
        pending = db.execute("SELECT coalesce(sum(pending), 0) FROM hosts").fetchone()[0]
        max_id = db.execute("SELECT coalesce(max(id), 0) FROM requests").fetchone()[0]
        next_due = db.execute(_NEXT_DUE, (wall,)).fetchone()[0]
        checkpoint = None
        if checkpointed is not None:
            checkpoint = Checkpoint(
                output_offset=int(offset), state=bytes(state), seeded=bool(seeded), finished=pending == 0
            )
        known: list[bytes] | None = None
        if fingerprints > 0:
            rows = db.execute(_FINGERPRINTS, (fingerprints + 1,)).fetchall()
            known = [fp for (fp,) in rows] if len(rows) <= fingerprints else None
        return Opened(
            checkpoint,
            int(pending),
            int(seen),
            int(done),
            int(failed),
            int(max_id) + 1,
            next_due,
            str(turns),
            known,
        )

    def call(self, writes: list[Write], done: list[int], fn: Callable[..., T] | None, *args: Any) -> T | None:
        """Run the buffered writes, then mark ``done`` ids DONE, then run ``fn``."""
        db = self._conn()
        for sql, group in itertools.groupby(writes, key=operator.itemgetter(0)):
            db.executemany(sql, [params for _, params in group])
        # After the writes: a retry renames a row to the id that a later ack marks done.
        if len(done) > 16:
            db.execute(_DONE_IDS, (_id_list(done),))
        elif done:
            db.executemany(_DONE, [(rid,) for rid in done])
        return fn(*args) if fn is not None else None

    def insert(self, rows: list[Row], claimed: bool, count_hosts: bool) -> tuple[int, set[int]]:
        """Insert new requests; duplicates (by fingerprint) are ignored.

        Returns how many went in and, if ``claimed``, which of the LEASED ones (those loaded
        into memory at once) went in. ``count_hosts``: whether some are PENDING requests of
        inactive hosts, to be counted in the hosts table. The rows' ids are consecutive.
        """
        db = self._conn()
        params: list[Any] = []
        for rid, fp, host, priority, turn, state, _, data in rows:
            # The blobs go in as bytearrays: sqlite3 binds int, float, str and bytearray as they
            # are, but looks any other value (bytes too) up for an adapter first, two failed
            # attribute lookups that cost more than the copy.
            params += (
                rid,
                None if fp is None else bytearray(fp),
                host,
                priority,
                turn,
                state,
                bytearray(data),
            )
        inserted = 0
        width = 7
        start = 0
        while start < len(rows):
            take = min(len(rows) - start, _INSERT_SIZES[-1])
            size = next(s for s in _INSERT_SIZES if s >= take)
            chunk = params[start * width : (start + take) * width]
            if size > take:
                chunk += chunk[-width:] * (size - take)
            inserted += db.execute(_INSERT[size], chunk).rowcount
            start += take
        first, last = rows[0][0], rows[-1][0]
        if count_hosts:
            db.execute(_HOSTS_ADD_NEW, (first, last))
        new_claimed: set[int] = set()
        if claimed:
            text = db.execute(_NEW_CLAIMED, (first, last)).fetchone()[0]
            if text:
                new_claimed = {int(x) for x in text.split(",")}
        return inserted, new_claimed

    def insert_new(self, rows: list[Row], count_hosts: bool) -> None:
        """Insert requests that the caller knows to be new: every one of them must go in."""
        inserted, _ = self.insert(rows, False, count_hosts)
        if inserted != len(rows):
            raise RuntimeError(
                f"internal error: {len(rows) - inserted} of {len(rows)} new requests were already in the"
                " frontier database, although the fingerprint cache held every fingerprint in it"
            )

    def _load(self, host: str, limit: int, wall: float) -> list[Entry]:
        """Claim the best ``limit`` due PENDING requests of a host."""
        db = self._conn()
        text = db.execute(_LOAD, (host, wall, limit)).fetchone()[0]
        if not text:
            return []
        parts = text.split(" ")
        ids = parts[0::4]
        db.execute(_CLAIM_IDS, ("[" + ",".join(ids) + "]",))
        loads = pickle.loads
        entries = [
            (-int(p), int(t), int(i), loads(bytes.fromhex(h)))
            for i, p, t, h in zip(ids, parts[1::4], parts[2::4], parts[3::4], strict=True)
        ]
        entries.sort()  # group_concat() does not promise an order
        return entries

    def maintain(
        self,
        refills: list[tuple[str, int]],
        activate: int,
        initial: int,
        came_due: tuple[float, float] | None,
        wall: float,
    ) -> Maintained:
        """Refill active hosts, activate new ones, find rows that came due since the last look."""
        db = self._conn()
        out = Maintained()
        if came_due is not None:
            out.came_due = [(h, int(p)) for h, p in db.execute(_CAME_DUE, came_due)]
            out.next_due = db.execute(_NEXT_DUE, (came_due[1],)).fetchone()[0]
        for host, limit in refills:
            out.refilled.append((host, limit, self._load(host, limit, wall)))
        if activate > 0:
            candidates = [host for (host,) in db.execute(_CANDIDATES, (wall, activate))]
            for host in candidates:
                entries = self._load(host, initial, wall)
                if entries:
                    db.execute(_ACTIVATE, (host,))
                    out.activated.append((host, entries))
                else:  # only requests waiting for a retry time: not a candidate until then
                    db.execute(_NOT_YET_DUE, (host,))
            out.candidates_left = len(candidates) == activate
        return out

    def checkpoint(
        self, offset: int, state: bytes, seeded: bool, counters: tuple[int, int, int], turns: str, wall: float
    ) -> None:
        db = self._conn()
        seen, done, failed = counters
        db.execute(
            "UPDATE meta SET checkpointed = ?, output_offset = ?, state = ?, seeded = ?, seen = ?,"
            " done = ?, failed = ?, turns = ? WHERE id = 1",
            (wall, offset, state, int(seeded), seen, done, failed, turns),
        )
        db.execute("COMMIT")  # synchronous=FULL: on disk when this returns
        db.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        db = self.db
        if db is None:
            return
        self.db = None
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")  # the tail after the last checkpoint is not kept
        finally:
            db.close()


def write_failed(path: Path, exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorname", "")
    return (
        f"cannot write the frontier database {path}: {exc}"
        + (f" ({code})" if code else "")
        + "; check the free space and any file size limit (ulimit -f)"
    )
