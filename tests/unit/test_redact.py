"""Redaction of credentials in text, log records and tracebacks."""

from __future__ import annotations

import io
import logging
import sys
import time

import pytest

from crawlkit.guards._redact import (
    LOG_LIMIT,
    RedactingFilter,
    clip,
    excepthook,
    is_secret_header,
    redact_headers,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET http://user:s3cret@example.com/a?b=1", "GET http://***@example.com/a?b=1"),
        ("https://ghp_token@github.com/x.git", "https://***@github.com/x.git"),
        ("proxy http://pu:pp@proxy.local:3128 refused", "proxy http://***@proxy.local:3128 refused"),
        ("socks5://u:p@127.0.0.1:1080", "socks5://***@127.0.0.1:1080"),
        ("URL('http://a:b@h/')", "URL('http://***@h/')"),
        ("Authorization: Bearer abc.def\nAccept: */*", "Authorization: ***\nAccept: */*"),
        ("Proxy-Authorization: Basic dXNlcjpwYXNz", "Proxy-Authorization: ***"),
        ("cookie: a=1; b=2", "cookie: ***"),
        (
            "{'Authorization': 'Bearer T', 'Cookie': 'sid=C', 'Accept': 'x'}",
            "{'Authorization': '***', 'Cookie': '***', 'Accept': 'x'}",
        ),
        ('{"authorization":"Basic Zm9v"}', '{"authorization":"***"}'),
        ("[('Set-Cookie', 'sid=C; Path=/'), ('Server', 'x')]", "[('Set-Cookie', '***'), ('Server', 'x')]"),
        # A password may hold an "@": the user-info runs to the last one of the authority.
        ("GET https://user:p@ss@w0rd@example.com/x", "GET https://***@example.com/x"),
        ("{'url': 'http://u:a@b@h/'}", "{'url': 'http://***@h/'}"),
        # The whole value, commas and quotes included.
        (
            'Authorization: Digest username="u", realm="r", response="SECRET"\nAccept: x',
            "Authorization: ***\nAccept: x",
        ),
        (
            "{'Authorization': 'Digest username=\"u\", response=\"SECRET\"', 'A': 'b'}",
            "{'Authorization': '***', 'A': 'b'}",
        ),
        ("{'Cookie': 'a=\\'SECRET', 'A': 'b'}", "{'Cookie': '***', 'A': 'b'}"),
        ("{'Cookie': 'unclosed SECRET", "{'Cookie': '***'"),
        # Token headers, listed and by their name.
        ("X-Auth-Token: SECRET", "X-Auth-Token: ***"),
        ("{'X-API-Key': 'SECRET'}", "{'X-API-Key': '***'}"),
        ("x-session-id: SECRET", "x-session-id: ***"),
        ("X-Client-Secret = SECRET", "X-Client-Secret = ***"),
        ("Private-Token: SECRET", "Private-Token: ***"),
    ],
)
def test_credentials_are_masked(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://example.com/a@b/c",  # an @ in the path is not user-info
        "mailto:someone@example.com",
        "write to me@example.com",
        "plain text without secrets",
        "http://example.com/?q=author",
        "X-Request-Id: 1234",
        "max cookies: 50 per host",
    ],
)
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redact_url() -> None:
    assert redact_url("http://u:p@h:8080/x") == "http://***@h:8080/x"


def test_the_filter_redacts_message_arguments_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("crawlkit.tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("failed http://u:TOPSECRET@h/x")
        except ValueError:
            logger.exception("fetching %s with %r", "http://u:TOPSECRET@h/x", {"Cookie": "s=TOPSECRET"})
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "TOPSECRET" not in text
    assert "fetching http://***@h/x with {'Cookie': '***'}" in text
    assert "ValueError: failed http://***@h/x" in text and "Traceback" in text


def test_the_excepthook_prints_a_redacted_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise RuntimeError("boom at http://u:TOPSECRET@h/")
    except RuntimeError:
        excepthook(*sys.exc_info())  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert "TOPSECRET" not in err and "RuntimeError: boom at http://***@h/" in err


def test_a_header_named_by_the_setting_is_redacted() -> None:
    assert redact_text("X-Unit-Tenant: SECRET") == "X-Unit-Tenant: SECRET"
    assert not is_secret_header("X-Unit-Tenant")
    redact_headers(["X-Unit-Tenant"])
    assert redact_text("x-unit-tenant: SECRET\nA: b") == "x-unit-tenant: ***\nA: b"
    assert is_secret_header("X-Unit-Tenant") and is_secret_header("Set-Cookie")
    assert is_secret_header("X-Shop-Api-Key") and not is_secret_header("Content-Type")


# Text a page controls (a Location header, an exception's message) shaped so that a pattern
# that backtracks takes quadratic time: the old user-info pattern took 1 s for 16 KB of the first
# and about 16 s for 64 KB; each of these 256 KB texts now takes milliseconds.
@pytest.mark.parametrize(
    "text",
    [
        "a." * 128 * 1024 + "@",
        "x://" * 64 * 1024 + "@",
        "http://" + "a@" * 128 * 1024,
        "cookie:'a," * 26 * 1024,
        "'authorization'" * 16 * 1024,
        "x-" * 128 * 1024 + "token",
        "x-a" + "-token" * 40 * 1024,
        "a=" * 128 * 1024,
    ],
)
def test_redaction_takes_linear_time(text: str) -> None:
    started = time.perf_counter()
    redact_text(text)
    assert time.perf_counter() - started < 1.0


def test_clip_keeps_the_start_and_the_end_and_cuts_no_secret_in_half() -> None:
    assert clip("short", 100) == "short"
    text = "start http://user:" + "p" * 5000 + "@h/ middle\nAuthorization: Bearer " + "S" * 5000 + "\nend"
    clipped = redact_text(text, 1000)
    assert len(clipped) < 1100
    assert clipped.startswith("start ") and clipped.endswith("\nend")
    assert "pp" not in clipped and "SS" not in clipped and "characters cut" in clipped


def test_the_filter_cuts_a_long_message() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("crawlkit.tests.redact.long")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("item %s", "word " * LOG_LIMIT)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.startswith("item word word") and "characters cut" in text
    assert LOG_LIMIT // 3 < len(text) < LOG_LIMIT + 100
