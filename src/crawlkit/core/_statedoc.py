"""The checkpoint's state document: ``spider.state``, and beside it what the crawl carries.

A checkpoint records one JSON document with the acks it makes durable, in the same transaction.
It holds ``spider.state`` and, under reserved keys, the cookie jars, the sessions (each with its
jar) and, with several feeds, every feed's offset: the frontier's checkpoint has room for one
offset, and this way all of them are recorded with the acks they cover, in every frontier alike.
A response's cookies reach its jar before its request can be acked, so a checkpoint that
records a login as done records the session it opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["CrawlState", "dump_state", "load_state"]

COOKIES_KEY = "__crawlkit_cookie_jars__"
SESSIONS_KEY = "__crawlkit_sessions__"
FEED_OFFSETS_KEY = "__crawlkit_feed_offsets__"

CookieJars = list[tuple[Any, list[dict[str, Any]]]]


@dataclass
class CrawlState:
    """What a state document holds, each part as the crawl gave it (None: not recorded)."""

    spider: dict[str, Any] = field(default_factory=dict)
    cookie_jars: CookieJars | None = None
    sessions: dict[str, Any] | None = None
    feed_offsets: dict[str, Any] | None = None


def dump_state(state: CrawlState) -> tuple[bytes, str | None]:
    """The document, and why ``spider.state`` had to be left out of it (None: it is in it).

    The crawl's own parts are kept even then: without them a resume logs in again, or cannot cut
    its feeds back.
    """
    crawl: dict[str, Any] = {}
    if state.cookie_jars:
        crawl[COOKIES_KEY] = state.cookie_jars
    if state.sessions:
        crawl[SESSIONS_KEY] = state.sessions
    if state.feed_offsets is not None:
        crawl[FEED_OFFSETS_KEY] = state.feed_offsets
    try:
        return orjson.dumps({**state.spider, **crawl}), None
    except TypeError as exc:  # not JSON
        return orjson.dumps(crawl), str(exc)


def load_state(document: bytes) -> CrawlState:
    """The parts of a document; what is missing or malformed counts as not recorded."""
    try:
        data = orjson.loads(document) if document else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        return CrawlState()
    jars = data.pop(COOKIES_KEY, None)
    sessions = data.pop(SESSIONS_KEY, None)
    offsets = data.pop(FEED_OFFSETS_KEY, None)
    return CrawlState(
        spider=data,
        cookie_jars=[(key, cookies) for key, cookies in jars] if isinstance(jars, list) else None,
        sessions=sessions if isinstance(sessions, dict) else None,
        feed_offsets=offsets if isinstance(offsets, dict) else None,
    )
