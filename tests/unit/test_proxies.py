"""Proxies: parsing, the environment as curl reads it, and the pool's health kept per proxy."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from crawlkit.errors import ConfigError
from crawlkit.fetch import (
    EnvProxies,
    Label,
    NoProxyAvailable,
    NoProxyRules,
    Proxy,
    ProxyArgs,
    ProxyPool,
    ProxyState,
    parse_proxies,
    parse_proxy,
    usable_proxies,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://p.example:3128", Proxy("http", "p.example", 3128)),
        ("https://p.example", Proxy("https", "p.example", 443)),
        ("p.example:8080", Proxy("http", "p.example", 8080)),  # no scheme: http, as curl
        ("HTTP://P.Example:3128/", Proxy("http", "p.example", 3128)),
        ("http://user:s%40cret@p.example:3128", Proxy("http", "p.example", 3128, "user", "s@cret")),
        ("http://user@p.example:3128", Proxy("http", "p.example", 3128, "user", None)),
        ("socks5://u:p@10.0.0.1", Proxy("socks5", "10.0.0.1", 1080, "u", "p")),
        ("socks5h://[::1]:9050", Proxy("socks5h", "::1", 9050)),
    ],
)
def test_proxy_urls_parse(text: str, expected: Proxy) -> None:
    proxy = parse_proxy(text)
    assert proxy == expected
    assert proxy.password == expected.password


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("ftp://p.example:21", "scheme 'ftp'"),
        ("http://:3128", "no host"),
        ("http://p.example:99999", "unusable"),
        ("http://p.example:3128/path", "no path"),
    ],
)
def test_bad_proxy_urls_are_refused_clearly(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_proxy(text)


def test_credentials_never_show() -> None:
    proxy = parse_proxy("http://alice:hunter2@p.example:3128")
    for text in (str(proxy), repr(proxy), repr([proxy]), f"{proxy}"):
        assert "hunter2" not in text and "alice" not in text
        assert "p.example:3128" in text
    assert proxy.url == "http://p.example:3128"
    creds = {"Proxy-Authorization": "Basic YWxpY2U6aHVudGVyMg=="}  # alice:hunter2
    assert proxy.for_request("https://site.example/") == ProxyArgs(proxy.url, creds, {})
    assert proxy.for_request("HTTP://site.example/") == ProxyArgs(proxy.url, {}, creds)
    assert parse_proxy("http://p.example:3128").for_request("http://x/").headers == {}
    with pytest.raises(ConfigError) as caught:
        parse_proxy("ftp://alice:hunter2@p.example")
    assert "hunter2" not in str(caught.value)


def test_a_proxy_list_from_settings_and_files(tmp_path: Path) -> None:
    (tmp_path / "proxies.txt").write_text(
        "# the office proxies\n\nhttp://a.example:1\n  http://u:p@b.example:2  \nhttp://a.example:1\n"
    )
    found = parse_proxies(["@proxies.txt", "http://c.example:3", "http://b.example:2"], base_dir=tmp_path)
    # The same proxy under other credentials is another identity (providers pin sessions by user).
    assert [str(p) for p in found] == [
        "http://a.example:1",
        "http://***@b.example:2",
        "http://c.example:3",
        "http://b.example:2",
    ]
    (tmp_path / "bad.txt").write_text("http://a.example:1\nftp://x\n")
    with pytest.raises(ConfigError, match=r"bad.txt, line 2"):
        parse_proxies([f"@{tmp_path / 'bad.txt'}"])
    with pytest.raises(ConfigError, match="cannot read the proxy list"):
        parse_proxies(["@missing.txt"], base_dir=tmp_path)


def test_socks_proxies_are_usable_with_credentials_the_handshake_can_carry() -> None:
    proxies = [parse_proxy("http://a.example:1"), parse_proxy("socks5h://u:secret@s.example")]
    assert usable_proxies(proxies) == proxies
    assert ProxyPool(proxies).proxies == proxies
    for bad in ("socks5://us\u00e9r:p@s.example", f"socks5://u:{'x' * 256}@s.example"):
        with pytest.raises(ConfigError, match=r"a SOCKS (user name|password) must be ASCII") as caught:
            usable_proxies([parse_proxy(bad)])
        assert "x" * 256 not in str(caught.value)  # the password is not shown


def test_the_browser_takes_socks_proxies_by_the_schemes_it_knows_and_never_with_credentials() -> None:
    assert parse_proxy("http://u:p@h:1").for_browser == "http://u:p@h:1"
    assert parse_proxy("socks5h://h:1080").for_browser == "socks5://h:1080"  # resolves at the proxy
    assert parse_proxy("socks5://h:1080").for_browser == "socks5://h:1080"
    assert parse_proxy("socks4a://h").for_browser == "socks4://h:1080"
    assert parse_proxy("socks5://u:p@h:1080").for_browser is None


def test_without_aiohttp_socks_a_socks_proxy_is_refused_naming_the_extra() -> None:
    # A real interpreter where aiohttp-socks cannot be imported (as where the extra is missing).
    code = (
        "import sys; sys.modules['aiohttp_socks'] = None\n"
        "from crawlkit.errors import ConfigError\n"
        "from crawlkit.fetch import parse_proxy, usable_proxies\n"
        "assert usable_proxies([parse_proxy('http://a.example:1')])\n"
        "try:\n"
        "    usable_proxies([parse_proxy('socks5://u:secret@s.example:1080')])\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "SOCKS proxies (socks5://***@s.example:1080) need aiohttp-socks: pip install 'crawlkit[socks]'"
    )


NO_PROXY = [
    # NO_PROXY, host, port, direct?
    ("*", "anything.example", 80, True),
    ("example.com", "example.com", 80, True),
    ("example.com", "www.example.com", 80, True),
    ("example.com", "notexample.com", 80, False),
    (".example.com", "example.com", 80, True),
    (".example.com", "a.b.example.com", 80, True),
    ("*.example.com", "a.example.com", 80, True),
    ("EXAMPLE.com", "Example.COM", 80, True),
    ("example.com:8080", "example.com", 8080, True),
    ("example.com:8080", "example.com", 80, False),
    ("localhost, 127.0.0.1", "127.0.0.1", 80, True),
    ("10.0.0.0/8", "10.1.2.3", 80, True),
    ("10.0.0.0/8", "11.1.2.3", 80, False),
    ("::1", "[::1]", 80, True),
    ("", "example.com", 80, False),
]


@pytest.mark.parametrize(("rules", "host", "port", "direct"), NO_PROXY)
def test_no_proxy_rules(rules: str, host: str, port: int, direct: bool) -> None:
    assert NoProxyRules(rules).matches(host, port) is direct


def test_proxies_from_the_environment() -> None:
    env = {
        "http_proxy": "http://h.example:1",
        "HTTPS_PROXY": "http://u:p@s.example:2",
        "NO_PROXY": "internal.example,.corp",
    }
    proxies = EnvProxies(env)
    assert proxies.for_url("http://site.example/") == parse_proxy("http://h.example:1")
    assert proxies.for_url("https://site.example/") == parse_proxy("http://u:p@s.example:2")
    assert proxies.for_url("http://internal.example/x") is None
    assert proxies.for_url("https://a.corp/x") is None
    assert proxies.for_url("ftp://site.example/") is None
    # Lower case wins; ALL_PROXY stands in for the one not given.
    both = EnvProxies(
        {"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:2", "ALL_PROXY": "http://all:3"}
    )
    assert both.for_url("http://x/") == parse_proxy("http://low:1")
    assert both.for_url("https://x/") == parse_proxy("http://all:3")
    # In a CGI program, HTTP_PROXY comes from the client's Proxy: header (httpoxy): not read.
    cgi = EnvProxies({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"})
    assert cgi.for_url("http://x/") is None
    assert not EnvProxies({}).any


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_proxy_rests_with_a_growing_jittered_backoff_and_comes_back() -> None:
    clock = Clock()
    a, b = parse_proxy("http://a.example:1"), parse_proxy("http://b.example:2")
    pool = ProxyPool([a, b], failures_to_rest=3, rest_base=10, rest_max=1000, clock=clock)
    for _ in range(2):
        pool.record(a, Label.PROXY_ERROR)
    assert pool.state(a) is ProxyState.READY
    pool.record(a, Label.PROXY_ERROR)
    assert pool.state(a) is ProxyState.RESTING
    assert pool.pick() == b  # the site's health is none of this: b still serves
    first_rest = pool.next_ready_in() if pool.pick() is None else pool.stats()[0]["resting_for"]
    assert 10 <= float(str(first_rest)) <= 20  # 10 * 2^0, plus up to 10 of jitter
    clock.now += 21
    assert pool.state(a) is ProxyState.READY
    pool.record(a, Label.PROXY_ERROR)  # back, and failing at once: a longer rest
    assert pool.state(a) is ProxyState.RESTING
    assert 20 <= float(str(pool.stats()[0]["resting_for"])) <= 30
    clock.now += 31
    pool.record(a, Label.OK)  # whole again
    pool.record(a, Label.PROXY_ERROR)
    assert pool.state(a) is ProxyState.READY


def test_site_answers_do_not_count_against_the_proxy() -> None:
    a = parse_proxy("http://a.example:1")
    pool = ProxyPool([a], failures_to_rest=2)
    for label in (
        Label.PROXY_ERROR,
        Label.BLOCKED,
        Label.PROXY_ERROR,
        Label.TARGET_ERROR,
        Label.RATE_LIMITED,
    ):
        pool.record(a, label)
    pool.record(a, Label.NETWORK_ERROR)
    assert pool.state(a) is ProxyState.READY
    assert pool.stats() == [
        {
            "proxy": "http://a.example:1",
            "state": "ready",
            "requests": 6,
            "successes": 0,
            "blocks": 1,
            "proxy_errors": 2,
            "resting_for": 0.0,
        }
    ]


def test_the_least_used_ready_proxy_is_picked() -> None:
    a, b = parse_proxy("http://a.example:1"), parse_proxy("http://b.example:2")
    pool = ProxyPool([a, b])
    picked = []
    for _ in range(4):
        proxy = pool.pick()
        assert proxy is not None
        picked.append(proxy)
        pool.record(proxy, Label.OK)
    assert picked == [a, b, a, b]


def test_acquire_waits_for_a_rest_to_end_or_says_no_proxy_is_available() -> None:
    a = parse_proxy("http://a.example:1")
    pool = ProxyPool([a], failures_to_rest=1, rest_base=0.2, rest_max=0.2)
    pool.record(a, Label.PROXY_ERROR)
    assert pool.pick() is None
    with pytest.raises(NoProxyAvailable, match="all 1 proxies are resting") as caught:
        asyncio.run(pool.acquire(wait=0.05))
    assert caught.value.reason == "no_proxy"
    assert asyncio.run(pool.acquire(wait=5)) == a


def test_a_pool_needs_a_proxy() -> None:
    with pytest.raises(ConfigError):
        ProxyPool([])
