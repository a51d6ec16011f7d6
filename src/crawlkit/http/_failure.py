"""``Failure``: what a request's errback is called with when the request fails for good."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._message import Request, Response

__all__ = ["Failure"]


class Failure:
    """Why a request failed, for its errback (called in a parser worker, as callbacks are).

    ``request`` is the request that failed; ``value`` the exception it failed with (a
    ``FetchError``: ``HTTPStatusError``, ``ConnectError``, ``RetriesExhausted``,
    ``MiddlewareError``...); ``exception`` its class name and ``message`` its text; ``reason``
    the key the crawl's summary counts it under (``http_404``, ``connect``, ``middleware_error``);
    ``response`` the response when there was one (an HTTP error status), else ``None``.
    ``check(*types)`` answers as Scrapy's does: the first of ``types`` (classes, or class names)
    that ``value`` is an instance of, else ``None``.
    """

    __slots__ = ("request", "response", "value")

    def __init__(self, request: Request, value: BaseException, response: Response | None = None) -> None:
        self.request = request
        self.value = value
        self.response = response

    @property
    def exception(self) -> str:
        return type(self.value).__name__

    @property
    def message(self) -> str:
        return str(self.value)

    @property
    def reason(self) -> str:
        return str(getattr(self.value, "reason", type(self.value).__name__))

    def check(self, *types: type[BaseException] | str) -> type[BaseException] | str | None:
        names = {cls.__name__ for cls in type(self.value).__mro__}
        for kind in types:
            if isinstance(kind, str) and kind in names:
                return kind
            if isinstance(kind, type) and isinstance(self.value, kind):
                return kind
        return None

    def __repr__(self) -> str:
        return f"<Failure {self.exception} ({self.reason}) for {self.request.url}>"
