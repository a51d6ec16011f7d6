"""Which links ``Response.follow_all()`` follows: allow/deny patterns, file extensions, schemes.

Runs in the parser worker, once per link, so it is kept to string operations and precompiled
patterns. Links to ``javascript:``, ``mailto:``, ``tel:`` and ``data:`` are never requests;
links to files by their extension (images, archives, PDFs, media, fonts, office documents) are
skipped unless ``deny_extensions`` says otherwise. ``allow``/``deny`` are regular expressions
searched in the absolute URL: a link is followed if it matches an ``allow`` (or none is given)
and no ``deny``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["IGNORED_EXTENSIONS", "NON_HTTP_PREFIXES", "LinkFilter", "Patterns", "is_non_http_link"]

# Extensions of files that are not pages, lowercased, without the dot.
IGNORED_EXTENSIONS: tuple[str, ...] = (
    # images
    "apng", "avif", "bmp", "gif", "heic", "ico", "jpe", "jpeg", "jpg", "png", "psd", "svg", "tif",
    "tiff", "webp", "ai", "eps", "cdr", "drw", "dxf",
    # audio
    "aac", "aif", "aiff", "flac", "m4a", "mid", "midi", "mp3", "oga", "ogg", "opus", "ra", "wav",
    "wma",
    # video
    "3gp", "asf", "asx", "avi", "flv", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg", "ogv", "qt", "rm",
    "swf", "webm", "wmv",
    # documents
    "doc", "docx", "odg", "odp", "ods", "odt", "pdf", "pps", "ppt", "pptx", "ps", "rtf", "xls",
    "xlsx", "epub",
    # archives and binaries
    "7z", "apk", "bin", "bz2", "cab", "deb", "dmg", "exe", "gz", "iso", "jar", "msi", "rar", "rpm",
    "tar", "tgz", "xz", "zip", "zst",
    # fonts
    "eot", "otf", "ttf", "woff", "woff2",
    # assets of a page rather than pages
    "css", "js",
)  # fmt: skip

_DEFAULT_EXTENSIONS = frozenset(IGNORED_EXTENSIONS)

# Links that never become requests (matched lowercased, after leading whitespace).
NON_HTTP_PREFIXES: tuple[str, ...] = ("javascript:", "mailto:", "tel:", "data:")

Patterns = str | re.Pattern[str] | Iterable[str | re.Pattern[str]] | None


def _compile(patterns: Patterns) -> tuple[re.Pattern[str], ...]:
    if patterns is None:
        return ()
    if isinstance(patterns, str | re.Pattern):
        patterns = (patterns,)
    return tuple(re.compile(p) for p in patterns)


class LinkFilter:
    """Decides, for one ``follow_all()`` call, whether an absolute URL is followed."""

    __slots__ = ("_allow", "_deny", "_extensions")

    def __init__(
        self, allow: Patterns = None, deny: Patterns = None, deny_extensions: Iterable[str] | None = None
    ) -> None:
        self._allow = _compile(allow)
        self._deny = _compile(deny)
        if deny_extensions is IGNORED_EXTENSIONS:
            self._extensions = _DEFAULT_EXTENSIONS  # the usual case: no set to build per page
        else:
            self._extensions = frozenset(e.lower().lstrip(".") for e in (deny_extensions or ()))

    @property
    def trivial(self) -> bool:
        """True when it lets everything through (then nobody needs to ask it)."""
        return not (self._allow or self._deny or self._extensions)

    def allows(self, url: str) -> bool:
        if self._extensions:
            path = url.partition("#")[0].partition("?")[0]
            name = path.rpartition("/")[2]
            dot = name.rfind(".")
            if dot > 0 and name[dot + 1 :].lower() in self._extensions:
                return False
        if self._allow and not any(p.search(url) for p in self._allow):
            return False
        return not any(p.search(url) for p in self._deny)


def is_non_http_link(href: str) -> bool:
    """``javascript:``, ``mailto:``, ``tel:`` and ``data:`` links: never a request."""
    head = href.lstrip()[:11].lower()
    return head.startswith(NON_HTTP_PREFIXES)
