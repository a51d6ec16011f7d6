"""One label per fetch attempt: what the answer says about the site, the identity and the proxy.

Every attempt gets exactly one :class:`Label`, with a short ``reason`` for the summary:

``ok``             a usable answer (2xx, 3xx, and any status a spider rule calls ok)
``target_error``   the site's own failure or refusal of this URL (404, 410, other 4xx, 5xx):
                   never a block, says nothing about the identity
``rate_limited``   429, or 503 with Retry-After: rest the host for the asked time, keep the identity
``blocked``        401/403, a ``cf-mitigated: challenge`` header, or a challenge/CAPTCHA page told
                   from its content, whatever its status: the identity (session) is burnt
``proxy_error``    the proxy failed, not the site: its port refused, a 407, a failed CONNECT
                   tunnel, its own 502/503/504 (told by ``Proxy-Status`` and the like)
``network_error``  no answer from the site: refused, reset, timed out, DNS, TLS

The rules, in order (the first that decides wins):

1. An exception: a proxy-side failure (aiohttp's ``ClientProxyConnectionError`` or
   ``ClientHttpProxyError``, found on the exception or its ``__cause__`` chain, as crawlkit's
   fetcher wraps them, or a ``ProxyError`` the fetcher made itself, as for a SOCKS proxy's
   failure) is ``proxy_error``; anything else is ``network_error``.
2. Through a proxy, a 407, or a 502/503/504 that the proxy says it made itself
   (:data:`PROXY_ERROR_HEADERS`), is ``proxy_error``. RFC 9209's ``Proxy-Status`` names the
   error: one about the destination (DNS, refused, timeout) is the site's ``network_error``.
3. The spider's rules (:class:`Rule`), in the order given: a site whose 403 is an ordinary
   answer, or whose block page is a 200 with ``div#captcha``, says so here.
4. A ``cf-mitigated: challenge`` header is ``blocked``.
5. 401 and 403 are ``blocked``; the vendor is named in the reason when its marker is seen.
6. 404 and 410 are ``target_error``: the body is never read.
7. A plausible challenge page (below) with a vendor's challenge marker is ``blocked``, under any
   status: a 200, Cloudflare's old 503, Google's 429 with a CAPTCHA.
8. 429, or 503 with Retry-After, is ``rate_limited`` (``retry_after`` in seconds when sent).
9. Other 4xx and 5xx are ``target_error``; everything else is ``ok``.

Cheap by construction: the body is only read when the page could be a challenge page, which are
small HTML documents. A body is looked at when its status is 200, 403, 429 or 503 (the statuses
vendors use), its type is HTML (or not given), and it is at most :data:`CHALLENGE_MAX_BYTES` on
the wire (a third of that when compressed: HTML inflates three times and more); then only its
first :data:`PREFIX_BYTES` (inflated as far as that, no further) are searched for a few fixed
byte strings (anchors), and for the markers an anchor groups when it is there. No page is parsed,
except by a spider's ``selector`` rule, which parses that prefix only.

CAPTCHA widgets (reCAPTCHA, hCaptcha, Turnstile) also sit on ordinary login and contact forms,
so their markers count only with challenge wording beside them ("verify you are human",
"unusual traffic", a title that says captcha or robot...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from ..errors import FetchError, ProxyError
from ..http import PREFIX_BYTES, challenge_vendor, decoded_prefix
from ._retry import parse_retry_after

__all__ = [
    "CHALLENGE_MAX_BYTES",
    "OK_UNLESS_CHALLENGE",
    "PREFIX_BYTES",
    "PROXY_ERROR_HEADERS",
    "Attempt",
    "Classification",
    "Classifier",
    "Label",
    "Rule",
]

# Challenge pages seen in the wild weigh 1-40 KB; a real page of 200 KB is not one.
CHALLENGE_MAX_BYTES = 64 * 1024
# HTML inflates at least 3 times (5-10 times for most pages; challenge pages included).
_COMPRESSION = 3
_LOOKED_AT = frozenset({200, 403, 429, 503})
_PREFIX_CODINGS = frozenset({"", "identity", "gzip", "x-gzip", "deflate", "br"})

# Headers a proxy sets on an answer it made itself (a forwarded answer from the site has none).
PROXY_ERROR_HEADERS: tuple[str, ...] = (
    "proxy-status",  # RFC 9209
    "x-squid-error",
    "x-brd-error",
    "x-luminati-error",
)
# RFC 9209 error types (and Squid's error names) that report the destination, not the proxy.
_DESTINATION_ERRORS = (
    "dns_timeout",
    "dns_error",
    "destination_not_found",
    "destination_unavailable",
    "destination_ip_prohibited",
    "destination_ip_unroutable",
    "connection_refused",
    "connection_terminated",
    "connection_timeout",
    "connection_read_timeout",
    "connection_write_timeout",
    "tls_protocol_error",
    "tls_certificate_error",
    "http_response_incomplete",
    "err_connect_fail",
    "err_dns_fail",
    "err_read_timeout",
)


class Label(StrEnum):
    OK = "ok"
    TARGET_ERROR = "target_error"
    RATE_LIMITED = "rate_limited"
    BLOCKED = "blocked"
    PROXY_ERROR = "proxy_error"
    NETWORK_ERROR = "network_error"


@dataclass(frozen=True, slots=True)
class Classification:
    """An attempt's label; ``reason`` names the rule that decided (``status_403``, ``cloudflare``...)."""

    label: Label
    reason: str
    retry_after: float | None = None  # seconds the site asked for (rate_limited only)
    # ``ok`` but for rule 7, left to the parser worker that inflates the page (see ``response``).
    challenge_unchecked: bool = False


OK_UNLESS_CHALLENGE = Classification(Label.OK, "ok", challenge_unchecked=True)
_OK = Classification(Label.OK, "ok")


class Attempt:
    """One answer as the rules see it; the body's prefix is inflated the first time it is asked."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        content_encoding: str = "",
        url: str = "",
        via_proxy: bool = False,
    ) -> None:
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body  # as it came off the wire: still Content-Encoded
        self.content_encoding = content_encoding
        self.url = url
        self.via_proxy = via_proxy

    @cached_property
    def prefix(self) -> bytes:
        """The first :data:`PREFIX_BYTES` of the inflated body (empty if it does not inflate)."""
        return decoded_prefix(self.body, self.content_encoding, PREFIX_BYTES)


@dataclass(frozen=True, slots=True)
class Rule:
    """A spider's rule: when every condition given holds, the attempt gets ``label``.

    ``statuses``: the status is one of these (empty: any). ``pattern``: a regex (bytes or str,
    str is matched as UTF-8) found in the body's prefix. ``selector``: a CSS selector that matches
    in the body's prefix (this parses the prefix: prefer a pattern). ``check``: a function of the
    :class:`Attempt`. ``name`` is the reason counted (default ``rule``).
    """

    label: Label | str
    statuses: Iterable[int] = ()
    pattern: bytes | str | re.Pattern[bytes] | None = None
    selector: str | None = None
    check: Callable[[Attempt], bool] | None = None
    name: str = "rule"
    _codes: frozenset[int] = field(init=False, repr=False, compare=False)
    _regex: re.Pattern[bytes] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", Label(self.label))
        object.__setattr__(self, "_codes", frozenset(self.statuses))
        regex: re.Pattern[bytes] | None
        if isinstance(self.pattern, re.Pattern):
            regex = self.pattern
        elif isinstance(self.pattern, str):
            regex = re.compile(self.pattern.encode())
        elif isinstance(self.pattern, bytes):
            regex = re.compile(self.pattern)
        else:
            regex = None
        object.__setattr__(self, "_regex", regex)

    def matches(self, attempt: Attempt) -> bool:
        if self._codes and attempt.status not in self._codes:
            return False
        if self._regex is not None and self._regex.search(attempt.prefix) is None:
            return False
        if self.selector is not None and not _selects(attempt.prefix, self.selector):
            return False
        return self.check is None or bool(self.check(attempt))


class Classifier:
    """Labels attempts by the rules of this module; ``rules`` are the spider's, tried at step 3."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        challenge_max_bytes: int = CHALLENGE_MAX_BYTES,
        proxy_error_headers: Iterable[str] = PROXY_ERROR_HEADERS,
    ) -> None:
        self.rules = tuple(rules)
        self.challenge_max_bytes = challenge_max_bytes
        self._proxy_headers = tuple(h.lower() for h in proxy_error_headers)

    # -- an answer --------------------------------------------------------------------------------

    def response(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        content_encoding: str = "",
        *,
        url: str = "",
        via_proxy: bool = False,
        leave_challenge: bool = False,
    ) -> Classification:
        """The label of an answer that arrived (``body`` still Content-Encoded, as fetched).

        ``leave_challenge``: a 200 that rule 7 would look into, with no spider rules, is labelled
        :data:`OK_UNLESS_CHALLENGE` without inflating its prefix; the caller has the page's
        parser worker look for the markers (``http.challenge_vendor``) in the body it inflates
        anyway.
        """
        # A fetch's headers are a list: that test is cheap, the one against the Mapping ABC is not.
        # Anything else is copied into one, as the headers may be read twice.
        items = headers if isinstance(headers, list) else list(_pairs(headers))
        if leave_challenge and status == 200 and not via_proxy and not self.rules:
            verdict = self._direct_200(items, body, content_encoding)
            if verdict is not None:
                return verdict
        lowered = {k.lower(): v for k, v in items}
        attempt = Attempt(status, lowered, body, content_encoding, url, via_proxy)
        return self.attempt(attempt, leave_challenge=leave_challenge)

    def attempt(self, a: Attempt, *, leave_challenge: bool = False) -> Classification:
        status = a.status
        if a.via_proxy:
            verdict = self._proxy_answer(a)
            if verdict is not None:
                return verdict
        for rule in self.rules:
            if rule.matches(a):
                return Classification(Label(rule.label), rule.name)
        if a.headers.get("cf-mitigated", "").strip().lower() == "challenge":
            return Classification(Label.BLOCKED, "cloudflare")
        if status in (401, 403):
            vendor = self._vendor(a) if self._plausible(a) else None
            return Classification(Label.BLOCKED, vendor or f"status_{status}")
        if status in (404, 410):
            return Classification(Label.TARGET_ERROR, f"status_{status}")
        if status in _LOOKED_AT and self._plausible(a):
            if leave_challenge and status == 200 and not self.rules and _inflated_alike(a.content_encoding):
                return OK_UNLESS_CHALLENGE  # rules 8 and 9 say ok to a 200
            vendor = self._vendor(a)
            if vendor is not None:
                return Classification(Label.BLOCKED, vendor)
        if status == 429 or (status == 503 and "retry-after" in a.headers):
            return Classification(Label.RATE_LIMITED, f"status_{status}", _retry_after(a.headers))
        if status >= 400:
            return Classification(Label.TARGET_ERROR, f"status_{status}")
        return Classification(Label.OK, "ok")

    def _direct_200(
        self, items: Iterable[tuple[str, str]], body: bytes, content_encoding: str
    ) -> Classification | None:
        """Rules 4, 7 and 9 for the common answer, a direct 200 with no spider rules (the label of
        nearly every page of a crawl), from the two headers they need instead of a lower-cased
        copy of every header. ``None``: a ``cf-mitigated`` header, or a prefix to look at here,
        which the full rules decide."""
        ctype = ""
        for name, value in items:
            if len(name) == 12:  # both names have 12 letters: most headers are passed at once
                lowered = name.lower()
                if lowered == "content-type":
                    ctype = value  # the last one, as the full rules' dict keeps it
                elif lowered == "cf-mitigated":
                    return None
        if not _plausible(body, content_encoding, ctype, self.challenge_max_bytes):
            return _OK
        return OK_UNLESS_CHALLENGE if _inflated_alike(content_encoding) else None

    def _proxy_answer(self, a: Attempt) -> Classification | None:
        if a.status == 407:
            return Classification(Label.PROXY_ERROR, "proxy_407")
        if a.status not in (502, 503, 504):
            return None
        for name in self._proxy_headers:
            value = a.headers.get(name)
            if value is None:
                continue
            if any(error in value.lower() for error in _DESTINATION_ERRORS):
                return Classification(Label.NETWORK_ERROR, f"proxy_reports_{a.status}")
            return Classification(Label.PROXY_ERROR, f"proxy_{a.status}")
        return None

    def _plausible(self, a: Attempt) -> bool:
        ctype = a.headers.get("content-type", "")
        return _plausible(a.body, a.content_encoding, ctype, self.challenge_max_bytes)

    @staticmethod
    def _vendor(a: Attempt) -> str | None:
        """The vendor whose challenge page this is, or None."""
        return challenge_vendor(a.prefix)

    # -- no answer --------------------------------------------------------------------------------

    @staticmethod
    def error(exc: BaseException) -> Classification:
        """The label of an attempt that raised: ``proxy_error`` or ``network_error``."""
        # Imported here, not at the top: the engine imports the classifier at start-up and loads
        # aiohttp in a thread while the parser workers start (fetch.load_client).
        import aiohttp

        seen: set[int] = set()
        cause: BaseException | None = exc
        while cause is not None and id(cause) not in seen:
            seen.add(id(cause))
            if isinstance(cause, aiohttp.ClientProxyConnectionError):
                return Classification(Label.PROXY_ERROR, "proxy_connect")
            if isinstance(cause, aiohttp.ClientHttpProxyError):
                # CONNECT answered with something else than 200: 407, or the proxy's 5xx.
                return Classification(
                    Label.PROXY_ERROR, f"proxy_{cause.status}" if cause.status else "proxy_tunnel"
                )
            cause = cause.__cause__
        if isinstance(exc, ProxyError):  # the fetcher's own judgement: curl's, a SOCKS proxy's
            return Classification(Label.PROXY_ERROR, exc.detail or "proxy")
        reason = exc.reason if isinstance(exc, FetchError) else type(exc).__name__
        return Classification(Label.NETWORK_ERROR, reason)


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    return headers.items() if isinstance(headers, Mapping) else headers


def _plausible(body: bytes, coding: str, content_type: str, limit: int) -> bool:
    """Whether an answer could be a challenge page: HTML (or untyped), not empty, not too big."""
    if coding and coding.lower() != "identity":
        limit //= _COMPRESSION  # compressed HTML this size inflates past the limit
    if len(body) > limit or not body:
        return False
    return not content_type or "html" in content_type.lower()


def _inflated_alike(coding: str) -> bool:
    """Whether a parser worker's decoded body starts with what :func:`_prefix` would inflate
    (``_prefix`` reads no other coding: such a page is never a challenge here)."""
    return coding.strip().lower() in _PREFIX_CODINGS


def _retry_after(headers: Mapping[str, str]) -> float | None:
    return parse_retry_after(headers.get("retry-after"))


def _selects(prefix: bytes, selector: str) -> bool:
    from selectolax.lexbor import LexborHTMLParser

    return LexborHTMLParser(prefix).css_first(selector) is not None
