"""Keeping secrets out of what a crawl shows: logs, the summary, stats and error messages.

Credentials reach a crawl in URLs (``https://user:pass@host/``, proxy URLs) and in request
headers (``Authorization``, ``Cookie``, ``X-API-Key``...). They must stay in the requests, which
need them, and never reach text that a person or a log collector reads. Three layers:

* :func:`redact_text` rewrites any text: the user-info part of every URL becomes ``***`` (up to
  the last ``@`` of the authority, as URL parsers read it, so a password may hold an ``@``), and
  the whole value of a credential header, in ``Name: value`` (to the end of the line) or
  ``'Name': 'value'`` form, becomes ``***``. The credential headers are :data:`REDACTED_HEADERS`,
  every ``X-`` header whose name says token, key, secret, auth, session, password or signature,
  and those the ``redact_headers`` setting adds (:func:`redact_headers`).
* :class:`RedactingFilter` applies it to every log record that passes (message, arguments, the
  traceback), so it works with any handler and any formatter, and cuts what is longer than
  :data:`LOG_LIMIT`. The command line and the parser workers install it on their handlers;
  :func:`protect_loggers` puts it on crawlkit's own loggers for programs that call
  :func:`crawlkit.crawl` with logging of their own.
* The places that build error text from foreign text (aiohttp's exceptions, a redirect's
  ``Location``, a callback's exception and traceback) redact it at the source, with a length
  limit, so the exception objects are clean and small too.

Every pattern here runs in linear time: a page controls much of the text that reaches them
(``Location`` headers, exception messages), and a pattern that backtracks would let it stall the
event loop for seconds. Quantifiers that could retry from many start positions are bounded or
possessive.

Query-string tokens (``?api_key=...``) are not recognised: they are part of what the URL names.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from types import TracebackType

__all__ = [
    "LOG_LIMIT",
    "MASK",
    "REDACTED_HEADERS",
    "RedactingFilter",
    "clip",
    "excepthook",
    "is_secret_header",
    "protect_loggers",
    "redact_headers",
    "redact_text",
    "redact_url",
]

MASK = "***"
# Characters of one log message, and of one traceback, that reach a handler. A page controls
# some of what is logged (a Location header, an exception's text); a 50 MB log line helps no one.
LOG_LIMIT = 16 * 1024
TRACEBACK_LIMIT = 64 * 1024

# The headers whose values are credentials (case-insensitive). Besides these: every "X-" header
# whose name holds one of _SECRET_WORDS, and the names the redact_headers setting adds.
REDACTED_HEADERS: tuple[str, ...] = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "set-cookie2",
    "api-key",
    "private-token",
    "x-api-key",
    "x-auth-token",
    "x-access-token",
    "x-csrf-token",
    "x-xsrf-token",
    "x-amz-security-token",
)
_SECRET_WORDS = ("token", "key", "secret", "auth", "session", "password", "passwd", "signature")

# scheme://userinfo@ : the user-info runs to the last "@" before any "/", "?", "#", space or
# quote (as URL parsers read it: a password may hold an "@"). The scheme is bounded, and the
# user-info is taken possessively, one "...@" run at a time, so nothing is scanned twice.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)(?:[^/?#@\s'\"<>]*+@)++")

_lock = threading.Lock()
_extra_headers: frozenset[str] = frozenset()


def _header_pattern(extra: Iterable[str]) -> re.Pattern[str]:
    names = sorted({*REDACTED_HEADERS, *extra}, key=len, reverse=True)
    generic = r"x-[a-z0-9-]{0,40}?(?:" + "|".join(_SECRET_WORDS) + r")[a-z0-9-]{0,40}"
    name = "|".join([*map(re.escape, names), generic])
    # A credential header and its whole value: as a header line (to the end of the line) or in
    # a dict's or a tuple's repr (the quoted string, escapes included; unclosed: to the line's end).
    return re.compile(
        rf"(?i)(?<![\w-])({name})"
        r"(['\"][ \t]{0,8},[ \t]{0,8}|['\"]?[ \t]{0,8}[:=][ \t]{0,8})"
        r"(?:'(?:[^'\\\n]|\\.)*+'?|\"(?:[^\"\\\n]|\\.)*+\"?|[^\n]*+)"
    )


# The names the redact_headers setting adds reach the child processes (the parser workers,
# started by the crawl that read the setting) in the environment, so that their logs hide them too.
_ENV = "CRAWLKIT_REDACT_HEADERS"


def redact_headers(names: Iterable[str]) -> None:
    """Treat these header names as credentials too, from now on, here and in child processes."""
    global _HEADER, _extra_headers
    with _lock:
        extra = _extra_headers | {n.strip().lower() for n in names if n.strip()}
        if extra != _extra_headers:
            _extra_headers = extra
            _HEADER = _header_pattern(extra)
            os.environ[_ENV] = ",".join(sorted(extra))


_HEADER = _header_pattern(())
redact_headers(os.environ.get(_ENV, "").split(","))


def is_secret_header(name: str) -> bool:
    """Whether a header of this name carries a credential, whose value must not be shown."""
    match = _HEADER.match(name.strip() + ":")
    return match is not None and match.end(1) == len(name.strip())


def _header_sub(match: re.Match[str]) -> str:
    value = match.group(0)[match.end(2) - match.start(0) :]
    quote = value[:1] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{match.group(2)}{quote}{MASK}{quote}"


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: its start and its end, with a note between.

    The cuts fall where no secret can straddle them, so that redacting the result hides as much
    as redacting the whole: the start ends at a space or a quote (a URL's user-info holds
    neither), the end starts at a line (a header's value does not go past one).
    """
    if len(text) <= limit:
        return text
    half = limit // 2
    head = text[:half]
    cut = max(head.rfind(c) for c in " \t\n'\"<>")
    head = head[: cut + 1]
    tail = text[len(text) - half :]
    newline = tail.find("\n")
    tail = tail[newline:] if newline >= 0 else ""
    return f"{head}[... {len(text) - len(head) - len(tail)} characters cut ...]{tail}"


def redact_text(text: str, limit: int | None = None) -> str:
    """``text`` with URL credentials and credential header values replaced by ``***``.

    ``limit``: cut the text to about that many characters first (see :func:`clip`).
    """
    if limit is not None:
        text = clip(text, limit)
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    if ":" in text or "=" in text:
        text = _HEADER.sub(_header_sub, text)
    return text


def redact_url(url: str) -> str:
    """A URL without its user name and password (``https://***@host/path``)."""
    return redact_text(url)


class RedactingFilter(logging.Filter):
    """Redacts each record in place: the formatted message and the traceback text.

    The record's arguments are folded into its message, so that no formatter downstream can put
    a secret back; the traceback is formatted here and stored as ``exc_text``, which every
    ``logging.Formatter`` uses instead of formatting the traceback again. Both are cut to a
    bounded length (:data:`LOG_LIMIT`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_crawlkit_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter to report
            return True
        record.msg = redact_text(message, LOG_LIMIT)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, TRACEBACK_LIMIT)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info, TRACEBACK_LIMIT)
        record._crawlkit_redacted = True
        return True


_FILTER = RedactingFilter()


def protect_loggers(prefix: str = "crawlkit") -> None:
    """Put the redacting filter on every logger named ``prefix`` or ``prefix.*`` created so far.

    A logger's filters apply only to records logged on that very logger, so each one needs it.
    """
    names = [name for name in logging.Logger.manager.loggerDict if name.startswith(prefix + ".")]
    for name in [prefix, *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def protect_handlers(logger: logging.Logger | None = None) -> None:
    """Put the redacting filter on every handler of ``logger`` (default: the root logger)."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """``sys.excepthook`` that prints an uncaught exception's traceback redacted."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact_text(text))
