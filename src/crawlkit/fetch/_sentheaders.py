"""What a request sends, whichever client sends it (aiohttp's or the impersonating one): the
crawl's default headers merged under the request's own, a session's profile first, the URL's
credentials over an ``Authorization`` header, and error text from a server made safe to show."""

from __future__ import annotations

from yarl import URL

from ..guards import redact_text
from ._sessions import Session

__all__ = ["foreign_text", "profile_first", "userinfo_wins", "with_defaults"]

_ERROR_TEXT = 2000  # characters of foreign text (a Location, a client's message) in an error


def foreign_text(text: str) -> str:
    """Error text built from what a server sent: redacted, and bounded (a Location can be huge)."""
    return redact_text(text, _ERROR_TEXT)


def with_defaults(headers: dict[str, str] | None, defaults: dict[str, str]) -> dict[str, str] | None:
    """The request's headers, with the default credentials it does not set itself."""
    if not defaults:
        return headers
    own = {k.lower() for k in headers or ()}
    merged = {k: v for k, v in defaults.items() if k.lower() not in own}
    return {**merged, **headers} if headers else merged


def profile_first(identity: Session, defaults: dict[str, str], own: dict[str, str] | None) -> dict[str, str]:
    """The session's profile in its order (the request's own headers win by name), then the
    crawl's defaults the profile does not set (Accept, Accept-Encoding, credentials)."""
    merged = identity.headers(own)
    named = {k.lower() for k in merged}
    for name, value in defaults.items():
        if name.lower() not in named:
            merged[name] = value
    return merged


def userinfo_wins(url: str, headers: dict[str, str] | None) -> dict[str, str] | None:
    """Without ``Authorization`` when the URL holds a user name: its, more specific, is sent.

    (aiohttp refuses a request that has both.)
    """
    if not headers or "@" not in url:
        return headers
    parsed = URL(url)
    if parsed.user is None and parsed.password is None:
        return headers
    return {k: v for k, v in headers.items() if k.lower() != "authorization"} or None
