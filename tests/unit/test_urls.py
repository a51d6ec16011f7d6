"""crawlkit.http._urls: canonical URLs, fingerprints, the http(s) check and the offsite filter."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlkit.http import _urls as urls
from crawlkit.http._urls import OffsiteFilter, canonicalize_url, fingerprint, host_of, is_http_url

# -- canonicalize_url -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # scheme and host case
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("https://WWW.Example.org/a", "https://www.example.org/a"),
        # the default port goes, another port stays
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        # the fragment goes
        ("http://example.com/a#section", "http://example.com/a"),
        ("http://example.com/a?x=1#section", "http://example.com/a?x=1"),
        ("http://example.com/a#", "http://example.com/a"),
        # the query is sorted by key, then value; blank values are kept
        ("http://example.com/a?b=2&a=1", "http://example.com/a?a=1&b=2"),
        ("http://example.com/a?a=2&a=1", "http://example.com/a?a=1&a=2"),
        ("http://example.com/a?b=&a=1", "http://example.com/a?a=1&b="),
        # dot segments are resolved
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/b/../../../c", "http://example.com/c"),
        # the path keeps its case
        ("http://example.com/CaseMatters", "http://example.com/CaseMatters"),
    ],
)
def test_canonicalize_url(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_canonicalize_is_idempotent() -> None:
    for url in (
        "HTTP://Example.COM:80/a/./b/../c?z=1&a=2#frag",
        "http://127.0.0.1:8080/graph/5?size=10&fanout=3&seed=0",
        "https://example.com/caf%C3%A9?q=a%20b",
    ):
        once = canonicalize_url(url)
        assert canonicalize_url(once) == once


def test_canonicalize_query_encoding_variants_agree() -> None:
    assert canonicalize_url("http://a.test/s?q=a%20b") == canonicalize_url("http://a.test/s?q=a+b")
    assert canonicalize_url("http://a.test/s?p=%2F") == canonicalize_url("http://a.test/s?p=/")


def test_canonicalize_non_ascii_is_percent_encoded() -> None:
    assert canonicalize_url("http://a.test/café?q=é") == "http://a.test/caf%C3%A9?q=%C3%A9"


def test_empty_path_and_root_path_are_the_same_page() -> None:
    # ``GET http://example.com`` and ``GET http://example.com/`` send the same request line
    # ("GET /"), RFC 3986 section 6.2.3 makes them equivalent, and a crawl that starts at one and
    # finds links to the other must not fetch the home page twice.
    assert canonicalize_url("http://example.com") == canonicalize_url("http://example.com/")
    assert fingerprint("GET", "http://example.com") == fingerprint("GET", "http://example.com/")


# -- fingerprint ----------------------------------------------------------------------------------------

_VARIANTS = [
    "http://127.0.0.1:8080/graph/5?size=10&fanout=3&seed=0",
    "HTTP://127.0.0.1:8080/graph/5?size=10&fanout=3&seed=0",
    "http://127.0.0.1:8080/graph/5?size=10&fanout=3&seed=0#from-4",
    "http://127.0.0.1:8080/graph/5?seed=0&size=10&fanout=3",
    "http://127.0.0.1:8080/graph/x/../5?size=10&fanout=3&seed=0",
    "http://127.0.0.1:8080/graph/./5?fanout=3&seed=0&size=10#top",
]


def test_fingerprint_is_equal_across_url_variants() -> None:
    fps = {fingerprint("GET", url) for url in _VARIANTS}
    assert len(fps) == 1


def test_fingerprint_host_case_and_default_port() -> None:
    assert fingerprint("GET", "http://EXAMPLE.com:80/a") == fingerprint("GET", "http://example.com/a")


def test_fingerprint_shape() -> None:
    fp = fingerprint("GET", "http://example.com/")
    assert isinstance(fp, bytes)
    assert len(fp) == 16


def test_fingerprint_method_is_case_insensitive_but_counts() -> None:
    url = "http://example.com/a"
    assert fingerprint("get", url) == fingerprint("GET", url)
    assert fingerprint("GET", url) != fingerprint("POST", url)
    assert fingerprint("GET", url) != fingerprint("HEAD", url)


def test_fingerprint_digests_are_those_stored_jobs_hold() -> None:
    # Fingerprints persist in SQLite and Redis frontiers: a resumed job must compute the same
    # ones, so the digest is pinned here, with and without a body.
    assert fingerprint("GET", "http://127.0.0.1:8080/catalogue/product-123/index.html").hex() == (
        "54e43e86f23f514cdabf93ee0ffcefd4"
    )
    assert fingerprint("post", "http://127.0.0.1:8080/catalogue/product-123/index.html", b"x=1").hex() == (
        "53ce3481b54e3c3ef88d787a96c7488e"
    )
    assert fingerprint("GET", "HTTP://Example.COM:80/a?b=2&a=1#f").hex() == _stepwise_digest(
        b"GET", b"http://example.com/a?a=1&b=2"
    )


def _stepwise_digest(method: bytes, canonical: bytes, body: bytes = b"") -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in (method, b" ", canonical):
        h.update(part)
    if body:
        h.update(b" ")
        h.update(hashlib.blake2b(body, digest_size=16).digest())
    return h.hexdigest()


@pytest.mark.parametrize("body", [b"", b"a=1", "é".encode()])
def test_fingerprint_is_the_stepwise_digest(body: bytes) -> None:
    url = "https://a.test/x?%E2%82%AC=1"
    expected = _stepwise_digest(b"PUT", canonicalize_url(url).encode(), body)
    assert fingerprint("PUT", url, body).hex() == expected


def test_fingerprint_body_counts() -> None:
    url = "http://example.com/a"
    assert fingerprint("POST", url, b"a=1") == fingerprint("POST", url, b"a=1")
    assert fingerprint("POST", url, b"a=1") != fingerprint("POST", url, b"a=2")
    assert fingerprint("POST", url, b"a=1") != fingerprint("POST", url)
    assert fingerprint("POST", url, b"") == fingerprint("POST", url)


def test_fingerprint_differs_for_different_pages() -> None:
    base = "http://example.com/a?x=1"
    others = [
        "http://example.com/b?x=1",
        "http://example.com/a?x=2",
        "http://example.com/a",
        "https://example.com/a?x=1",
        "http://example.com:8080/a?x=1",
        "http://other.example.com/a?x=1",
        "http://example.com/A?x=1",
    ]
    fps = {fingerprint("GET", base)} | {fingerprint("GET", u) for u in others}
    assert len(fps) == len(others) + 1


# -- is_http_url ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://example.com/",
        "https://example.com/a?b=c#d",
        "HTTP://EXAMPLE.COM/",
        "HttpS://example.com",
        "http://127.0.0.1:8080/x",
        "http://[::1]:8080/x",
    ],
)
def test_is_http_url_accepts(url: str) -> None:
    assert is_http_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com",
        "/relative/path",
        "relative",
        "//example.com/scheme-relative",
        "ftp://example.com/file",
        "file:///etc/passwd",
        "mailto:someone@example.com",
        "javascript:void(0)",
        "tel:+100",
        "data:text/plain,hi",
        "http://",
        "http:///path",
        "http://?q",
        "http://#frag",
        "http:/example.com",
        "httpx://example.com",
    ],
)
def test_is_http_url_rejects(url: str) -> None:
    assert not is_http_url(url)


@pytest.mark.parametrize("url", ["http://:80/", "http://user@/x", "http://user:pw@:8080/"])
def test_is_http_url_rejects_urls_without_a_host(url: str) -> None:
    # The docstring promises "absolute http(s) URLs with a host". These have none, and
    # canonicalize_url()/fingerprint() raise ValueError on them, so letting them through means a
    # link on a page can crash whatever computes the request's fingerprint.
    assert not is_http_url(url)


def test_host_of() -> None:
    assert host_of("http://Example.COM:8080/a") == "example.com"
    assert host_of("https://sub.example.com/") == "sub.example.com"
    assert host_of("http://127.0.0.1:9/") == "127.0.0.1"


# -- OffsiteFilter ----------------------------------------------------------------------------------


def test_offsite_filter_empty_allows_everything() -> None:
    f = OffsiteFilter([])
    assert f.allows("http://anything.example/")
    assert f.allows("http://offsite.invalid/x")


def test_offsite_filter_domain_and_subdomains() -> None:
    f = OffsiteFilter(["example.com"])
    assert f.allows("http://example.com/")
    assert f.allows("https://www.example.com/a")
    assert f.allows("http://a.b.c.example.com:8080/a")
    assert f.allows("http://EXAMPLE.COM/")
    assert not f.allows("http://notexample.com/")
    assert not f.allows("http://example.com.evil.test/")
    assert not f.allows("http://example.org/")
    assert not f.allows("http://com/")


def test_offsite_filter_normalises_allowed_domains() -> None:
    f = OffsiteFilter(["Example.COM.", ".sub.example.org", ""])
    assert f.allows("http://example.com/")
    assert f.allows("http://x.example.com/")
    assert f.allows("http://sub.example.org/")
    assert f.allows("http://deep.sub.example.org/")
    assert not f.allows("http://example.org/")


def test_offsite_filter_subdomain_only_does_not_allow_parent() -> None:
    f = OffsiteFilter(["books.example.com"])
    assert f.allows("http://books.example.com/")
    assert f.allows("http://eu.books.example.com/")
    assert not f.allows("http://example.com/")
    assert not f.allows("http://music.example.com/")


def test_offsite_filter_ip_and_several_domains() -> None:
    f = OffsiteFilter(["127.0.0.1", "example.com"])
    assert f.allows("http://127.0.0.1:4321/graph/0")
    assert f.allows("http://www.example.com/")
    assert not f.allows("http://offsite.invalid/x")
    assert not f.allows("http://127.0.0.2/")


def test_offsite_filter_cached_verdicts_stay_correct() -> None:
    f = OffsiteFilter(["example.com"])
    for _ in range(3):
        assert f.allows("http://www.example.com/a")
        assert not f.allows("http://www.example.org/a")


# -- the plain-URL fast paths agree with the full parse -----------------------------------------

_URL_CHARS = "aZ09-._~!$&'()*+,;=:@/%?#é [].\\"
_hosts = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.\-_]{0,12}", fullmatch=True) | st.sampled_from(
    [
        *("127.0.0.1", "example.com", "a.b-c.test", "xn--bcher-kva.test", "1", "999.1.1.1", "a..b"),
        *("0x7f.1", "127.1", "a.08", "a.0x1", "xn--a.test", "010.0.0.1", "1.2.3.4.5", "a.1b"),
    ]
)
_ports = st.none() | st.sampled_from(["80", "443", "8080", "0", "08", "65535", "65536", "99999"])
_paths = st.text(alphabet=_URL_CHARS, max_size=24)


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP"]))
    port = draw(_ports)
    path = draw(_paths)
    return f"{scheme}://{draw(_hosts)}{':' + port if port else ''}{'/' if path else ''}{path}"


@settings(max_examples=2000, deadline=None)
@given(_urls())
def test_canonical_fast_path_agrees_with_the_full_parse(url: str) -> None:
    if urls._plain_parts(url) is None:
        return
    assert canonicalize_url(url) == urls._canonicalize_parsed(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://a.test:80/x",  # a default port: refused
        "http://a.test:8080/x",
        "http://127.0.0.1:8080/x",
        "http://127.1:8080/x",  # an IPv4 host not in canonical form: refused
        "http://xn--a.test/x",
        "http://a..b/x",
        "https://b.test:99999/x",
    ],
)
def test_plain_verdicts_of_an_origin_are_the_same_once_remembered(url: str) -> None:
    urls._PLAIN_ORIGINS.clear()
    cold = urls._plain_parts(url)
    remembered = {url.removesuffix("/x"): cold is not None}
    assert remembered == urls._PLAIN_ORIGINS
    assert urls._plain_parts(url) == cold  # now answered from what the first call remembered
    origin = url.removesuffix("/x")
    assert urls._plain_parts(origin + "/y/z") == (None if cold is None else (origin, "/y/z"))
    assert urls._plain_parts(origin + "/./x") is None  # a dot segment, on any origin


def test_remembered_plain_origins_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    urls._PLAIN_ORIGINS.clear()
    monkeypatch.setattr(urls, "_PLAIN_ORIGINS_MAX", 3)
    for n in range(10):
        assert urls._plain_parts(f"http://h{n}.test/p") == (f"http://h{n}.test", "/p")
    assert len(urls._PLAIN_ORIGINS) == 3
    assert urls._plain_parts("http://h9.test:80/p") is None  # past the bound: checked afresh


@settings(max_examples=2000, deadline=None)
@given(_urls(), st.text(alphabet=_URL_CHARS, min_size=1, max_size=16) | _urls())
def test_plain_join_agrees_with_the_url_standard(base: str, ref: str) -> None:
    plain = urls.plain_base(base)
    joined = None if plain is None else urls.join_plain(plain, ref)
    if joined is None:
        return
    assert joined == urls.resolve(base, ref)
    assert canonicalize_url(joined) == urls._canonicalize_parsed(joined) == joined


@pytest.mark.parametrize(
    ("base", "ref", "expected"),
    [
        ("http://a.test/x/page.html", "other.html", "http://a.test/x/other.html"),
        ("http://a.test/x/", "y/z.html", "http://a.test/x/y/z.html"),
        ("http://a.test:8080/x/page", "/root.html", "http://a.test:8080/root.html"),
        ("http://a.test", "p.html", "http://a.test/p.html"),
        ("http://a.test/x/page", "https://b.test/elsewhere", "https://b.test/elsewhere"),
    ],
)
def test_plain_join_resolves_common_links(base: str, ref: str, expected: str) -> None:
    plain = urls.plain_base(base)
    assert plain is not None
    assert urls.join_plain(plain, ref) == expected


@pytest.mark.parametrize(
    ("base", "ref"),
    [
        ("http://a.test/x/page.html", "../up.html"),  # dot segments: the full parse resolves them
        ("http://a.test/x/page.html", "./here.html"),
        ("http://a.test/x/page.html", "//other.test/p"),  # another host
        ("http://a.test/x/page.html", "mailto:me@a.test"),  # a scheme
        ("http://a.test/x/page.html", "p.html?q=1"),  # a query
        ("http://a.test/x/page.html", "caf\u00e9.html"),  # needs escaping
        ("http://a.test:80/x/page.html", "p.html"),  # a default port to drop
        ("http://a.test/x/page.html?q=1", "p.html"),  # a base with a query
        ("HTTP://A.test/x/page.html", "p.html"),  # case to fold
        ("http://a.test/x/page.html", "http://B.test/p"),  # an absolute URL with case to fold
        ("http://a.test/x/page.html", "http://b.test:80/p"),  # ... with a default port
        ("http://a.test/x/page.html", "http://127.1/p"),  # an IPv4 host the Standard rewrites
        ("http://a.test/x/page.html", "http://a.0x1/p"),  # ... or refuses
        ("http://1/x/page.html", "p.html"),  # a base whose host is rewritten (0.0.0.1)
        ("http://a.test/x/page.html", "http://xn--a.test/p"),  # punycode to check
    ],
)
def test_plain_join_leaves_the_rest_to_the_full_parse(base: str, ref: str) -> None:
    plain = urls.plain_base(base)
    assert plain is None or urls.join_plain(plain, ref) is None


# -- allowed_domains entries with ports, URLs and strings ------------------------------------------


def test_offsite_filter_entry_with_a_port_allows_that_port_only() -> None:
    f = OffsiteFilter(["127.0.0.1:8080", "example.com"])
    assert f.allows("http://127.0.0.1:8080/a")
    assert not f.allows("http://127.0.0.1:8801/search")  # another service on the same host
    assert not f.allows("http://127.0.0.1/a")
    assert f.allows("http://www.example.com:9000/")  # no port given: any port


def test_offsite_filter_port_entries_know_default_ports() -> None:
    f = OffsiteFilter(["example.com:443"])
    assert f.allows("https://example.com/a")
    assert f.allows("https://www.example.com:443/a")
    assert not f.allows("http://example.com/a")  # port 80


def test_offsite_filter_takes_the_host_of_a_url_entry() -> None:
    f = OffsiteFilter(["https://Books.Example/catalogue/", "http://[::1]:8080/"])
    assert f.allows("http://books.example/x")
    assert f.allows("http://[::1]:8080/x")
    assert not f.allows("http://[::1]:9090/x")


def test_offsite_filter_reads_a_string_as_a_comma_separated_list() -> None:
    f = OffsiteFilter("books.example, 127.0.0.1:8080")
    assert f.allows("http://books.example/")
    assert f.allows("http://127.0.0.1:8080/")
    assert not f.allows("http://10.0.0.1/")  # not the letters of "127.0.0.1" one by one
    assert not f.allows("http://127.0.0.1:8801/")


def test_offsite_filter_refuses_a_bad_port() -> None:
    with pytest.raises(ValueError, match="not a port"):
        OffsiteFilter(["example.com:http"])


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://a.test:8080/p/q?x=1#f", "http://a.test:8080"),
        ("https://a.test?x=1", "https://a.test"),
        ("http://a.test#f", "http://a.test"),
        ("http://user@a.test", "http://user@a.test"),
        ("not a url", "not a url"),
    ],
)
def test_origin_of_stops_at_the_end_of_the_authority(url: str, origin: str) -> None:
    assert urls.origin_of(url) == origin
