"""Challenge and block pages told from the first bytes of their HTML, by the vendors' own markers.

The fetcher's classifier (``fetch/_classify.py``) asks it about a small answer's prefix, and so
does a parser worker about a page it has inflated anyway (the classifier leaves that check to the
worker when nothing in the main process depends on it). Sans-I/O: bytes in, a vendor's name out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PREFIX_BYTES", "challenge_vendor"]

# Every vendor marker below sits in the head or the first screen of the page.
PREFIX_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class _Marker:
    vendor: str
    needle: bytes  # as vendors write it (they are machine-made: ids, URLs, script names)
    widget: bool = False  # a CAPTCHA widget: a block only with challenge wording beside it


# Markers of challenge and block pages, each specific to the page a vendor serves instead of the
# site, not to the scripts it also puts on ordinary pages (Cloudflare's
# /cdn-cgi/challenge-platform/scripts/jsd, DataDome's tags.js, PerimeterX's sensor). They are
# grouped under an anchor that each contains: a page is searched for the few anchors only (a
# byte-string search costs about 1 µs per 2 KB here), and for a group's markers when its anchor
# is in the page.
_ANCHORED: dict[bytes, tuple[_Marker, ...]] = {
    b"captcha": (
        _Marker("datadome", b"captcha-delivery.com"),
        _Marker("perimeterx", b'id="px-captcha"'),
        _Marker("recaptcha", b"/recaptcha/", widget=True),
        _Marker("recaptcha", b"g-recaptcha", widget=True),
        _Marker("hcaptcha", b"hcaptcha.com", widget=True),
        _Marker("hcaptcha", b"h-captcha", widget=True),
    ),
    b"challenge": (
        _Marker("cloudflare", b"window._cf_chl_opt"),
        _Marker("cloudflare", b"/orchestrate/chl_page/"),
        _Marker("akamai", b"/_sec/cp_challenge/"),
        _Marker("turnstile", b"challenges.cloudflare.com/turnstile", widget=True),
    ),
}
# Any of the anchors, found in one pass over the page (two searches for one anchor each cost half
# as much again). Ordinary pages have none: only a page with one is searched anchor by anchor.
_ANY_ANCHOR = re.compile(b"|".join(map(re.escape, _ANCHORED)))
# Markers of block pages that are tiny (an iframe and a script): looked for in small pages only.
_SMALL_PAGE = 4096
_SMALL: tuple[_Marker, ...] = (
    _Marker("imperva", b"_Incapsula_Resource"),
    _Marker("imperva", b"Incapsula incident ID"),
    _Marker("akamai", b"errors.edgesuite.net"),
    _Marker("akamai", b"errors&#46;edgesuite&#46;net"),  # as Akamai's own page writes it
)
# Titles of vendors' interstitials (lower-case; the title is found in the page's first 4 KB).
_TITLES: tuple[tuple[bytes, str], ...] = (
    (b"just a moment...", "cloudflare"),
    (b"attention required! | cloudflare", "cloudflare"),
    (b"access to this page has been denied", "perimeterx"),
    (b"pardon our interruption", "imperva"),
)
# Words of a page that stands between a visitor and the site (lower-case).
_WORDING: tuple[bytes, ...] = (
    b"verify you are human",
    b"verify that you are human",
    b"are you a robot",
    b"not a robot",
    b"are you human",
    b"unusual traffic",
    b"security check",
    b"checking your browser",
    b"human verification",
)
_TITLE_WORDS: tuple[bytes, ...] = (b"captcha", b"robot", b"verif", b"blocked", b"denied", b"security")
_HEAD = 4096


def challenge_vendor(text: bytes) -> str | None:
    """The vendor whose challenge page starts with ``text`` (at most :data:`PREFIX_BYTES` of the
    inflated body), or None."""
    title = _title(text)
    for words, vendor in _TITLES:
        if words in title:
            return vendor
    if len(text) <= _SMALL_PAGE:
        for marker in _SMALL:
            if marker.needle in text:
                return marker.vendor
    if _ANY_ANCHOR.search(text) is None:
        return None
    widget: str | None = None
    for anchor, markers in _ANCHORED.items():
        if anchor not in text:
            continue
        for marker in markers:
            if marker.needle in text:
                if not marker.widget:
                    return marker.vendor
                widget = widget or marker.vendor
    if widget is not None and _challenge_wording(text.lower(), title):
        return widget
    return None


def _title(text: bytes) -> bytes:
    """The page's title, lower-case, if it starts in the first 4 KB (where titles are)."""
    start = text.find(b"<title", 0, _HEAD)
    if start < 0:
        start = text[:_HEAD].lower().find(b"<title")
        if start < 0:
            return b""
    end = text.find(b"</", start)
    return text[start : end if end >= 0 else start + 200].lower()


def _challenge_wording(lowered: bytes, title: bytes) -> bool:
    return any(words in lowered for words in _WORDING) or any(word in title for word in _TITLE_WORDS)
