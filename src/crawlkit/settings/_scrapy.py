"""Scrapy's setting names, answered: translated to crawlkit's with a warning, or refused with advice.

A ported spider brings ``custom_settings = {"CONCURRENT_REQUESTS": 32}`` and a user types
``-s DOWNLOAD_MAXSIZE=...`` from habit. A name whose meaning crawlkit has is taken, converted where
the shape differs (``ITEM_PIPELINES`` priorities become an ordered list), and logged once, naming
the crawlkit setting to write instead. A name crawlkit has nothing for is an error that says so and
what to do instead, since a setting silently dropped would crawl differently from what was asked.
A few that only configure Scrapy itself (``BOT_NAME``, ``SPIDER_MODULES``) are skipped with a
warning: they change nothing about the crawl. Names equal to crawlkit's (``DOWNLOAD_DELAY``,
``DEPTH_LIMIT``, ``USER_AGENT``, ``LOG_LEVEL``...) are not here: they already are crawlkit's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import ConfigError

__all__ = ["CONVERTED_NAMES", "SCRAPY_RENAMES", "ScrapyAnswer", "scrapy_setting"]


@dataclass(frozen=True, slots=True)
class ScrapyAnswer:
    """What a Scrapy name became: crawlkit settings, still to be type-checked, or why it has none."""

    values: dict[str, Any]
    ignored_because: str = ""


def _structured(value: Any, where: str) -> Any:
    """A dict or list given as JSON text (``-s``, the environment) is parsed; others pass as they are."""
    if isinstance(value, str) and value.strip().startswith(("{", "[")):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc}") from None
    return value


def _pipelines(value: Any, where: str) -> list[str]:
    value = _structured(value, where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must map pipeline paths to priorities, got {value!r}")
    enabled: list[tuple[int, int, str]] = []
    for index, (path, priority) in enumerate(value.items()):
        if priority is None:  # Scrapy's way to turn off a pipeline a lower layer enabled
            continue
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigError(f"{where}: the priority of {path!r} must be an integer, got {priority!r}")
        enabled.append((priority, index, str(path)))
    # Lower priorities run first, as in Scrapy; ties keep the order they were written in.
    return [path for _, _, path in sorted(enabled)]


_FORMATS = {"jsonlines": "jsonl", "jl": "jsonl", "jsonl": "jsonl", "json": "json", "csv": "csv"}


def _feed_format(value: Any, where: str) -> str:
    name = str(value).strip().lower()
    if name not in _FORMATS:
        raise ConfigError(f"{where}: crawlkit writes jsonl, json and csv, not {value!r}")
    return _FORMATS[name]


def _as_is(value: Any, where: str) -> Any:
    return value


# Scrapy's feed options that have a crawlkit equivalent: name -> crawlkit's option.
_FEED_OPTIONS = {"format": "format", "fields": "fields", "overwrite": "overwrite"}
# Scrapy names a batch's file with a placeholder; crawlkit numbers parts NAME-0001.EXT.
_BATCH_PLACEHOLDER = re.compile(r"[-_.]?%\((?:batch_id|batch_time)\)[-+ #0-9]*[a-zA-Z]")


def _feeds(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """Scrapy's ``FEEDS`` as crawlkit's ``feeds``: local files, with the options both have."""
    value = _structured(value, where)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must map feed paths to their options, got {value!r}")
    feeds: dict[str, dict[str, Any]] = {}
    for uri, options in value.items():
        path, batched = _feed_path(str(uri), where)
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}: the options of feed {uri!r} must be a dict, got {options!r}")
        feed: dict[str, Any] = {}
        for name, option in options.items():
            if name in _FEED_OPTIONS:
                feed[_FEED_OPTIONS[name]] = _feed_format(option, where) if name == "format" else option
            elif name == "batch_item_count":
                feed["max_items_per_file"] = option
            elif name == "encoding":
                if str(option).replace("-", "").lower() != "utf8":
                    raise ConfigError(
                        f"{where}: feed {uri!r} asks for encoding {option!r}; crawlkit writes UTF-8"
                    )
            else:
                raise ConfigError(
                    f"{where}: feed {uri!r} has option {name!r}, which crawlkit has not; {_FEED_ADVICE}"
                )
        if batched and not feed.get("max_items_per_file"):
            raise ConfigError(f"{where}: feed {uri!r} names a batch but has no batch_item_count")
        feeds[path] = feed
    return feeds


_FEED_ADVICE = (
    "a crawlkit feed takes format, fields, overwrite, batch_item_count (max_items_per_file) and "
    "encoding utf-8; a name ending in .gz is gzipped"
)


def _feed_path(uri: str, where: str) -> tuple[str, bool]:
    """A local path from a feed's URI, and whether it named a batch (crawlkit numbers its parts)."""
    path = uri.removeprefix("file://")
    if "://" in path:
        raise ConfigError(f"{where}: feed {uri!r} is not a local file; crawlkit writes local files only")
    unbatched = _BATCH_PLACEHOLDER.sub("", path)
    if "%(" in unbatched:
        raise ConfigError(
            f"{where}: feed {uri!r} has a placeholder; crawlkit writes to the path as given "
            "(name the spider in it)"
        )
    return unbatched, unbatched != path


# Scrapy name -> (crawlkit name, conversion). Values keep Scrapy's meaning after the conversion.
SCRAPY_RENAMES: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "CONCURRENT_REQUESTS": ("concurrency", _as_is),
    "CONCURRENT_REQUESTS_PER_DOMAIN": ("concurrency_per_host", _as_is),
    "ROBOTSTXT_OBEY": ("obey_robots", _as_is),
    "ROBOTSTXT_USER_AGENT": ("robots_user_agent", _as_is),
    "RETRY_TIMES": ("max_retries", _as_is),
    "DOWNLOAD_MAXSIZE": ("max_response_size", _as_is),
    "REDIRECT_MAX_TIMES": ("max_redirects", _as_is),
    "AUTOTHROTTLE_ENABLED": ("autothrottle", _as_is),
    # Both aim at latency / target requests in flight per host; Scrapy's default is 1.0.
    "AUTOTHROTTLE_TARGET_CONCURRENCY": ("autothrottle_target_concurrency", _as_is),
    "AUTOTHROTTLE_MAX_DELAY": ("autothrottle_max_delay", _as_is),
    "CLOSESPIDER_ITEMCOUNT": ("close_after_items", _as_is),
    "CLOSESPIDER_PAGECOUNT": ("close_after_pages", _as_is),
    "CLOSESPIDER_ERRORCOUNT": ("close_after_errors", _as_is),
    "CLOSESPIDER_TIMEOUT": ("close_after_seconds", _as_is),
    "DEFAULT_REQUEST_HEADERS": ("default_headers", _as_is),
    "ITEM_PIPELINES": ("pipelines", _pipelines),
    "FEED_FORMAT": ("output_format", _feed_format),
    "FEED_EXPORT_FIELDS": ("csv_fields", _as_is),
    "FEED_EXPORT_BATCH_ITEM_COUNT": ("max_items_per_file", _as_is),
    "FEEDS": ("feeds", _feeds),
    "JOBDIR": ("job_dir", _as_is),
    "DNSCACHE_EXPIRATION": ("dns_cache_ttl", _as_is),
    # Lower numbers nearer the engine, as pipelines: the order they are listed in.
    "DOWNLOADER_MIDDLEWARES": ("middlewares", _pipelines),
    "EXTENSIONS": ("extensions", _pipelines),
}

# Scrapy names whose value needs converting even where the name, lowercased, is crawlkit's own
# (EXTENSIONS: a mapping of priorities, where crawlkit's extensions is a list).
CONVERTED_NAMES = frozenset(name for name, (_, convert) in SCRAPY_RENAMES.items() if convert is not _as_is)

# Scrapy names that only configure Scrapy itself: nothing to do, said once.
_IGNORED = {
    "BOT_NAME": "the spider's name is its name",
    "SPIDER_MODULES": "spiders are found in the spiders_dir folder",
    "NEWSPIDER_MODULE": "`crawlkit new` writes into spiders_dir",
    "TELNETCONSOLE_ENABLED": "crawlkit has no telnet console",
    "TWISTED_REACTOR": "crawlkit runs on asyncio (uvloop where available)",
    "REQUEST_FINGERPRINTER_IMPLEMENTATION": "crawlkit has one fingerprint",
    "FEED_EXPORT_ENCODING": "crawlkit writes UTF-8",
    "RANDOMIZE_DOWNLOAD_DELAY": "download_delay is always jittered 0.5x-1.5x, as Scrapy's default",
    "AUTOTHROTTLE_DEBUG": "run with log_level = DEBUG",
    "STATS_DUMP": "the summary is always printed; --stats-file writes it as JSON",
    "LOG_ENABLED": "use log_level",
    "COOKIES_DEBUG": "run with log_level = DEBUG",
}

# Scrapy names crawlkit has nothing for: what to do instead.
_REFUSED = {
    "FEED_URI": "give the output with -o PATH",
    "CONCURRENT_REQUESTS_PER_IP": "use concurrency_per_host, or host_rules for chosen hosts",
    "DOWNLOAD_DELAY_PER_DOMAIN": "use host_rules",
    "RETRY_ENABLED": "set max_retries = 0 to turn retries off",
    "REDIRECT_ENABLED": 'set Request(meta={"dont_redirect": True}) where a redirect must not be followed',
    "HTTPERROR_ALLOWED_CODES": "list the statuses in the spider's handle_httpstatus_list",
    "HTTPERROR_ALLOW_ALL": 'set Request(meta={"handle_httpstatus_all": True})',
    "AUTOTHROTTLE_START_DELAY": "the adaptive delay starts from download_delay",
    "DEPTH_PRIORITY": "within a priority, callbacks take turns, each first in, first out "
    "(docs/spiders.md#crawl-order); use Request(priority=...)",
    "SCHEDULER_DISK_QUEUE": "the queue is the frontier setting (sqlite, memory or a redis:// URL)",
    "SCHEDULER_MEMORY_QUEUE": "the queue is the frontier setting (sqlite, memory or a redis:// URL)",
    "SCHEDULER": "the queue is the frontier setting (sqlite, memory or a redis:// URL)",
    "DUPEFILTER_CLASS": "requests are deduplicated by fingerprint; dont_filter=True skips it",
    "HTTPCACHE_ENABLED": "crawlkit has no HTTP cache yet",
    "LOG_FILE": "crawlkit logs to stderr: redirect it (2> crawl.log)",
    "LOG_FORMAT": "crawlkit has one log format",
    "DOWNLOAD_WARNSIZE": "max_response_size is the limit; there is no warning size",
    "MEMUSAGE_LIMIT_MB": "use max_memory_mb",
    "MEMUSAGE_ENABLED": "use max_memory_mb",
    "SPIDER_MIDDLEWARES": "process a callback's output in the callback, or items in pipelines",
}


def scrapy_setting(raw_key: str, value: Any, source: str, known: Collection[str]) -> ScrapyAnswer | None:
    """The answer to a Scrapy setting name, or None when ``raw_key`` is none of Scrapy's.

    Raises :class:`ConfigError` for a Scrapy setting crawlkit has no equivalent for; ``known``
    are crawlkit's setting names.
    """
    name = raw_key.upper()
    where = f"setting {raw_key!r} (from {source})"
    if name in SCRAPY_RENAMES:
        key, convert = SCRAPY_RENAMES[name]
        if key not in known:
            raise ConfigError(f"crawlkit has no setting {raw_key!r} (from {source}) in this version")
        return ScrapyAnswer({key: convert(value, where)})
    if name in _IGNORED:
        return ScrapyAnswer({}, _IGNORED[name])
    if name in _REFUSED:
        raise ConfigError(f"crawlkit has no setting {raw_key!r} (from {source}): {_REFUSED[name]}")
    return None
