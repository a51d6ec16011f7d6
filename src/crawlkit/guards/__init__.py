"""What keeps a crawl process healthy: the memory ceiling, the loop watchdog, redaction, tuning.

``crawl_guards`` runs the memory ceiling (``max_memory_mb``) and the event-loop watchdog
(``loop_stall_warning``) around a crawl, and ``PAUSES`` tells when the process was stopped; the
redactor keeps credentials out of logs and error text; the gc and malloc tuning are applied in
every crawl process, main and workers.
"""

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from ._crawl import crawl_guards
    from ._memory import rss_bytes
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


def __getattr__(name: str) -> Any:
    # These belong to the main process's event loop and need asyncio; parser workers import
    # this package for redaction and tuning, and start faster without it.
    if name == "rss_bytes":
        from ._memory import rss_bytes

        return rss_bytes
    if name == "crawl_guards":
        from ._crawl import crawl_guards

        return crawl_guards
    if name == "running":
        from ._watchdog import running

        return running
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
