"""The block classifier: one label per attempt, challenge pages told from their content.

The pages in ``tests/fixtures/challenges`` are written for these tests: each carries the markers
that a vendor's real challenge or block page carries, and nothing else of it.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import brotli
import pytest

from crawlkit.errors import ConnectError, FetchTimeout
from crawlkit.fetch import CHALLENGE_MAX_BYTES, Attempt, Classification, Classifier, Label, Rule

PAGES = Path(__file__).parent.parent / "fixtures" / "challenges"
HTML = [("Content-Type", "text/html; charset=utf-8")]


def page(name: str) -> bytes:
    return (PAGES / f"{name}.html").read_bytes()


CHALLENGES = [
    # fixture, status, vendor
    ("cloudflare_js", 403, "cloudflare"),
    ("cloudflare_js", 503, "cloudflare"),
    ("cloudflare_js", 200, "cloudflare"),
    ("cloudflare_localised", 200, "cloudflare"),
    ("cloudflare_blocked", 200, "cloudflare"),
    ("datadome", 200, "datadome"),
    ("datadome", 403, "datadome"),
    ("perimeterx", 200, "perimeterx"),
    ("perimeterx_untitled", 200, "perimeterx"),
    ("akamai_denied", 403, "akamai"),
    ("akamai_interstitial", 200, "akamai"),
    ("imperva", 200, "imperva"),
    ("recaptcha_sorry", 429, "recaptcha"),  # a CAPTCHA on a 429: the identity is burnt
    ("recaptcha_sorry", 200, "recaptcha"),
    ("hcaptcha_gate", 200, "hcaptcha"),
    ("turnstile_gate", 200, "turnstile"),
]


@pytest.mark.parametrize(("name", "status", "vendor"), CHALLENGES)
def test_challenge_pages_are_blocked_whatever_their_status(name: str, status: int, vendor: str) -> None:
    verdict = Classifier().response(status, HTML, page(name))
    assert verdict == Classification(Label.BLOCKED, vendor)


@pytest.mark.parametrize("name", ["ordinary_contact_recaptcha", "ordinary_cloudflare_site"])
def test_ordinary_pages_with_a_widget_or_a_vendor_script_are_ok(name: str) -> None:
    assert Classifier().response(200, HTML, page(name)).label is Label.OK


TABLE = [
    # status, headers, body, label, reason
    (200, HTML, b"<html><title>Books</title></html>", Label.OK, "ok"),
    (301, [("Location", "/x")], b"", Label.OK, "ok"),
    (404, HTML, page("cloudflare_js"), Label.TARGET_ERROR, "status_404"),  # never a block
    (410, HTML, b"gone", Label.TARGET_ERROR, "status_410"),
    (400, HTML, b"bad", Label.TARGET_ERROR, "status_400"),
    (500, HTML, b"oops", Label.TARGET_ERROR, "status_500"),
    (503, HTML, b"down for maintenance", Label.TARGET_ERROR, "status_503"),
    (401, HTML, b"log in", Label.BLOCKED, "status_401"),
    (403, HTML, b"forbidden", Label.BLOCKED, "status_403"),
    (403, [("Content-Type", "application/json")], b'{"captcha-delivery.com":1}', Label.BLOCKED, "status_403"),
    (200, [*HTML, ("cf-mitigated", "challenge")], b"", Label.BLOCKED, "cloudflare"),
    (429, HTML, b"slow down", Label.RATE_LIMITED, "status_429"),
]


@pytest.mark.parametrize(("status", "headers", "body", "label", "reason"), TABLE)
def test_status_and_header_rules(
    status: int, headers: list[tuple[str, str]], body: bytes, label: Label, reason: str
) -> None:
    verdict = Classifier().response(status, headers, body)
    assert (verdict.label, verdict.reason) == (label, reason)


def test_rate_limits_carry_the_asked_rest() -> None:
    c = Classifier()
    assert c.response(429, [("Retry-After", "7")], b"").retry_after == 7.0
    assert c.response(429, [], b"").retry_after is None
    rested = c.response(503, [("Retry-After", "30")], b"busy")
    assert (rested.label, rested.retry_after) == (Label.RATE_LIMITED, 30.0)


def test_a_big_page_or_a_non_html_body_is_never_read() -> None:
    big = page("cloudflare_js") + b" " * CHALLENGE_MAX_BYTES
    assert Classifier().response(200, HTML, big).label is Label.OK
    image = [("Content-Type", "image/png")]
    assert Classifier().response(200, image, page("datadome")).label is Label.OK
    # No Content-Type at all: looked at, as browsers sniff it.
    assert Classifier().response(200, [], page("datadome")).label is Label.BLOCKED


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw deflate, as some servers send
        ("br", brotli.compress),
    ],
)
def test_compressed_challenges_are_recognised(coding: str, encode: object) -> None:
    body = encode(page("perimeterx"))  # type: ignore[operator]
    headers = [*HTML, ("Content-Encoding", coding)]
    assert Classifier().response(200, headers, body, coding) == Classification(Label.BLOCKED, "perimeterx")


def test_a_bomb_is_inflated_no_further_than_the_prefix() -> None:
    bomb = gzip.compress(b"<html>" + b" " * 50_000_000 + b"captcha-delivery.com")
    assert len(bomb) < CHALLENGE_MAX_BYTES
    assert Classifier().response(200, HTML, bomb, "gzip").label is Label.OK


def test_a_corrupt_body_is_no_challenge() -> None:
    assert Classifier().response(200, HTML, b"not gzip at all", "gzip").label is Label.OK


def test_a_proxys_own_errors_are_told_from_the_sites() -> None:
    c = Classifier()
    own = [("Proxy-Status", "corp-proxy; error=proxy_internal_error")]
    assert c.response(502, own, b"", via_proxy=True) == Classification(Label.PROXY_ERROR, "proxy_502")
    assert c.response(407, [], b"", via_proxy=True) == Classification(Label.PROXY_ERROR, "proxy_407")
    squid = [("X-Squid-Error", "ERR_ACCESS_DENIED 0")]
    assert c.response(503, squid, b"", via_proxy=True).label is Label.PROXY_ERROR
    # The proxy reports that the site did not answer: the site's failure, not the proxy's.
    dest = [("Proxy-Status", "corp-proxy; error=connection_refused")]
    assert c.response(502, dest, b"", via_proxy=True).label is Label.NETWORK_ERROR
    # A 502 the proxy forwarded from the site: the site's.
    assert c.response(502, HTML, b"bad gateway", via_proxy=True).label is Label.TARGET_ERROR
    # Without a proxy, the same headers are the site's business.
    assert c.response(502, own, b"", via_proxy=False).label is Label.TARGET_ERROR


def test_errors_without_an_answer() -> None:
    c = Classifier()
    assert c.error(ConnectError("refused", "http://x/")) == Classification(Label.NETWORK_ERROR, "connect")
    assert c.error(FetchTimeout("slow", "http://x/")).label is Label.NETWORK_ERROR
    assert c.error(OSError("reset")) == Classification(Label.NETWORK_ERROR, "OSError")


def test_spider_rules_come_before_the_built_in_ones() -> None:
    rules = [
        Rule("ok", statuses=[403], pattern=rb"No such book", name="soft_404"),
        Rule("blocked", statuses=[200], selector="div#are-you-real", name="home_made_captcha"),
        Rule(Label.BLOCKED, pattern="Überprüfung", name="german_check"),
        Rule("rate_limited", check=lambda a: a.headers.get("x-quota-left") == "0", name="quota"),
    ]
    c = Classifier(rules)
    assert c.response(403, HTML, b"<p>No such book</p>") == Classification(Label.OK, "soft_404")
    assert c.response(403, HTML, b"<p>Go away</p>") == Classification(Label.BLOCKED, "status_403")
    caught = c.response(200, HTML, b'<div id="are-you-real">?</div>')
    assert caught == Classification(Label.BLOCKED, "home_made_captcha")
    assert c.response(200, HTML, "<p>Überprüfung …</p>".encode()).reason == "german_check"
    assert c.response(200, [("X-Quota-Left", "0")], b"").label is Label.RATE_LIMITED
    assert c.response(200, HTML, b"<p>fine</p>").label is Label.OK


def test_a_rule_sees_the_attempt() -> None:
    seen: list[Attempt] = []
    rule = Rule("ok", check=lambda a: seen.append(a) is None)
    Classifier([rule]).response(200, [("X-A", "1")], b"body", url="http://x/", via_proxy=False)
    assert (seen[0].status, seen[0].headers, seen[0].prefix, seen[0].url) == (
        200,
        {"x-a": "1"},
        b"body",
        "http://x/",
    )


GZIPPED_CHALLENGE = gzip.compress(page("cloudflare_js"))
DIRECT_200_CASES = [
    # headers, body, Content-Encoding
    ([], b"<p>hi</p>", ""),
    (HTML, b"<p>hi</p>", ""),
    (HTML, b"", ""),
    (HTML, b"x" * (CHALLENGE_MAX_BYTES + 1), ""),
    (HTML, GZIPPED_CHALLENGE, "gzip"),
    (HTML, GZIPPED_CHALLENGE, "zstd"),  # a coding the prefix is not read in: the full rules look
    (HTML, page("cloudflare_js"), "identity"),
    ([("content-type", "application/json")], b"{}", ""),
    ([("CONTENT-TYPE", "image/png")], b"\x89PNG", ""),
    ([("Content-Type", "text/html"), ("content-type", "image/png")], b"<p>", ""),  # the last wins
    ([("Content-Type", "image/png"), ("content-type", "text/html")], page("datadome"), ""),
    ([*HTML, ("CF-Mitigated", "challenge")], b"<p>hi</p>", ""),
    ([*HTML, ("cf-mitigated", "other")], b"<p>hi</p>", ""),
    ([*HTML, ("X-Content-Type-Options", "nosniff"), ("Content-Length", "9")], b"<p>hi</p>", ""),
]


@pytest.mark.parametrize(("headers", "body", "coding"), DIRECT_200_CASES)
def test_a_direct_200_gets_the_label_of_the_full_rules(
    headers: list[tuple[str, str]], body: bytes, coding: str
) -> None:
    # The common answer is labelled from two headers; every rule still says what it said.
    lowered = {k.lower(): v for k, v in headers}
    full = Classifier().attempt(Attempt(200, lowered, body, coding), leave_challenge=True)
    assert Classifier().response(200, headers, body, coding, leave_challenge=True) == full
    assert Classifier().response(200, dict(headers), body, coding, leave_challenge=True) == full
    assert Classifier().response(200, tuple(headers), body, coding, leave_challenge=True) == full
    assert Classifier().response(200, iter(headers), body, coding, leave_challenge=True) == full


def test_a_direct_200_with_a_challenge_header_or_in_another_coding_is_still_blocked() -> None:
    headers = [*HTML, ("CF-Mitigated", "Challenge")]
    verdict = Classifier().response(200, headers, b"<p>hi</p>", leave_challenge=True)
    assert verdict == Classification(Label.BLOCKED, "cloudflare")
    plain = page("cloudflare_js")
    assert Classifier().response(200, HTML, plain, "identity", leave_challenge=True).challenge_unchecked
    verdict = Classifier().response(200, HTML, GZIPPED_CHALLENGE, "zstd", leave_challenge=True)
    assert verdict == Classification(Label.OK, "ok")  # not read here, nor inflated by a worker
