"""The page store's write path and reads, on real SQLite files (``fetch/_cache.py``, ``_cachewriter.py``).

Each test reads what was committed through a second connection of its own, as the next crawl
(or ``crawlkit cache``) would.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import zlib
from pathlib import Path

import pytest

from crawlkit.fetch import CacheEntry, PageStore, body_digest
from crawlkit.fetch._cachewriter import LINGER


def entry(n: int, *, gen: int = 1, body: bytes | None = None, etag: str | None = None) -> CacheEntry:
    body = body if body is not None else f"<p>page {n}</p>".encode() * 50
    return CacheEntry(
        key=n.to_bytes(16, "big"),
        gen=gen,
        method="GET",
        url=f"http://127.0.0.1/p/{n}",
        final_url=f"http://127.0.0.1/p/{n}",
        status=200,
        headers=[("Content-Type", "text/html")],
        vary=None,
        coding="",
        body=body,
        size=len(body),
        stored_at=time.time(),
        etag=etag,
        last_modified=None,
        digest=b"",
        request={"url": f"http://127.0.0.1/p/{n}", "method": "GET", "depth": 1},
    )


def committed(path: Path) -> dict[str, tuple[bytes, bytes, str]]:
    """url -> (body as stored, digest, coding): what another connection sees."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT url, body, digest, coding FROM responses").fetchall()
    return {url: (body, digest, coding) for url, body, digest, coding in rows}


def test_flush_returns_once_every_stored_row_is_committed_deflated_and_hashed(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    plain = {n: entry(n).body for n in range(300)}

    async def crawl() -> dict[str, tuple[bytes, bytes, str]]:
        with PageStore(path) as store:
            store.gen = 1
            store.start_writer()
            for n, body in plain.items():
                store.store(entry(n), compress=True, digest_of=body)
                store.see(n.to_bytes(16, "big"), f"http://127.0.0.1/p/{n}", "new")
            await store.flush()
            return committed(path)  # while the store is still open: flush() alone made them durable

    rows = asyncio.run(crawl())
    assert len(rows) == len(plain)
    for n, body in plain.items():
        stored, digest, coding = rows[f"http://127.0.0.1/p/{n}"]
        assert coding == "deflate" and zlib.decompress(stored) == body
        assert digest == body_digest(body)  # of the body as received, taken by the writer thread
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM seen WHERE verdict = 'new'").fetchone()[0] == len(plain)


def test_rows_stored_on_the_loop_go_to_the_writer_together(tmp_path: Path) -> None:
    """Stored rows wait on the loop's side and reach the writer thread as one batch, committed
    within LINGER without a flush: the thread is not woken once per page."""
    path = tmp_path / "cache.sqlite"

    async def crawl() -> tuple[int, int]:
        with PageStore(path) as store:
            store.gen = 1
            store.start_writer()
            for n in range(20):
                store.store(entry(n), compress=False)
            await asyncio.sleep(LINGER / 5)
            early = len(committed(path))
            for _ in range(200):  # 10 s at most
                if len(committed(path)) == 20:
                    break
                await asyncio.sleep(LINGER)
            return early, len(committed(path))

    early, late = asyncio.run(crawl())
    assert (early, late) == (0, 20)


def test_a_row_that_cannot_be_written_costs_only_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "cache.sqlite"
    bad_header = entry(1)
    bad_header.headers = [("X-Odd", "\udcff")]  # a lone surrogate: not JSON
    bad_etag = entry(2, etag="\udcff")  # a lone surrogate: SQLite cannot take it as text

    async def crawl() -> None:
        with PageStore(path) as store:
            store.gen = 1
            store.start_writer()
            for item in (entry(0), bad_header, bad_etag, entry(3)):
                store.store(item, compress=False)
            await store.flush()

    with caplog.at_level(logging.WARNING, logger="crawlkit.cache"):
        asyncio.run(crawl())
    assert sorted(committed(path)) == ["http://127.0.0.1/p/0", "http://127.0.0.1/p/3"]
    assert "cannot be written" in caplog.text


def test_close_commits_what_is_still_on_the_loops_side(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"

    async def crawl() -> None:
        store = PageStore(path).open()
        store.gen = 1
        store.start_writer()
        store.store(entry(7), compress=False)
        store.close()  # at once: no flush, the linger not over

    asyncio.run(crawl())
    assert list(committed(path)) == ["http://127.0.0.1/p/7"]


def test_validators_read_the_baseline_of_earlier_generations(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with PageStore(path) as store:
        store.start_writer()
        store.store(entry(1, etag='"v1"'), compress=False, digest_of=b"one")
        store.store(entry(1, gen=2, etag='"v2"'), compress=False, digest_of=b"two")
        store.stop_writer()
        store.gen = 2
        base = store.validators((1).to_bytes(16, "big"))
        assert base is not None and (base.etag, base.digest) == ('"v1"', body_digest(b"one"))
        store.gen = 3
        newer = store.validators((1).to_bytes(16, "big"))
        assert newer is not None and newer.etag == '"v2"'
        assert store.validators((2).to_bytes(16, "big")) is None
