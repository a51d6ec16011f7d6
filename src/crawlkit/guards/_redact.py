"""Keeping secrets out of what a crawl shows: logs, the summary, stats and error messages.

Credentials reach a crawl in URLs (``https://user:pass@host/``, proxy URLs) and in request
headers (``Authorization``, ``Proxy-Authorization``, ``Cookie``). They must stay in the requests,
which need them, and never reach text that a person or a log collector reads. Three layers:

* :func:`redact_text` rewrites any text: the user-info part of every URL becomes ``***``, and the
  value of a credential header, in ``Name: value`` or ``'Name': 'value'`` form, becomes ``***``.
* :class:`RedactingFilter` applies it to every log record that passes (message, arguments, the
  traceback), so it works with any handler and any formatter. The command line and the parser
  workers install it on their handlers; :func:`protect_loggers` puts it on crawlkit's own loggers
  for programs that call :func:`crawlkit.crawl` with logging of their own.
* The places that build error text from foreign text (aiohttp's exceptions, a callback's
  exception and traceback) redact it at the source, so the exception objects are clean too.

Query-string tokens (``?api_key=...``) are not recognised: they are part of what the URL names.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from types import TracebackType

__all__ = ["MASK", "RedactingFilter", "excepthook", "protect_loggers", "redact_text", "redact_url"]

MASK = "***"

# scheme://userinfo@ : the user-info ends at the first "@" before any "/", "?", "#" or space.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s'\"<>]+@")
# A credential header and its value, as a header line or in a dict's repr (quoted or not).
_HEADER = re.compile(
    r"(?i)((?:proxy-)?authorization|cookie|set-cookie|x-api-key)(['\"]\s*,\s*|['\"]?\s*[:=]\s*)"
    r"(?:'[^'\n]*'|\"[^\"\n]*\"|[^\n,}]*)"
)


def _header_sub(match: re.Match[str]) -> str:
    value = match.group(0)[match.end(2) - match.start(0) :]
    quote = value[:1] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{match.group(2)}{quote}{MASK}{quote}"


def redact_text(text: str) -> str:
    """``text`` with URL credentials and credential header values replaced by ``***``."""
    if "@" in text:
        text = _URL_USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    lowered = text.lower()
    if "auth" in lowered or "cookie" in lowered or "api-key" in lowered:
        text = _HEADER.sub(_header_sub, text)
    return text


def redact_url(url: str) -> str:
    """A URL without its user name and password (``https://***@host/path``)."""
    return redact_text(url)


class RedactingFilter(logging.Filter):
    """Redacts each record in place: the formatted message and the traceback text.

    The record's arguments are folded into its message, so that no formatter downstream can put
    a secret back; the traceback is formatted here and stored as ``exc_text``, which every
    ``logging.Formatter`` uses instead of formatting the traceback again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_crawlkit_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the formatter to report
            return True
        record.msg = redact_text(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
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
