"""Redaction of credentials in text, log records and tracebacks."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from crawlkit.guards._redact import RedactingFilter, excepthook, redact_text, redact_url


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
