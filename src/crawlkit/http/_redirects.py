"""One redirect hop, as browsers take it: the next method, body, headers and URL.

301 and 302 turn a POST into a GET (what every browser does, whatever RFC 9110 allows), 303
turns anything but HEAD into a GET, 307 and 308 keep the method and the body. A hop to another
origin drops the credentials the request carried itself (``Authorization``, ``Cookie``,
``Proxy-Authorization`` and whatever else the caller's ``is_credential`` names); the URL's
user-info stays behind too, as joining an absolute ``Location`` drops it. The cookie jar
decides on its own which of its cookies the new host gets.

The ``Location`` header is read as browsers read it: UTF-8, and a byte that is not UTF-8 is
percent-encoded as that byte (``/caf\xe9`` leads to ``/caf%E9``), not dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from yarl import URL

from ._urls import C0_AND_SPACE, resolve

__all__ = ["REDIRECT_STATUSES", "Hop", "SchemeRedirect", "next_hop"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})
_CREDENTIALS = frozenset({"authorization", "cookie", "proxy-authorization"})

# aiohttp decodes header bytes as UTF-8 with surrogateescape: a byte that is not UTF-8 comes as
# the lone surrogate U+DC80..U+DCFF, which the URL parser would drop, making another URL.
_RAW_BYTE = re.compile("[\udc80-\udcff]")


class SchemeRedirect(ValueError):
    """A redirect to a scheme the crawl does not fetch (``file:``, ``data:``, ``ftp:``)."""

    def __init__(self, target: str) -> None:
        super().__init__(f"redirect to {target!r}, which is not http(s)")
        self.target = target


def _percent_encode_raw_bytes(location: str) -> str:
    return _RAW_BYTE.sub(lambda m: f"%{ord(m.group()) - 0xDC00:02X}", location)


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
    is_credential: Callable[[str], bool] | None = None,
) -> Hop:
    """The request that follows a ``status`` redirect to ``location``; ``ValueError`` if it is unusable.

    ``SchemeRedirect`` (a ``ValueError``) if it leads to a scheme other than http(s).
    """
    # Resolved as a browser resolves a Location header: by the WHATWG URL Standard, with a raw
    # byte that is not UTF-8 percent-encoded as that byte.
    try:
        joined = resolve(str(current), _percent_encode_raw_bytes(location.strip(C0_AND_SPACE)))
    except ValueError:
        raise ValueError(f"redirect to {location!r}, which is no URL") from None
    target = URL(joined.partition("#")[0], encoded=True)
    if target.scheme not in ("http", "https"):
        raise SchemeRedirect(joined[:200])  # a data: URL may be long: it is only named
    if not target.host:
        raise ValueError(f"redirect to {location!r}, which has no host")
    kept = dict(headers) if headers else None
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        if kept:
            kept = {k: v for k, v in kept.items() if k.lower() not in _BODY_HEADERS}
    if kept and target.origin() != current.origin():
        kept = {
            k: v
            for k, v in kept.items()
            if k.lower() not in _CREDENTIALS and not (is_credential and is_credential(k))
        }
    return Hop(method, str(target), body, kept or None)
