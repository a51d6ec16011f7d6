"""Each page's items in the job's page store (a real ``cache.sqlite``): kept, read, folded in."""

from __future__ import annotations

import time
from pathlib import Path

from crawlkit.fetch import PageItems, PageStore, body_digest, record_crawl_options
from crawlkit.fetch._cache import CacheEntry


def entry(key: bytes, gen: int, body: bytes) -> CacheEntry:
    return CacheEntry(
        key, gen, "GET", f"http://s.test/{key.decode()}", f"http://s.test/{key.decode()}", 200, [],
        None, "", None, 0, time.time(), None, None, body_digest(body), {"url": f"http://s.test/{key.decode()}"},
    )  # fmt: skip


def generation(
    path: Path, mode: str, pages: dict[bytes, tuple[bytes, list[bytes] | None]], seen: str
) -> None:
    """One crawl of the store: each page stored with its body, its items kept (None: not), folded in."""
    store = PageStore(path).open()
    items = PageItems(store)
    store.begin(mode)
    store.start_writer()
    for key, (body, lines) in pages.items():
        store.store(entry(key, store.gen, body), compress=False)
        store.see(key, f"http://s.test/{key.decode()}", seen)
        if lines is not None:
            items.keep(key, store.gen, lines)
    store.finish()
    store.close()


def stored(path: Path, key: bytes) -> list[bytes] | None:
    with PageStore(path) as store:
        items = PageItems(store)
        store.begin("recrawl")  # a generation after every one stored
        base = store.validators(key)
        return None if base is None else items.stored(key, base.gen, store.gen)


def test_items_are_kept_per_page_and_replaced_by_a_newer_parse(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    generation(path, "crawl", {b"a": (b"v1", [b'{"a":1}\n', b'{"a":2}\n']), b"b": (b"v1", [])}, "new")
    assert stored(path, b"a") == [b'{"a":1}\n', b'{"a":2}\n']
    assert stored(path, b"b") == []  # a page that yielded nothing is known to yield nothing
    generation(path, "recrawl", {b"a": (b"v2", [b'{"a":3}\n'])}, "changed")
    assert stored(path, b"a") == [b'{"a":3}\n']


def test_a_changed_page_whose_callback_failed_keeps_no_items(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    generation(path, "crawl", {b"a": (b"v1", [b'{"a":1}\n'])}, "new")
    # Its new version stored, no items for it: the old ones describe another version.
    generation(path, "recrawl", {b"a": (b"v2", None)}, "changed")
    assert stored(path, b"a") is None
    with PageStore(path) as store:
        assert PageItems(store).pages_without_items(before_gen=99) == 1
        # Folded away, not only left unread: the store does not grow with stale items.
        assert store.db.execute("SELECT count(*) FROM items").fetchone()[0] == 0


def test_gone_pages_items_go(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    generation(path, "crawl", {b"a": (b"v1", [b'{"a":1}\n']), b"b": (b"v1", [b'{"b":1}\n'])}, "new")
    store = PageStore(path).open()
    PageItems(store)
    store.begin("recrawl")
    store.start_writer()
    store.see(b"b", "http://s.test/b", "gone")
    store.finish()
    count = store.db.execute("SELECT count(*) FROM items WHERE key = ?", (b"b",)).fetchone()[0]
    store.close()
    assert count == 0
    assert stored(path, b"a") == [b'{"a":1}\n']


def test_crawl_options_are_those_the_generation_started_with(tmp_path: Path) -> None:
    with PageStore(tmp_path / "cache.sqlite") as store:
        store.begin("recrawl")
        assert record_crawl_options(store, store.gen, {"recrawl_output": "all"}) == {"recrawl_output": "all"}
        # Resumed with another value: what it started with is what counts.
        assert record_crawl_options(store, store.gen, {"recrawl_output": "changed"}) == {
            "recrawl_output": "all"
        }
