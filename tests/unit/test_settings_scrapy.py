"""Scrapy's setting names in any layer: taken under crawlkit's name with a warning, or refused."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import orjson
import pytest

from crawlkit.errors import ConfigError
from crawlkit.settings import Settings, load_settings


def test_command_line_scrapy_name_is_taken_and_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        settings = load_settings(environ={}, overrides={"CONCURRENT_REQUESTS": "32"})
    assert settings.concurrency == 32
    assert "CONCURRENT_REQUESTS is Scrapy's name (from the command line): using concurrency=32" in caplog.text


def test_custom_settings_scrapy_names(caplog: pytest.LogCaptureFixture) -> None:
    spider_settings = {
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "ROBOTSTXT_OBEY": False,
        "RETRY_TIMES": 5,
        "DOWNLOAD_MAXSIZE": 1024,
        "REDIRECT_MAX_TIMES": 4,
        "AUTOTHROTTLE_ENABLED": False,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "AUTOTHROTTLE_MAX_DELAY": 10,
        "CLOSESPIDER_ITEMCOUNT": 7,
        "CLOSESPIDER_PAGECOUNT": 8,
        "CLOSESPIDER_ERRORCOUNT": 9,
        "CLOSESPIDER_TIMEOUT": 60,
        "DEFAULT_REQUEST_HEADERS": {"Accept": "text/html"},
        "FEED_FORMAT": "jsonlines",
        "FEED_EXPORT_FIELDS": ["a", "b"],
        "JOBDIR": "crawls/one",
        # Names equal to crawlkit's are crawlkit's, uppercase or not.
        "DOWNLOAD_DELAY": 0.5,
        "DEPTH_LIMIT": 3,
        "USER_AGENT": "bot/1",
        "RETRY_HTTP_CODES": [500],
        "DOWNLOAD_TIMEOUT": 20,
        "LOG_LEVEL": "DEBUG",
    }
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        s = load_settings(environ={}, spider_settings=spider_settings)
    assert s == Settings(
        concurrency_per_host=2,
        obey_robots=False,
        max_retries=5,
        max_response_size=1024,
        max_redirects=4,
        autothrottle=False,
        autothrottle_target_concurrency=1.0,
        autothrottle_max_delay=10.0,
        close_after_items=7,
        close_after_pages=8,
        close_after_errors=9,
        close_after_seconds=60.0,
        default_headers={"Accept": "text/html"},
        output_format="jsonl",
        csv_fields=["a", "b"],
        job_dir="crawls/one",
        download_delay=0.5,
        depth_limit=3,
        user_agent="bot/1",
        retry_http_codes=[500],
        download_timeout=20.0,
        log_level="DEBUG",
    )
    assert "using concurrency_per_host=2" in caplog.text
    assert "using output_format='jsonl'" in caplog.text
    assert "DOWNLOAD_DELAY" not in caplog.text  # crawlkit's own name: nothing to say


def test_item_pipelines_priorities_become_an_ordered_list() -> None:
    pipelines = {"p.Last": 900, "p.First": 100, "p.Off": None, "p.Middle": 300, "p.Middle2": 300}
    s = load_settings(environ={}, spider_settings={"ITEM_PIPELINES": pipelines})
    assert s.pipelines == ["p.First", "p.Middle", "p.Middle2", "p.Last"]
    # From -s, as JSON text.
    s = load_settings(environ={}, overrides={"ITEM_PIPELINES": '{"q.B": 2, "q.A": 1}'})
    assert s.pipelines == ["q.A", "q.B"]
    with pytest.raises(ConfigError, match=r"priority of 'p\.X' must be an integer"):
        load_settings(environ={}, spider_settings={"ITEM_PIPELINES": {"p.X": "high"}})


def test_downloader_middlewares_and_extensions_become_ordered_lists() -> None:
    layer = {
        "DOWNLOADER_MIDDLEWARES": {"m.AddKey": 543, "m.First": 100, "scrapy.Builtin": None},
        "EXTENSIONS": {"e.Watch": 500},
    }
    s = load_settings(environ={}, spider_settings=layer)
    assert s.middlewares == ["m.First", "m.AddKey"]
    assert s.extensions == ["e.Watch"]


def test_pyproject_and_environment(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.crawlkit]\nCONCURRENT_REQUESTS = 12\n", encoding="utf-8")
    env = {"CRAWLKIT_CONCURRENT_REQUESTS_PER_DOMAIN": "3", "CRAWLKIT_FEED_URI": "x.jsonl"}
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        s = load_settings(pyproject=path, environ=env)
    assert (s.concurrency, s.concurrency_per_host) == (12, 3)
    assert f"CONCURRENT_REQUESTS is Scrapy's name (from [tool.crawlkit] in {path})" in caplog.text
    assert "CRAWLKIT_CONCURRENT_REQUESTS_PER_DOMAIN is Scrapy's name" in caplog.text
    # The environment stays lenient: a Scrapy name with no equivalent is skipped with the advice.
    assert "ignoring CRAWLKIT_FEED_URI" in caplog.text and "-o PATH" in caplog.text


@pytest.mark.parametrize(
    ("name", "advice"),
    [
        ("FEED_URI", "-o PATH"),
        ("HTTPERROR_ALLOWED_CODES", "handle_httpstatus_list"),
        ("CONCURRENT_REQUESTS_PER_IP", "host_rules"),
        ("RETRY_ENABLED", "max_retries = 0"),
        ("SPIDER_MIDDLEWARES", "pipelines"),
    ],
)
def test_scrapy_names_without_equivalent_are_refused_with_advice(name: str, advice: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, spider_settings={name: 1})
    message = str(info.value)
    assert f"crawlkit has no setting {name!r} (from the spider's custom_settings)" in message
    assert advice in message


def test_scrapy_only_names_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        s = load_settings(environ={}, spider_settings={"BOT_NAME": "quotes", "SPIDER_MODULES": ["x"]})
    assert s == Settings()
    assert "ignoring Scrapy's BOT_NAME" in caplog.text


def test_uppercase_typo_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting 'CONCURENCY'.*did you mean 'concurrency'\?"):
        load_settings(environ={}, overrides={"CONCURENCY": "2"})


def test_one_warning_per_habit(caplog: pytest.LogCaptureFixture) -> None:
    # The CLI reads the layers more than once; the user is told once.
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        for _ in range(3):
            load_settings(environ={}, overrides={"CONCURRENT_REQUESTS": "31"})
    assert caplog.text.count("using concurrency=31") == 1


def test_feeds_become_crawlkit_feeds_with_the_options_both_have(caplog: pytest.LogCaptureFixture) -> None:
    feeds = {
        "items.jsonl": {"format": "jsonlines", "encoding": "utf8", "overwrite": True},
        "file:///tmp/out/items.csv": {"format": "csv", "fields": ["url", "title"], "encoding": "UTF-8"},
        "parts/items-%(batch_id)d.json": {"format": "json", "batch_item_count": 100, "overwrite": False},
    }
    with caplog.at_level(logging.WARNING, logger="crawlkit.settings"):
        s = load_settings(environ={}, spider_settings={"FEEDS": feeds})
    assert s.feeds == {
        "items.jsonl": {"format": "jsonl", "overwrite": True},
        "/tmp/out/items.csv": {"format": "csv", "fields": ["url", "title"]},
        "parts/items.json": {"format": "json", "max_items_per_file": 100, "overwrite": False},
    }
    assert "FEEDS is Scrapy's name (from the spider's custom_settings): using feeds=" in caplog.text
    # From the command line, as JSON text.
    s = load_settings(environ={}, overrides={"FEEDS": '{"a.csv": {"fields": ["url"]}}'})
    assert s.feeds == {"a.csv": {"fields": ["url"]}}


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"s3://bucket/items.jsonl": {}}, "not a local file"),
        ({"items-%(name)s.jsonl": {}}, "has a placeholder"),
        ({"items.jsonl": {"encoding": "latin-1"}}, "crawlkit writes UTF-8"),
        ({"items.jsonl": {"indent": 2}}, "has option 'indent', which crawlkit has not"),
        ({"items.jsonl": {"format": "xml"}}, "crawlkit writes jsonl, json and csv"),
        ({"items-%(batch_id)d.jsonl": {}}, "names a batch but has no batch_item_count"),
    ],
)
def test_feeds_crawlkit_cannot_write_are_refused_naming_the_feed(
    feeds: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={}, spider_settings={"FEEDS": feeds})


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"a.csv": {"columns": ["url"]}}, "feed 'a.csv': unknown option 'columns'"),
        ({"a.csv": {"format": "xml"}}, "feed 'a.csv': option 'format' must be jsonl, csv or json"),
        ({"a.csv": {"max_items_per_file": -1}}, "option 'max_items_per_file' must be an integer, 0 or more"),
        ({"a.csv": {"fields": "url"}}, "option 'fields' must be a list of field names"),
        ({"a.csv": {"overwrite": "yes"}}, "option 'overwrite' must be true or false"),
    ],
)
def test_crawlkit_feeds_are_checked_when_the_settings_are_built(
    feeds: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={}, overrides={"feeds": orjson.dumps(feeds).decode()})
