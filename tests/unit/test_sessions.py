"""Sessions: retirement, picking, header profiles, and state that survives a resume."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from yarl import URL

from crawlkit.fetch import (
    BrowserIdentities,
    Classification,
    HeaderProfile,
    Label,
    ProxyPool,
    Session,
    SessionPool,
    honest_profile,
    parse_proxy,
)
from crawlkit.http import accept_encoding

UA = "crawlkit/1.0 (+https://example.invalid/bot)"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()  # cookie deadlines are wall-clock times

    def __call__(self) -> float:
        return self.now


def honest() -> HeaderProfile:
    return honest_profile(UA)


def get(pool: SessionPool) -> Session:
    return asyncio.run(pool.acquire())


def test_a_block_retires_the_session_and_it_is_never_used_again() -> None:
    pool = SessionPool(honest, size=2)
    first = get(pool)
    pool.record(first, Classification(Label.BLOCKED, "cloudflare"))
    assert first.retired == "blocked"
    seen = {get(pool).id for _ in range(10)}
    assert first.id not in seen and len(seen) == 2
    assert pool.stats() == {"live": 2, "retired": {"blocked": 1}}


def test_the_error_score_falls_with_successes() -> None:
    pool = SessionPool(honest, max_score=2.0)
    s = get(pool)
    pool.record(s, Label.BLOCKED)
    for _ in range(4):
        pool.record(s, Label.OK)  # 1.0 - 4 * 0.25
    pool.record(s, Label.BLOCKED)
    assert s.retired is None
    pool.record(s, Label.BLOCKED)
    assert s.retired == "blocked"


def test_rate_limits_and_site_errors_keep_the_identity() -> None:
    pool = SessionPool(honest)
    s = get(pool)
    for label in (Label.RATE_LIMITED, Label.TARGET_ERROR, Label.NETWORK_ERROR, Label.PROXY_ERROR):
        pool.record(s, label)
    assert s.retired is None and get(pool) is s


def test_sessions_retire_after_their_uses_or_their_age() -> None:
    clock = Clock()
    pool = SessionPool(honest, max_uses=3, max_age=60, clock=clock)
    s = get(pool)
    for _ in range(3):
        pool.record(s, Label.OK)
    assert s.retired == "uses"
    t = get(pool)
    clock.now += 61
    assert get(pool) is not t and t.retired == "age"


def test_round_robin_and_least_used() -> None:
    pool = SessionPool(honest, size=3)
    assert len({get(pool).id for _ in range(3)}) == 3
    least = SessionPool(honest, size=2, pick="least_used")
    a = get(least)
    least.record(a, Label.OK)
    assert get(least) is not a


def test_each_session_keeps_its_proxy_and_the_pool_spreads_them() -> None:
    proxies = ProxyPool(
        [parse_proxy("http://a.example:1"), parse_proxy("http://b.example:2")], failures_to_rest=1
    )
    pool = SessionPool(honest, size=2, proxies=proxies)
    s1, s2 = get(pool), get(pool)
    assert {s1.proxy, s2.proxy} == set(proxies.proxies)
    with pytest.raises(AttributeError):
        s1.proxy = s2.proxy  # type: ignore[misc]
    # s1's proxy fails and rests: s1 is skipped, not moved to another proxy.
    pool.record(s1, Label.PROXY_ERROR)
    assert all(get(pool) is s2 for _ in range(4))
    assert s1.proxy != s2.proxy and s1.retired is None


def test_headers_the_profile_first_then_the_requests_own() -> None:
    asyncio.run(_headers())


async def _headers() -> None:
    profile = HeaderProfile("p", (("User-Agent", "UA"), ("Accept", "text/html"), ("Accept-Language", "en")))
    s = Session("s1", None, profile, 0.0)
    assert list(s.headers({"accept": "application/json", "X-Trace": "1"}).items()) == [
        ("User-Agent", "UA"),
        ("Accept-Language", "en"),
        ("accept", "application/json"),
        ("X-Trace", "1"),
    ]
    assert honest().headers == (("User-Agent", UA),)


def test_browser_identities_are_real_and_consistent() -> None:
    pytest.importorskip("browserforge")
    make = BrowserIdentities()
    for _ in range(20):
        profile = make()
        agent = profile.get("User-Agent") or ""
        assert agent.startswith("Mozilla/5.0 ")
        assert (
            profile.get(
                "Accept",
            )
            and profile.get("Accept-Language") == "en-US,en;q=0.9"
        )
        assert profile.get("Accept-Encoding") == accept_encoding()  # what crawlkit can decode
        assert profile.get("Connection") is None
        if profile.get("Sec-Fetch-Mode") is not None:
            assert (
                profile.get("Sec-Fetch-Site"),
                profile.get("Sec-Fetch-Mode"),
                profile.get("Sec-Fetch-Dest"),
            ) == (
                "none",
                "navigate",
                "document",
            )
        hints = profile.get("sec-ch-ua")
        if hints is not None:  # Chromium browsers; not always (none on insecure origins)
            assert "Chrome/" in agent
            assert agent.split("Chrome/")[1].split(".")[0] in hints  # the same version
        if "Firefox/" in agent or ("Safari/" in agent and "Chrome/" not in agent):
            assert hints is None  # these browsers send no client hints
        assert profile.name.startswith("browser: ")


def test_browser_identities_never_name_a_crawler() -> None:
    # browserforge's data holds a crawler's user agent dressed as Chrome's (about one in 30).
    pytest.importorskip("browserforge")
    make = BrowserIdentities()
    for _ in range(300):
        agent = (make().get("User-Agent") or "").lower()
        assert "compatible;" not in agent and "bot" not in agent and "crawl" not in agent, agent


def test_pool_state_round_trips_through_json_with_cookies_and_without_passwords() -> None:
    asyncio.run(_round_trip())


async def _round_trip() -> None:
    clock = Clock()
    proxy = parse_proxy("http://user:pw-secret@a.example:1")
    pool = SessionPool(honest, size=2, proxies=ProxyPool([proxy]), clock=clock)
    s = await pool.acquire()
    s.store_cookies(["sid=abc; Path=/", "wide=1; Domain=shop.example; Path=/"], "http://shop.example/login")
    s.store_cookies(["gone=1; Max-Age=10"], "http://shop.example/")
    pool.record(s, Label.OK)
    blocked = await pool.acquire()
    pool.record(blocked, Label.BLOCKED)
    text = json.dumps(pool.to_json())
    assert "pw-secret" not in text

    clock.now += 20  # "gone" has expired meanwhile
    again = SessionPool(honest, size=2, proxies=ProxyPool([proxy]), clock=clock)
    again.restore(json.loads(text))
    [back] = [x for x in again.live if x.id == s.id]
    assert back.proxy == proxy and back.proxy.password == "pw-secret"
    assert back.profile == s.profile and back.uses == 1
    assert back.cookie_header("http://shop.example/x") == "sid=abc; wide=1"
    # "sid" was host-only and stays so; "wide" covers the subdomains.
    assert back.cookie_header("http://www.shop.example/") == "wide=1"
    assert again.stats()["retired"] == {"blocked": 1}
    ids = {(await again.acquire()).id for _ in range(3)}
    assert ids == {s.id, "s3"} and blocked.id != s.id  # a retired id is not given again
    # Proxies no longer configured: their sessions are dropped.
    other = SessionPool(honest, proxies=ProxyPool([parse_proxy("http://b.example:2")]))
    other.restore(json.loads(text))
    assert other.live == []


def test_cookies_stay_within_the_session() -> None:
    asyncio.run(_own_cookies())


async def _own_cookies() -> None:
    a, b = Session("a", None, honest(), 0.0), Session("b", None, honest(), 0.0)
    a.store_cookies(["k=1"], "http://shop.example/")
    assert a.cookie_header("http://shop.example/") == "k=1"
    assert b.cookie_header("http://shop.example/") is None
    assert len(a.jar.filter_cookies(URL("http://other.example/"))) == 0
