"""URL resolution and canonicalisation, request fingerprints and offsite checks.

Links are resolved and canonicalised by the WHATWG URL Standard (through ada-url, the parser
behind Node.js), as browsers do: a crawler that reads an ``href`` otherwise fetches pages no user
can reach (backslashes, ``https:host``, tabs inside URLs, IDNA and IPv4 hosts, percent-escapes).

Fingerprints are computed where requests are created (usually a parser worker process), so the
event loop only does set look-ups. They are 16-byte BLAKE2b digests: collisions are negligible at
any crawl size and the seen set stays small.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from ada_url import join_url
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
    "resolve",
    "wire_url",
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
# The WHATWG host parser reads a host whose last label is a number ("1", "0x7f", "a.08") as an
# IPv4 address, rewritten or refused; only a dotted quad already in canonical form stays plain.
_BYTE = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_BYTE}(?:\.{_BYTE}){{3}}")
# What the URL Standard strips from both ends of a URL before parsing it: C0 controls and space
# (not the other whitespace str.strip() knows, such as U+00A0, which a browser percent-encodes).
C0_AND_SPACE = "".join(map(chr, range(0x21)))


def resolve(base: str, ref: str) -> str:
    """``ref`` resolved against the absolute URL ``base`` as browsers do (the WHATWG URL parser).

    The result is serialised by the Standard: percent-escapes kept as they were, what must be
    escaped escaped, hosts lowercased and IDNA-encoded. ``ValueError`` if there is no valid
    URL to be had (a browser's link would lead nowhere).
    """
    return join_url(base, ref)


def wire_url(url: str) -> URL | str:
    """``url`` as aiohttp is to send it: the WHATWG serialisation, handed to yarl as it is.

    yarl, given a plain string, re-encodes it by its own rules and decodes escapes that browsers
    keep (``?u=https%3A%2F%2Fb.test`` would go out as ``?u=https://b.test``). A URL the Standard
    refuses is returned as it is, for aiohttp to refuse with its own error.
    """
    if _is_serialised(url):
        return URL(url, encoded=True)  # its serialisation is itself: no parse needed
    try:
        return URL(join_url(url, ""), encoded=True)
    except ValueError:
        return url


def _is_serialised(url: str) -> bool:
    """Whether the WHATWG parser serialises ``url`` as ``url`` itself; False when unsure.

    A URL plain enough to be its own canonical form, path included (tests/unit/test_wire_url.py
    holds it to ada-url's serialisation): most links the parser workers resolve.
    """
    parts = _plain_parts(url)
    return parts is not None and bool(parts[1])


def _has_dot_segment(path: str) -> bool:
    # Conservative: also true for a segment that merely starts with a dot ("/.well-known").
    return "/." in path or path.startswith(".")


def _plain_parts(url: str) -> tuple[str, str] | None:
    """``(origin, path)`` of a URL that is its own canonical form, except maybe an empty path."""
    m = _PLAIN_URL.fullmatch(url)
    if m is None:
        return None
    cut = m.start(4)
    origin = url[:cut]
    plain = _PLAIN_ORIGINS.get(origin)
    if plain is None:
        plain = _plain_origin(*m.group(1, 2, 3))
        if len(_PLAIN_ORIGINS) < _PLAIN_ORIGINS_MAX:
            _PLAIN_ORIGINS[origin] = plain
    path = url[cut:]
    if not plain or _has_dot_segment(path):
        return None
    return origin, path


# Whether an origin matched by _PLAIN_URL is canonical as it is, by origin: a worker canonicalises
# each link of a page, and the links of a site share a handful of origins. Bounded: a crawl may
# meet millions of hosts (past the bound, origins are only checked again, never misjudged).
_PLAIN_ORIGINS: dict[str, bool] = {}
_PLAIN_ORIGINS_MAX = 10_000


def _plain_origin(scheme: str, host: str, port: str | None) -> bool:
    if port is not None and (port == _DEFAULT_PORTS[scheme] or int(port) > 65535):
        return False
    if ".." in host or "xn--" in host:
        return False  # punycode labels are checked (and maybe refused) by the IDNA step
    return not host.rpartition(".")[2][0].isdigit() or _CANONICAL_IPV4.fullmatch(host) is not None


def plain_base(url: str) -> tuple[str, str] | None:
    """What ``join_plain`` needs of a base URL: its origin and its directory, if it is plain."""
    parts = _plain_parts(url)
    if parts is None:
        return None
    origin, path = parts
    return origin, origin + path[: path.rfind("/") + 1] if path else origin + "/"


def join_plain(base: tuple[str, str], ref: str) -> str | None:
    """``ref`` resolved against a ``plain_base()`` when ``ref`` is a plain path or URL, else ``None``.

    The result is what the WHATWG URL parser gives (the tests hold it to ada-url's), and it is
    itself plain, so its canonical form is itself.
    """
    if ref.startswith(("http://", "https://")):
        return ref if _is_serialised(ref) else None  # absolute and plain: itself
    if _PLAIN_REF.fullmatch(ref) is None or ref.startswith("//") or _has_dot_segment(ref):
        return None
    return base[0] + ref if ref.startswith("/") else base[1] + ref


def canonicalize_url(url: str) -> str:
    """Return the form of ``url`` that equal pages share.

    The URL as the WHATWG URL Standard serialises it (scheme and host lowercased, IDNA and IPv4
    hosts in their canonical form, the default port dropped, dot segments resolved, what must be
    percent-encoded encoded), without its fragment, and with the query sorted by key and value
    (blank values kept). ``ValueError`` for a URL the Standard refuses.
    """
    plain = _plain_parts(url)
    if plain is not None:
        return url if plain[1] else url + "/"
    return _canonicalize_parsed(url)


_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normal_escape(match: re.Match[str]) -> str:
    # RFC 3986's equivalences (6.2.2.1, 6.2.2.2), which the URL Standard leaves to the server:
    # "%7e" and "%7E" and "~" are one character. Other escapes stay: "%2F" is not "/".
    char = chr(int(match.group()[1:], 16))
    return char if char in _UNRESERVED else match.group().upper()


def _canonicalize_parsed(url: str) -> str:
    """``canonicalize_url`` by a full parse: any URL."""
    # An empty reference resolves to its base without the fragment: one parse does both.
    text = join_url(url, "")
    head, _, query = text.partition("?")  # serialised, a '?' before the query is escaped
    if "%" in head:
        head = _ESCAPE.sub(_normal_escape, head)
    if query:
        # The same sorted form as before the parser changed, so that resumed jobs keep their dedup.
        return f"{head}?{urlencode(sorted(parse_qsl(query, keep_blank_values=True)))}"
    return head


def fingerprint(method: str, url: str, body: bytes = b"") -> bytes:
    """The dedup key of a request: method, canonical URL and a digest of the body."""
    # One message hashed in one call: the digest of the parts fed one by one, for less work.
    message = method.upper().encode() + b" " + canonicalize_url(url).encode("utf-8", "surrogatepass")
    if body:
        message += b" " + hashlib.blake2b(body, digest_size=16).digest()
    return hashlib.blake2b(message, digest_size=16).digest()


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
