"""``wire_url``'s shortcut: a URL that is its own WHATWG serialisation skips the parse.

Whatever the way, what aiohttp is handed must be what the full parse gives: the URL as ada-url
serialises it, handed to yarl as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ada_url import join_url
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from crawlkit.http import _urls as urls
from crawlkit.http import wire_url

WPT = Path(__file__).resolve().parents[1] / "data" / "wpt-urltestdata.json"


def _parsed(url: str) -> URL | str:
    """What ``wire_url`` gives by the full parse, for every URL."""
    try:
        return URL(join_url(url, ""), encoded=True)
    except ValueError:
        return url


def _same(url: str) -> None:
    wired, parsed = wire_url(url), _parsed(url)
    assert type(wired) is type(parsed)
    assert str(wired) == str(parsed)
    if urls._is_serialised(url):
        assert join_url(url, "") == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/catalogue/product-1.html",
        "https://www.example.com/a/b-c_d~e/f.html",
        "http://example.com/",
        "http://a.test:65535/x:y@z/!$&'()*+,;=",
        "http://a-b.c-d.test/p",
    ],
)
def test_the_common_shapes_take_the_shortcut(url: str) -> None:
    assert urls._is_serialised(url)
    _same(url)


@pytest.mark.parametrize(
    "url",
    [
        "HTTP://a.test/",  # the scheme is lowercased
        "http://A.test/",  # so is the host
        "http://a.test",  # an empty path becomes "/"
        "http://a.test:80/",  # the default port goes
        "https://a.test:443/",
        "http://a.test:080/",  # leading zeros go
        "http://a.test:65536/",  # refused
        "http://a.test/x/../y",  # dot segments are resolved
        "http://a.test/./y",
        "http://a.test/x/..",
        "http://a.test/%2e%2e/y",
        "http://a.test/a b",  # escaped
        "http://a.test/a?b#c",  # the fragment goes
        "http://a.test/é",
        "http://127.1/",  # IPv4 hosts in other forms are rewritten ...
        "http://0x7f.0.0.1/",
        "http://010.0.0.1/",
        "http://a.08/",  # ... or refused
        "http://1.2.3.4.5/",
        "http://999.1.1.1/",
        "http://xn--bcher-kva.test/",  # punycode is checked
        "http://xn--a.test/",
        "http://a..b/",
        "http://.a.test/",
        "http://a.test./",
        "http://user@a.test/",
        "http://a.test\\x",
    ],
)
def test_what_the_parser_rewrites_or_refuses_takes_the_parse(url: str) -> None:
    assert not urls._is_serialised(url)
    _same(url)


def _wpt_urls() -> list[str]:
    cases = [case for case in json.loads(WPT.read_text()) if isinstance(case, dict)]
    found = {case["input"] for case in cases} | {case["href"] for case in cases if "href" in case}
    return sorted(found)


def test_the_url_standards_own_cases_agree() -> None:
    for url in _wpt_urls():
        _same(url)


_SAFE = "az09-._~!$&'()*+,;=:@/"  # what the shortcut accepts in a path
_CHARS = _SAFE + "Z%?#é [].\\`{}^|\t"
_hosts = (
    st.from_regex(r"[a-z0-9.\-]{1,12}", fullmatch=True)
    | st.from_regex(r"[a-zA-Z0-9.\-_]{1,12}", fullmatch=True)
    | st.sampled_from(
        [
            *("127.0.0.1", "255.255.255.255", "256.1.1.1", "1.2.3", "0.0.0.0", "00.1.1.1", "1.2.3.04"),
            *("example.com", "a.b-c.test", "-", "a.-", "a.1b", "a.b1", "a.0x1", "xn--a", "a.xn--b"),
        ]
    )
)
_ports = st.none() | st.sampled_from(["", "0", "1", "80", "443", "8080", "08", "65535", "65536", "99999"])


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp", "ws"]))
    port = draw(_ports)
    path = draw(st.text(alphabet=_SAFE, max_size=24) | st.text(alphabet=_CHARS, max_size=24))
    slash = draw(st.sampled_from(["/", ""]))
    return f"{scheme}://{draw(_hosts)}{'' if port is None else ':' + port}{slash}{path}"


@settings(max_examples=3000, deadline=None)
@given(_urls())
def test_the_shortcut_agrees_with_the_full_parse(url: str) -> None:
    _same(url)


@st.composite
def _plain_looking_urls(draw: st.DrawFn) -> str:
    """URLs near the shortcut's edge: mostly of its shape, with its traps (dots, digits, ports)."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.from_regex(r"[a-z0-9-]{1,4}(\.[a-z0-9.-]{1,4}){0,3}", fullmatch=True) | _hosts)
    port = draw(_ports)
    path = draw(st.text(alphabet=_SAFE, max_size=24))
    return f"{scheme}://{host}{'' if port is None else ':' + port}/{path}"


@settings(max_examples=3000, deadline=None)
@given(_plain_looking_urls())
def test_the_shortcut_agrees_with_the_full_parse_near_its_edge(url: str) -> None:
    _same(url)
