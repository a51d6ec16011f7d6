"""A re-crawl's rules: which stored pages it treats as unchanged without sending a request.

A page an earlier crawl stored is *skipped* (unchanged, no request) when:

* ``recrawl_match`` is set and its URL matches none of those patterns, or its URL matches one
  of ``recrawl_skip`` (reason ``pattern``);
* it was fetched, or found unchanged, less than ``recrawl_after`` seconds ago (``after``);
* a sitemap lists it with a ``<lastmod>`` no newer than that time (``lastmod``), when
  ``recrawl_sitemap_lastmod`` is on: the request carries ``meta["sitemap_lastmod"]``.

A pattern is a glob matched against the whole URL (``*`` crosses ``/``, as in ``crawlkit cache
--match``), or ``re:`` and a regular expression searched in the URL. Pages no earlier crawl
stored (new ones) are always fetched: the rules only spare visits of known pages.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError
from ..http import Request

__all__ = ["RecrawlRules", "UrlPatterns", "lastmod_time", "url_patterns"]

REGEX_PREFIX = "re:"
LASTMOD_KEY = "sitemap_lastmod"
# A <lastmod> without a time of day, or without a time zone, is read at the latest instant it
# may mean: a page modified that day after it was fetched must not be skipped.
_LATEST_ZONE = datetime.timedelta(hours=12)  # UTC-12 is the last zone to end a day


@dataclass(frozen=True, slots=True)
class UrlPatterns:
    """Compiled patterns; ``matches(url)`` is true when any of them does."""

    compiled: tuple[re.Pattern[str], ...]

    def __bool__(self) -> bool:
        return bool(self.compiled)

    def matches(self, url: str) -> bool:
        return any(pattern.search(url) for pattern in self.compiled)


def url_patterns(setting: str, patterns: Iterable[str]) -> UrlPatterns:
    """``patterns`` compiled; a ``ConfigError`` naming ``setting`` and the pattern that is wrong."""
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"setting {setting!r} holds {pattern!r}: a pattern must be a non-empty string")
        if pattern.startswith(REGEX_PREFIX):
            source = pattern[len(REGEX_PREFIX) :]
            try:
                compiled.append(re.compile(source))
            except re.error as exc:
                raise ConfigError(
                    f"setting {setting!r} holds {pattern!r}, not a regular expression: {exc}"
                ) from None
        else:
            # A glob matches the whole URL; fnmatch's translation anchors it at the end.
            compiled.append(re.compile(fnmatch.translate(pattern)))
            if not pattern.startswith(("*", "?", "[")) and "://" not in pattern:
                raise ConfigError(
                    f"setting {setting!r} holds {pattern!r}: a glob matches the whole URL, "
                    f"so it starts with a scheme or a wildcard (*{pattern}), or use re:{pattern}"
                )
    return UrlPatterns(tuple(compiled))


def lastmod_time(text: str) -> float | None:
    """A sitemap ``<lastmod>`` (W3C datetime) as a Unix time, its latest reading; None if unreadable."""
    text = text.strip()
    try:
        if len(text) == 4:  # YYYY
            day = datetime.datetime(int(text) + 1, 1, 1, tzinfo=datetime.UTC)
            return (day + _LATEST_ZONE).timestamp()
        if len(text) == 7:  # YYYY-MM
            year, month = int(text[:4]), int(text[5:7])
            first = datetime.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=datetime.UTC)
            return (first + _LATEST_ZONE).timestamp()
        if len(text) == 10:  # YYYY-MM-DD: the end of that day, in the last zone to end it
            day = datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)
            return (day + datetime.timedelta(days=1) + _LATEST_ZONE).timestamp()
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        return (when.replace(tzinfo=datetime.UTC) + _LATEST_ZONE).timestamp()
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class RecrawlRules:
    """The rules of one re-crawl; ``skip_reason()`` is asked of each page it has a record of."""

    match: UrlPatterns = UrlPatterns(())
    skip: UrlPatterns = UrlPatterns(())
    after: float = 0.0
    lastmod: bool = True
    # Callbacks whose pages are always fetched and parsed (sitemaps: their <lastmod>s are read).
    always_parse: frozenset[str] = frozenset()

    def always_parsed(self, request: Request) -> bool:
        return request.callback in self.always_parse

    def skip_reason(self, request: Request, checked_at: float, now: float) -> str | None:
        """Why a stored page fetched (or found unchanged) at ``checked_at`` is not asked again."""
        if request.callback in self.always_parse:
            return None
        url = request.url
        if (self.match and not self.match.matches(url)) or (self.skip and self.skip.matches(url)):
            return "pattern"
        if self.after > 0 and now - checked_at < self.after:
            return "after"
        if self.lastmod:
            text = request.meta.get(LASTMOD_KEY) if request.meta else None
            if isinstance(text, str):
                modified = lastmod_time(text)
                if modified is not None and modified <= checked_at:
                    return "lastmod"
        return None
