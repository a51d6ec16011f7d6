"""The parser pool: the worker processes where spider callbacks run, never in the event loop.

``ParserPool`` keeps long-lived workers on pipes (batches, urgent single responses, crash
recovery, recycling, parse timeouts); ``InlineParser`` runs callbacks in the loop's thread for
debugging. In the worker, ``CallbackRunner`` turns one response into a ``ParseOutcome``: items
as JSON lines, new requests filtered and fingerprinted, links sent before dropped.
"""

from typing import TYPE_CHECKING, Any

from ._callbacks import (
    CallbackRunner,
    ParseOutcome,
    ParseTask,
    filter_reason,
    item_to_json,
    run_callback_as_worker,
)
from ._worker import WorkerConfig

if TYPE_CHECKING:
    from ._pool import InlineParser, Parser, ParserPool, make_parser

__all__ = [
    "CallbackRunner",
    "InlineParser",
    "ParseOutcome",
    "ParseTask",
    "Parser",
    "ParserPool",
    "WorkerConfig",
    "filter_reason",
    "item_to_json",
    "make_parser",
    "run_callback_as_worker",
]


def __getattr__(name: str) -> Any:
    # The pool is the main process's side and needs asyncio; a parser worker process imports
    # this package too (``python -m crawlkit.parsing``) and starts faster without it.
    if name in ("InlineParser", "Parser", "ParserPool", "make_parser"):
        from . import _pool

        return getattr(_pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
