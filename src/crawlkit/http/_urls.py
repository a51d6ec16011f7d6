"""URL canonicalisation, request fingerprints and offsite checks.

Fingerprints are computed where requests are created (usually a parser worker process), so the
event loop only does set look-ups. They are 16-byte BLAKE2b digests: collisions are negligible at
any crawl size and the seen set stays small.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from yarl import URL

__all__ = [
    "MAX_URL_LENGTH",
    "OffsiteFilter",
    "canonicalize_url",
    "fingerprint",
    "is_http_url",
    "join_plain",
    "origin_of",
    "plain_base",
]

MAX_URL_LENGTH = 2083
_HTTP_SCHEMES = frozenset({"http", "https"})


# Characters a path keeps as they are, whoever parses it: unreserved and sub-delims, ':' and '@'.
_PATH_CHARS = r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]"

# A URL that is already canonical, or only lacks a default port's removal: a lowercase http(s)
# scheme, a lowercase ASCII host, a path of characters that need no escaping, no query, no
# fragment. Most links on most sites look like this; for them the full parse (the larger part of
# what a link costs in a parser worker) is skipped. Dot segments are ruled out below.
_PLAIN_URL = re.compile(
    rf"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9][0-9]{{0,4}}))?((?:/{_PATH_CHARS}*)?)"
)
# A relative reference of the same kind: no scheme (so no ':'), no query or fragment.
_PLAIN_REF = re.compile(_PATH_CHARS.replace(":", "") + "+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_AUTHORITY_END = re.compile(r"[/?#]")


def _has_dot_segment(path: str) -> bool:
    # Conservative: also true for a segment that merely starts with a dot ("/.well-known").
    return "/." in path or path.startswith(".")


def _plain_parts(url: str) -> tuple[str, str] | None:
    """``(origin, path)`` of a URL that is its own canonical form, except maybe an empty path."""
    m = _PLAIN_URL.fullmatch(url)
    if m is None:
        return None
    scheme, host, port, path = m.groups()
    if port is not None and (port == _DEFAULT_PORTS[scheme] or int(port) > 65535):
        return None
    if _has_dot_segment(path) or ".." in host:
        return None
    return url[: len(url) - len(path)], path


def plain_base(url: str) -> tuple[str, str] | None:
    """What ``join_plain`` needs of a base URL: its origin and its directory, if it is plain."""
    parts = _plain_parts(url)
    if parts is None:
        return None
    origin, path = parts
    return origin, origin + path[: path.rfind("/") + 1] if path else origin + "/"


def join_plain(base: tuple[str, str], ref: str) -> str | None:
    """``ref`` resolved against a ``plain_base()`` when ``ref`` is a plain path or URL, else ``None``.

    The result is what a full RFC 3986 resolution gives (the tests hold it to yarl's), and it is
    itself plain, so its canonical form is itself.
    """
    if ref.startswith(("http://", "https://")):
        parts = _plain_parts(ref)
        return ref if parts is not None and parts[1] else None  # absolute and plain: itself
    if _PLAIN_REF.fullmatch(ref) is None or ref.startswith("//") or _has_dot_segment(ref):
        return None
    return base[0] + ref if ref.startswith("/") else base[1] + ref


def canonicalize_url(url: str) -> str:
    """Return the form of ``url`` that equal pages share.

    Lowercases scheme and host (yarl does), drops the default port and the fragment, resolves
    dot segments, and sorts the query by key and value (blank values kept).
    """
    plain = _plain_parts(url)
    if plain is not None:
        return url if plain[1] else url + "/"
    return _canonicalize_parsed(url)


def _canonicalize_parsed(url: str) -> str:
    """``canonicalize_url`` by a full parse: any URL."""
    u = URL(url)
    if u.raw_fragment:
        u = u.with_fragment(None)
    query = u.raw_query_string
    if query:
        u = u.with_query(None)
    text = str(u)
    if u.raw_path == "/" and not text.endswith("/"):
        text += "/"  # yarl prints http://host for both http://host and http://host/: one page
    if query:
        return f"{text}?{urlencode(sorted(parse_qsl(query, keep_blank_values=True)))}"
    return text


def fingerprint(method: str, url: str, body: bytes = b"") -> bytes:
    """The dedup key of a request: method, canonical URL and a digest of the body."""
    h = hashlib.blake2b(digest_size=16)
    h.update(method.upper().encode())
    h.update(b" ")
    h.update(canonicalize_url(url).encode("utf-8", "surrogatepass"))
    if body:
        h.update(b" ")
        h.update(hashlib.blake2b(body, digest_size=16).digest())
    return h.digest()


def is_http_url(url: str) -> bool:
    """True for absolute http(s) URLs with a host; the only ones crawlkit fetches."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _HTTP_SCHEMES:
        return False
    authority = rest
    for stop in "/?#":
        authority = authority.partition(stop)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host.find("]") > 1
    return bool(host.partition(":")[0])


def origin_of(url: str) -> str:
    """``url`` up to the end of its authority (``http://host:port``), without parsing it.

    A cheap cache key for what depends on the host alone: the links of a page mostly share it.
    """
    start = url.find("://")
    if start < 0:
        return url
    match = _AUTHORITY_END.search(url, start + 3)
    return url if match is None else url[: match.start()]


def host_of(url: str) -> str:
    """The lowercased host of an absolute URL (empty if it has none)."""
    return URL(url).host or ""


def _allowed_entry(entry: str) -> tuple[str, int | None] | None:
    """An ``allowed_domains`` entry as (domain, port or None): "example.com", "127.0.0.1:8080",
    "[::1]:8080", or a URL, whose host (and port, if it names one) is taken."""
    text = entry.strip().lower()
    if "://" in text:
        text = text.partition("://")[2]
        text = _AUTHORITY_END.split(text, 1)[0].rpartition("@")[2]
    port: int | None = None
    if text.startswith("["):  # an IPv6 literal, maybe with a port
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"allowed_domains entry {entry!r}: {port_text!r} is not a port")
        port = int(port_text)
    else:
        host = text
    host = host.strip(".")
    return (host, port) if host else None


class OffsiteFilter:
    """Decides whether a URL lies within a spider's ``allowed_domains``.

    An empty ``allowed_domains`` allows every URL. A domain allows itself and its subdomains, on
    any port; an entry with a port ("127.0.0.1:8080") allows that port only. A string is read as
    one entry or a comma-separated list of them, so ``-a allowed_domains=a.test,b.test`` works.
    """

    __slots__ = ("_any_port", "_cache", "_ported")

    def __init__(self, allowed_domains: Iterable[str] | str) -> None:
        if isinstance(allowed_domains, str):
            allowed_domains = allowed_domains.split(",")
        entries = {e for e in map(_allowed_entry, allowed_domains) if e is not None}
        self._any_port = tuple(sorted(host for host, port in entries if port is None))
        self._ported = frozenset((host, port) for host, port in entries if port is not None)
        self._cache: dict[str, bool] = {}

    def allows(self, url: str) -> bool:
        if not self._any_port and not self._ported:
            return True
        # Cached by scheme and authority: links of a page mostly share them, and parsing is slow.
        authority = origin_of(url)
        verdict = self._cache.get(authority)
        if verdict is None:
            parsed = URL(url)
            host = parsed.host or ""
            verdict = _within(host, self._any_port) or any(
                port == parsed.port and _within(host, (domain,)) for domain, port in self._ported
            )
            if len(self._cache) < 100_000:  # bounded: a crawl may meet millions of hosts
                self._cache[authority] = verdict
        return verdict


def _within(host: str, domains: Iterable[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)
