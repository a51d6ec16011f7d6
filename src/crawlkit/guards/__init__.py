"""What keeps a crawl process healthy: the memory ceiling, the loop watchdog, redaction, tuning.

``crawl_guards`` runs the memory ceiling (``max_memory_mb``) and the event-loop watchdog
(``loop_stall_warning``) around a crawl, and ``PAUSES`` tells when the process was stopped; the
redactor keeps credentials out of logs and error text; the gc and malloc tuning are applied in
every crawl process, main and workers.
"""

from ._crawl import crawl_guards
from ._memory import rss_bytes
from ._pauses import PAUSES, PauseClock
from ._redact import (
    LOG_LIMIT,
    MASK,
    REDACTED_HEADERS,
    RedactingFilter,
    clip,
    excepthook,
    is_secret_header,
    protect_handlers,
    protect_loggers,
    redact_headers,
    redact_text,
)
from ._tuning import tune_gc, tune_malloc
from ._watchdog import running

__all__ = [
    "LOG_LIMIT",
    "MASK",
    "PAUSES",
    "REDACTED_HEADERS",
    "PauseClock",
    "RedactingFilter",
    "clip",
    "crawl_guards",
    "excepthook",
    "is_secret_header",
    "protect_handlers",
    "protect_loggers",
    "redact_headers",
    "redact_text",
    "rss_bytes",
    "running",
    "tune_gc",
    "tune_malloc",
]
