"""The checks a settings value must pass beyond its type: ranges, choices, host rules."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ._feeds import check_feeds

if TYPE_CHECKING:
    from ._schema import Settings

__all__ = ["BROWSER_RESOURCE_TYPES", "validate"]

# The resource types Chromium reports for a request (Playwright's request.resource_type).
BROWSER_RESOURCE_TYPES = frozenset(
    {
        "document", "stylesheet", "image", "media", "font", "script", "texttrack", "xhr", "fetch",
        "eventsource", "websocket", "manifest", "other",
    }
)  # fmt: skip

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token


def validate(s: Settings) -> None:
    """Raise a ``ConfigError`` naming the first setting whose value is out of range."""
    positive = ("concurrency", "concurrency_per_host", "parse_batch_size")
    for name in positive:
        if getattr(s, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1, got {getattr(s, name)}")
    non_negative = (
        "download_delay",
        "depth_limit",
        "max_retries",
        "retry_backoff_base",
        "retry_backoff_max",
        "retry_after_max",
        "max_response_size",
        "max_redirects",
        "dns_cache_ttl",
        "shutdown_timeout",
        "http_cache_max_age",
        "http_cache_max_bytes",
        "recrawl_after",
    )
    for name in non_negative:
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must not be negative, got {getattr(s, name)}")
    for name in ("connect_timeout", "read_timeout", "download_timeout"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be greater than 0, got {getattr(s, name)}")
    _check_output_settings(s)
    _check_safety_settings(s)
    _check_frontier_settings(s)
    if s.commit_interval <= 0:
        raise ConfigError(f"setting 'commit_interval' must be greater than 0, got {s.commit_interval}")
    if s.parse_workers < -1:
        raise ConfigError(f"setting 'parse_workers' must be -1 (auto), 0 or more, got {s.parse_workers}")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"setting 'log_level' must be DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")
    for name in s.redact_headers:
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"setting 'redact_headers' holds {name!r}, not a header name")
    for code in s.retry_http_codes:
        if not 100 <= code <= 599:
            raise ConfigError(f"setting 'retry_http_codes' holds {code}, not an HTTP status")
    _check_politeness_settings(s)
    _check_recrawl_settings(s)
    _check_browser_settings(s)
    _check_identity_settings(s)


_CHOICES = {
    "sessions": ("auto", "on", "off"),
    "identities": ("honest", "browser"),
    "on_no_proxy": ("wait", "stop"),
    "fetcher": ("aiohttp", "impersonate"),
}


def _check_identity_settings(s: Settings) -> None:
    for name, choices in _CHOICES.items():
        if getattr(s, name) not in choices:
            raise ConfigError(
                f"setting {name!r} must be one of {', '.join(choices)}, got {getattr(s, name)!r}"
            )
    for name in ("session_pool_size", "session_max_uses", "session_max_age", "max_session_rotations"):
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must not be negative, got {getattr(s, name)}")
    if s.session_max_score <= 0:
        raise ConfigError(f"setting 'session_max_score' must be greater than 0, got {s.session_max_score}")
    from ..fetch import parse_block_rules  # here: as for host rules

    parse_block_rules(s.block_rules)
    if s.fetcher == "impersonate":
        from ..fetch import check_target  # curl_cffi: imported only for this fetcher

        check_target(s.impersonate)
    if s.captcha_solver and ":" not in s.captcha_solver:
        raise ConfigError(
            f"setting 'captcha_solver' must be an import path module:Name, got {s.captcha_solver!r}"
        )


def _check_recrawl_settings(s: Settings) -> None:
    if s.recrawl_output not in ("changed", "all"):
        raise ConfigError(f"setting 'recrawl_output' must be changed or all, got {s.recrawl_output!r}")
    from ..fetch import url_patterns  # here: as for host rules

    for name in ("recrawl_match", "recrawl_skip"):
        url_patterns(name, getattr(s, name))


def _check_browser_settings(s: Settings) -> None:
    for name in ("browser_concurrency", "browser_context_pages"):
        if getattr(s, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1, got {getattr(s, name)}")
    if s.render_timeout <= 0:
        raise ConfigError(f"setting 'render_timeout' must be greater than 0, got {s.render_timeout}")
    if s.browser_max_memory_mb < 0:
        got = s.browser_max_memory_mb
        raise ConfigError(f"setting 'browser_max_memory_mb' must not be negative, got {got}")
    unknown = sorted(set(s.browser_block_resources) - BROWSER_RESOURCE_TYPES)
    if unknown:
        known = ", ".join(sorted(BROWSER_RESOURCE_TYPES))
        raise ConfigError(
            f"setting 'browser_block_resources' holds unknown resource types {unknown} (known: {known})"
        )


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _check_frontier_settings(s: Settings) -> None:
    if s.frontier not in ("sqlite", "memory") and not s.frontier.startswith(_REDIS_SCHEMES):
        raise ConfigError(
            f"setting 'frontier' must be 'sqlite', 'memory' or a redis://HOST:PORT/DB URL, got {s.frontier!r}"
        )
    if s.lease_ttl < 0.5:
        raise ConfigError(f"setting 'lease_ttl' must be at least 0.5, got {s.lease_ttl}")
    if s.redis_retry_timeout < 0:
        raise ConfigError(f"setting 'redis_retry_timeout' must not be negative, got {s.redis_retry_timeout}")
    shards = s.redis_seen_shards
    if not 1 <= shards <= 1 << 24 or shards & (shards - 1):
        raise ConfigError(f"setting 'redis_seen_shards' must be a power of two up to 2^24, got {shards}")


def _check_output_settings(s: Settings) -> None:
    if s.output_format.lower() not in ("", "jsonl", "csv", "json"):
        raise ConfigError(f"setting 'output_format' must be jsonl, csv or json, got {s.output_format!r}")
    if s.max_items_per_file < 0:
        raise ConfigError(f"setting 'max_items_per_file' must not be negative, got {s.max_items_per_file}")
    check_feeds(s.feeds)
    if s.progress not in ("auto", "rich", "log", "off"):
        raise ConfigError(f"setting 'progress' must be auto, rich, log or off, got {s.progress!r}")
    if s.progress_interval <= 0:
        raise ConfigError(f"setting 'progress_interval' must be greater than 0, got {s.progress_interval}")
    if s.series_interval <= 0:
        raise ConfigError(f"setting 'series_interval' must be greater than 0, got {s.series_interval}")


def _check_safety_settings(s: Settings) -> None:
    names = ("max_memory_mb", "max_inflight_bytes", "parse_worker_max_tasks", "parse_timeout")
    for name in (*names, "loop_stall_warning"):
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must not be negative, got {getattr(s, name)}")


def _check_politeness_settings(s: Settings) -> None:
    from ..fetch import parse_host_rules  # here: hostpolicy needs the frontier package

    parse_host_rules(s.host_rules)
    for name in (
        "autothrottle_target_concurrency",
        "autothrottle_max_delay",
        "close_after_items",
        "close_after_pages",
        "close_after_errors",
        "close_after_seconds",
    ):
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must not be negative, got {getattr(s, name)}")
