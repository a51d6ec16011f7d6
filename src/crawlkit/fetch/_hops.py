"""One redirect hop as both clients take it: the next request, or why there is none.

crawlkit follows redirects itself, hop by hop, with aiohttp (``_client.py``) and with curl_cffi
(``_impersonate.py``) alike: what a hop may be, when it is a loop and what the caller's check says
are the same rules whichever client sent the request, so they are written once, here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from yarl import URL

from ..errors import RedirectError, RedirectFiltered
from ..guards import is_secret_header
from ..http import Hop, SchemeRedirect, next_hop
from ._sentheaders import foreign_text

__all__ = ["HopCheck", "checked_hop", "redirect_hop"]

# Asked before each redirect hop is followed: None to follow it, else why not (a reason label).
HopCheck = Callable[[str], Awaitable[str | None]]


def redirect_hop(
    status: int,
    method: str,
    current: URL,
    location: str,
    body: bytes | None,
    headers: Mapping[str, str] | None,
    request_url: str,
) -> Hop:
    """The request a ``status`` redirect to ``location`` leads to, as crawlkit's errors say it.

    A redirect to another scheme is filtered like a link to it (``RedirectFiltered``), not a
    failure; a Location that makes no URL is a ``RedirectError``.
    """
    try:
        return next_hop(status, method, current, location, body, headers, is_secret_header)
    except SchemeRedirect as exc:
        raise RedirectFiltered(
            f"redirect to {exc.target} not followed (scheme_redirect)",
            request_url,
            "scheme_redirect",
            exc.target,
        ) from exc
    except ValueError as exc:
        raise RedirectError(foreign_text(f"unusable redirect: {exc}"), request_url) from exc


async def checked_hop(
    hop: Hop, visited: dict[str, int], cookies: int, hop_check: HopCheck | None, request_url: str
) -> None:
    """Raise if ``hop`` must not be followed: a loop, or the caller's check says no.

    ``visited`` maps each URL of the chain to the cookies the jar held when it was asked: coming
    back to a URL with the same cookies is a loop, with new ones it is a login's round trip.
    """
    if visited.get(hop.url) == cookies:
        raise RedirectError(foreign_text(f"redirect loop: {hop.url} again"), request_url)
    if hop_check is not None:
        reason = await hop_check(hop.url)
        if reason is not None:
            message = foreign_text(f"redirect to {hop.url} not followed ({reason})")
            raise RedirectFiltered(message, request_url, reason, hop.url)
