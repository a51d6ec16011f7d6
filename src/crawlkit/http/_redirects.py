"""One redirect hop, as browsers take it: the next method, body, headers and URL.

301 and 302 turn a POST into a GET (what every browser does, whatever RFC 9110 allows), 303
turns anything but HEAD into a GET, 307 and 308 keep the method and the body. A hop to another
origin drops the credentials the request carried itself (``Authorization``, ``Cookie``); the
cookie jar decides on its own which of its cookies the new host gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

from ._urls import C0_AND_SPACE, resolve

__all__ = ["REDIRECT_STATUSES", "Hop", "next_hop"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass(frozen=True, slots=True)
class Hop:
    """The request to send next."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str] | None


def next_hop(
    status: int,
    method: str,
    current: URL,
    location: str,
    body: bytes | None,
    headers: Mapping[str, str] | None,
) -> Hop:
    """The request that follows a ``status`` redirect to ``location``; ``ValueError`` if it is unusable."""
    # Resolved as a browser resolves a Location header: by the WHATWG URL Standard.
    try:
        joined = resolve(str(current), location.strip(C0_AND_SPACE))
    except ValueError:
        raise ValueError(f"redirect to {location!r}, which is no URL") from None
    target = URL(joined.partition("#")[0], encoded=True)
    if not target.host:
        raise ValueError(f"redirect to {location!r}, which has no host")
    kept = dict(headers) if headers else None
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        if kept:
            kept = {k: v for k, v in kept.items() if k.lower() not in _BODY_HEADERS}
    if kept and target.origin() != current.origin():
        kept = {k: v for k, v in kept.items() if k.lower() not in _CREDENTIALS}
    return Hop(method, str(target), body, kept or None)
