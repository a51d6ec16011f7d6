"""An attempt through the downloader middlewares (steps 1 and 6 of ``Downloader.download``).

``process_request`` may answer first: a response (then no fetch), another request
(``Replaced``), or ``IgnoreRequest``. Otherwise the attempt goes the downloader's way (the
politeness gate, the cache, the identity step, the fetch), with a fetch error kept as a value
for ``process_exception``; ``process_response`` then sees the answer before a block is acted on
and the status classified. A crawl without middlewares never comes here: its way is the shorter
one in ``Downloader.download``, with nothing allocated for the chain.

These functions are the downloader's other path, made of its own steps.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from ..errors import FetchError, IgnoreRequest, MiddlewareError, RedirectFiltered
from ..http import Request, Response
from ._routing import route_or_verdict
from ._verdicts import Ended, Failed, Replaced, Verdict

if TYPE_CHECKING:
    from ._client import Fetched
    from ._downloader import Downloader
    from ._identity import Route

__all__ = ["download_through_middlewares"]

log = logging.getLogger("crawlkit.fetch")

_IGNORED = Ended("ignored")


async def download_through_middlewares(
    downloader: Downloader, request: Request, route: Route | None
) -> Fetched | Verdict:
    """``Downloader.download(request, route)`` when the crawl has middlewares."""
    chain = downloader.middlewares
    fetched: Fetched | None = None
    try:
        early = await chain.process_request(request)
        if isinstance(early, Request):
            return Replaced(early)
        if isinstance(early, Response):
            fetched = chain.as_fetched(early)
        else:
            got = await _fetch_once(downloader, request, route)
            if isinstance(got, Verdict):
                return got
            if isinstance(got, FetchError):
                answer = await chain.process_exception(request, got)
                if answer is None:
                    return downloader._failed(request, got, None)
                if isinstance(answer, Request):
                    return Replaced(answer)
                got = chain.as_fetched(answer)
            fetched = got
        result = await chain.process_response(request, fetched)
    except (IgnoreRequest, MiddlewareError) as exc:
        if fetched is not None and fetched.hold is not None:
            fetched.hold.release()
        if isinstance(exc, MiddlewareError):
            return Failed(exc, None)
        log.info("%s ignored by a middleware: %s", request.url, exc)
        return _IGNORED
    if isinstance(result, Request):
        if fetched.hold is not None:
            fetched.hold.release()
        return Replaced(result)
    # After the middlewares, which may have answered a block themselves; a response a
    # middleware made has no label, and only its status is checked.
    blocked = await downloader._on_blocked(request, result)
    if blocked is not None:
        return blocked
    if downloader.cache is not None:
        return downloader._classify_and_keep(request, result)
    return downloader._classify(request, result)


async def _fetch_once(
    downloader: Downloader, request: Request, route: Route | None
) -> Fetched | Verdict | FetchError:
    """The politeness gate and the fetch, with a fetch error as a value (for the middlewares)."""
    verdict = await downloader.politeness.gate(request)
    if verdict is not None:
        return downloader._gated(verdict)
    sent = request
    if downloader.cache is not None:
        cached = downloader._from_cache(request)
        if isinstance(cached, Failed):
            return cached.error
        if isinstance(cached, Verdict):
            return cached  # a page a re-crawl's rules skip
        if cached is None or isinstance(cached, Request):
            sent = cached or request
        else:
            return cached  # through the middlewares' process_response, as a fetched one
    if route is None:
        chosen = await route_or_verdict(downloader.identities, request)
        if isinstance(chosen, Verdict):
            return chosen
        route = chosen
    started = time.monotonic()
    try:
        fetched = await downloader._fetch(sent, route)
    except RedirectFiltered as exc:
        log.info("%s: %s", request.url, exc)
        return Ended(exc.reason)
    except FetchError as exc:
        early = downloader._fetch_error(request, exc, started)
        if early is not None:
            return early
        outcome = downloader._raised(request, exc, route)
        return exc if isinstance(outcome, Failed) else outcome
    answered = downloader._answer(request, fetched, route, started)
    return fetched if answered is None else answered
