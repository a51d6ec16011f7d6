"""The fetch API's named sessions and the reading of its query, on their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from crawlkit.fetch import honest_profile, parse_proxy
from crawlkit.serve import BadOption, SessionBook, SessionsFull, choose_proxy, read_options


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def book(limit: int = 2, idle: float = 60.0) -> tuple[SessionBook, Clock]:
    clock = Clock()
    profile = honest_profile("test-agent")
    return SessionBook(lambda: profile, limit=limit, idle=idle, clock=clock), clock


def in_a_loop(test: Callable[[], None]) -> Callable[[], None]:
    """A session's cookie jar (aiohttp's) is made in a running event loop."""

    def run() -> None:
        async def inner() -> None:
            test()

        asyncio.run(inner())

    run.__name__ = test.__name__
    return run


@in_a_loop
def test_a_name_is_one_session_until_it_idles_out() -> None:
    sessions, clock = book()
    first, new = sessions.take("a", None, "none")
    assert new
    sessions.give_back(first)
    clock.now += 59
    again, new = sessions.take("a", None, "none")
    assert again is first and not new
    sessions.give_back(again)
    clock.now += 61
    assert sessions.get("a") is None
    fresh, new = sessions.take("a", None, "none")
    assert new and fresh.session.id != first.session.id  # its own browser context, its own jar
    assert fresh.session.jar is not first.session.jar


@in_a_loop
def test_a_full_book_drops_the_longest_unused_and_never_one_in_use() -> None:
    sessions, clock = book(limit=2)
    a, _ = sessions.take("a", None, "none")
    clock.now += 1
    b, _ = sessions.take("b", None, "none")
    sessions.give_back(b)
    sessions.take("c", None, "none")  # a is in use: b goes
    assert sessions.get("a") is a and sessions.get("b") is None and len(sessions) == 2
    with pytest.raises(SessionsFull, match="all 2 sessions are in use"):
        sessions.take("d", None, "none")


def test_choosing_a_proxy() -> None:
    pool = [parse_proxy("http://user:pw@203.0.113.1:3128"), parse_proxy("http://203.0.113.2:8080")]
    assert choose_proxy(None, pool, allow_private=False) == "auto"
    assert choose_proxy(None, [], allow_private=False) == "none"
    chosen = choose_proxy("203.0.113.1:3128", pool, allow_private=False)
    assert chosen == pool[0] and getattr(chosen, "password", None) == "pw"  # the server's credentials
    with pytest.raises(BadOption, match="not one of the server's proxies"):
        choose_proxy("http://198.51.100.7:3128", pool, allow_private=False)
    assert choose_proxy("http://198.51.100.7:3128", pool, allow_private=True) == parse_proxy(
        "198.51.100.7:3128"
    )


def test_render_options_read_together() -> None:
    options = read_options({"url": ["https://example.com/"], "render": ["true"], "wait_for": ["#x"]})
    assert options.render and options.wait_for == "#x" and options.render_timeout is None
    with pytest.raises(BadOption, match=r"render_timeout must be within 1\.\.9 "):
        read_options({"url": ["u"], "timeout": ["10"], "render": ["1"], "render_timeout": ["9.5"]})
