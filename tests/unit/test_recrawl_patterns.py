"""A re-crawl's rules: URL patterns, ``recrawl_after``, a sitemap's ``<lastmod>``; their settings' errors."""

from __future__ import annotations

import datetime

import pytest

from crawlkit import Request
from crawlkit.errors import ConfigError
from crawlkit.fetch import RecrawlRules, url_patterns
from crawlkit.fetch._recrawlrules import lastmod_time
from crawlkit.settings import load_settings

DAY = datetime.datetime(2025, 5, 1, tzinfo=datetime.UTC).timestamp()


def test_globs_match_the_whole_url_and_regexes_are_searched() -> None:
    patterns = url_patterns("recrawl_match", ["*/product/*", "re:[?&]page=\\d+"])
    assert patterns.matches("https://shop.test/product/42")
    assert patterns.matches("https://shop.test/list?page=3")
    assert not patterns.matches("https://shop.test/products")
    assert not url_patterns("recrawl_match", ["https://shop.test/a"]).matches("https://shop.test/a/b")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('["re:("]', "holds 're:(', not a regular expression"),
        ('[""]', "a pattern must be a non-empty string"),
        ('["shop.test/product/*"]', "a glob matches the whole URL, so it starts with a scheme"),
        ("[1]", "must be a list of str"),
    ],
)
def test_bad_patterns_are_refused_naming_the_setting(value: str, message: str) -> None:
    for name in ("recrawl_match", "recrawl_skip"):
        with pytest.raises(ConfigError, match=name) as raised:
            load_settings(overrides={name: value})
        assert message in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("recrawl_output", "everything", "setting 'recrawl_output' must be changed or all, got 'everything'"),
        ("recrawl_after", "-1", "setting 'recrawl_after' must not be negative"),
        ("recrawl_after", "7d", "must be a number"),
    ],
)
def test_bad_recrawl_settings_are_refused(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(overrides={key: value})
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "latest"),
    [
        ("2025-05-01T10:00:00+02:00", DAY + 8 * 3600),
        ("2025-05-01T08:00:00Z", DAY + 8 * 3600),
        ("2025-05-01T08:00:00", DAY + 20 * 3600),  # no zone: read at its latest, UTC-12
        ("2025-05-01", DAY + 36 * 3600),  # the whole day, in the last zone to end it
        ("2025-04", DAY + 12 * 3600),
        ("2024", datetime.datetime(2025, 1, 1, 12, tzinfo=datetime.UTC).timestamp()),
    ],
)
def test_lastmod_is_read_at_its_latest(text: str, latest: float) -> None:
    assert lastmod_time(text) == latest


@pytest.mark.parametrize("text", ["", "yesterday", "2025-13-01", "2025-05-01T25:00"])
def test_unreadable_lastmod_is_none(text: str) -> None:
    assert lastmod_time(text) is None


def test_skip_reasons() -> None:
    rules = RecrawlRules(
        match=url_patterns("recrawl_match", ["*/p/*"]),
        skip=url_patterns("recrawl_skip", ["*/p/7"]),
        after=3600,
        lastmod=True,
        always_parse=frozenset({"_parse_sitemap"}),
    )
    now = DAY + 10 * 86400
    fetched = DAY + 2 * 86400  # days after the <lastmod> below, hours before now
    assert rules.skip_reason(Request("http://s.test/other"), fetched, now) == "pattern"
    assert rules.skip_reason(Request("http://s.test/p/7"), fetched, now) == "pattern"
    assert rules.skip_reason(Request("http://s.test/p/1"), now - 60, now) == "after"
    assert rules.skip_reason(Request("http://s.test/p/1"), fetched, now) is None
    listed = Request("http://s.test/p/1", meta={"sitemap_lastmod": "2025-05-01"})
    assert rules.skip_reason(listed, fetched, now) == "lastmod"
    # Modified after it was fetched, or an unreadable date: asked.
    assert rules.skip_reason(listed, DAY, now) is None
    assert (
        rules.skip_reason(Request("http://s.test/p/1", meta={"sitemap_lastmod": "soon"}), fetched, now)
        is None
    )
    # A sitemap is always fetched and parsed: its <lastmod>s are what the rule reads.
    sitemap = Request("http://s.test/p/sitemap.xml", "_parse_sitemap")
    assert rules.skip_reason(sitemap, now - 60, now) is None
