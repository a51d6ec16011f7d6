"""The checkpoint's state document: spider.state and what the crawl carries beside it."""

from __future__ import annotations

from crawlkit.core._statedoc import CrawlState, dump_state, load_state


def test_the_crawls_parts_round_trip_beside_the_spiders_state() -> None:
    state = CrawlState(
        spider={"pages_seen": 3},
        cookie_jars=[(None, [{"name": "sid", "value": "1"}]), ("alice", [])],
        sessions={"sessions": [{"id": "s1"}]},
        feed_offsets={"/out/a.jsonl": 120, "/out/b.csv": 80},
    )
    document, why = dump_state(state)
    assert why is None
    assert load_state(document) == state


def test_a_spider_state_that_is_not_json_loses_nothing_of_the_crawls_own() -> None:
    # Without its sessions a resumed crawl is new visitors to the site (it logs in again), and
    # without its feeds' offsets it cannot cut them back: only spider.state may be left out.
    state = CrawlState(
        spider={"lock": object()},
        cookie_jars=[(None, [{"name": "sid", "value": "1"}])],
        sessions={"sessions": [{"id": "s1"}]},
        feed_offsets={"/out/a.jsonl": 120},
    )
    document, why = dump_state(state)
    assert why is not None and "not JSON serializable" in why
    loaded = load_state(document)
    assert loaded == CrawlState(
        spider={}, cookie_jars=state.cookie_jars, sessions=state.sessions, feed_offsets=state.feed_offsets
    )


def test_a_document_that_is_not_an_object_counts_as_nothing_recorded() -> None:
    assert load_state(b"") == CrawlState()
    assert load_state(b"[1, 2]") == CrawlState()
    assert load_state(b"{not json") == CrawlState()
    assert load_state(b'{"__crawlkit_sessions__": 3, "x": 1}') == CrawlState(spider={"x": 1})
