"""Downloader middlewares: user code around each fetch attempt, in the main process.

A middleware is any object with some of ``process_request(request)``,
``process_response(request, response)`` and ``process_exception(request, exception)``, each
sync or async. ``process_request`` runs in the order of the ``middlewares`` setting, before the
politeness gate; ``process_response`` and ``process_exception`` run in the reverse order, as in
Scrapy. What a method returns:

* ``None``: go on (the next middleware, then the fetch; the response or error as it is).
* a ``Request``: the attempt ends here and that request is scheduled instead, through the
  frontier (deduplicated like any link: set ``dont_filter=True`` on a request of the same URL).
* a ``Response`` (from ``process_request`` or ``process_exception``): it stands for the fetch,
  which does not happen; every ``process_response`` then sees it. From ``process_response``:
  it replaces the response for the middlewares after it and the callback.

A middleware that raises ``IgnoreRequest`` ends the request unfetched (counted as filtered,
``ignored``); any other exception fails the request with ``middleware_error``, not retried.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from ..errors import IgnoreRequest, MiddlewareError
from ..guards import redact_text, running
from ..http import Request, Response, decode_body

if TYPE_CHECKING:
    from ._client import Fetched

__all__ = ["MiddlewareChain", "middleware_failed"]

log = logging.getLogger("crawlkit.middlewares")

# What a middleware method may return, once awaited.
Answer = Request | Response | None


class MiddlewareChain:
    """The configured middlewares' methods, in the order each kind runs."""

    def __init__(self, middlewares: list[Any], max_response_size: int = 0) -> None:
        self.middlewares = middlewares
        self._max_size = max_response_size or (1 << 62)
        self._requests = [m.process_request for m in middlewares if _has(m, "process_request")]
        reverse = middlewares[::-1]
        self._responses = [m.process_response for m in reverse if _has(m, "process_response")]
        self._exceptions = [m.process_exception for m in reverse if _has(m, "process_exception")]

    def __bool__(self) -> bool:
        return bool(self.middlewares)

    async def process_request(self, request: Request) -> Answer:
        for method in self._requests:
            answer = await _call(method, request)
            if answer is not None:
                return answer
        return None

    async def process_exception(self, request: Request, error: BaseException) -> Answer:
        for method in self._exceptions:
            answer = await _call(method, request, error)
            if answer is not None:
                return answer
        return None

    async def process_response(self, request: Request, fetched: Fetched) -> Fetched | Request:
        """The response after every ``process_response``, or the request one returned."""
        if not self._responses:
            return fetched
        seen = response = self.as_response(request, fetched)
        for method in self._responses:
            answer = await _call(method, request, response)
            if isinstance(answer, Request):
                return answer
            if answer is not None:
                response = answer
        # Unchanged, the response goes on as it came (its body still encoded, for the parser).
        return fetched if response is seen else self.as_fetched(response, fetched)

    def as_response(self, request: Request, fetched: Fetched) -> Response:
        """The ``Response`` a middleware sees: the body decoded here, in the main process (a
        cost only crawls with a ``process_response`` pay)."""
        try:
            body = decode_body(fetched.body, fetched.content_encoding, self._max_size)
        except Exception:  # the parser worker reports an undecodable body; middlewares see it raw
            body = fetched.body
        return Response(fetched.url, fetched.status, fetched.headers, body, request)

    @staticmethod
    def as_fetched(response: Response, like: Fetched | None = None) -> Fetched:
        from ._client import Fetched

        return Fetched(
            url=response.url,
            status=response.status,
            headers=list(response.headers.items()),
            body=response.body,
            content_encoding="",  # decoded already
            latency=like.latency if like is not None else 0.0,
            hold=like.hold if like is not None else None,
        )


async def _call(method: Any, request: Request, *args: Any) -> Answer:
    """One middleware method's answer; ``MiddlewareError`` if it raised (``IgnoreRequest`` passes)."""
    try:
        with running(f"middleware {_name(method)}"):  # the watchdog names a middleware that blocks
            answer = method(request, *args)
        if inspect.isawaitable(answer):
            answer = await answer
    except IgnoreRequest:
        raise
    except Exception as exc:
        raise middleware_failed(request, _name(method), exc) from exc
    if answer is None or isinstance(answer, Request | Response):
        return answer
    wrong = TypeError(f"it returned {type(answer).__name__}, not None, a Request or a Response")
    raise middleware_failed(request, _name(method), wrong)


def _has(middleware: Any, name: str) -> bool:
    return callable(getattr(middleware, name, None))


def _name(method: Any) -> str:
    owner = getattr(method, "__self__", None)
    cls = type(owner).__name__ if owner is not None else ""
    return f"{cls}.{getattr(method, '__name__', '?')}" if cls else str(getattr(method, "__name__", method))


def middleware_failed(request: Request, method: str, exc: BaseException) -> MiddlewareError:
    """The error a request fails with when a middleware raised; logged here, with its traceback."""
    text = redact_text(f"middleware {method} raised {type(exc).__name__}: {exc}")
    log.error("%s: %s", request.url, text, exc_info=exc)
    return MiddlewareError(text, request.url)
