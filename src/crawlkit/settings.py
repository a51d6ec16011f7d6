"""One typed settings object, with documented defaults and layered sources.

Precedence, lowest first: defaults < ``[tool.crawlkit]`` in ``pyproject.toml`` < the spider's
``custom_settings`` < ``CRAWLKIT_*`` environment variables < ``-s KEY=VALUE`` on the command line.
Every key is checked: an unknown key or a value of the wrong type is a :class:`ConfigError` that
names the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .errors import ConfigError

__all__ = ["Settings", "load_settings"]

DEFAULT_USER_AGENT = f"crawlkit/{__version__}"
DEFAULT_RETRY_HTTP_CODES = (408, 429, 500, 502, 503, 504, 522, 524)


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of a crawl. Field metadata holds the documentation the reference is built from."""

    concurrency: int = dataclasses.field(
        default=16,
        metadata=_doc(
            "Requests in flight at once, across all hosts: being fetched or parsed (a parsed page's "
            "commit does not count)."
        ),
    )
    concurrency_per_host: int = dataclasses.field(
        default=8, metadata=_doc("Requests being fetched at once from one host.")
    )
    download_delay: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Seconds between the starts of two requests to one host, jittered 0.5x-1.5x (0: none)."
        ),
    )
    parse_workers: int = dataclasses.field(
        default=-1,
        metadata=_doc(
            "Parser worker processes; -1 means one per CPU core, 0 runs callbacks inline "
            "in the main process (for debugging)."
        ),
    )
    parse_batch_size: int = dataclasses.field(
        default=16, metadata=_doc("Most responses sent to a parser worker in one message.")
    )
    depth_limit: int = dataclasses.field(
        default=0, metadata=_doc("Deepest link depth followed from a start URL (0: no limit).")
    )
    max_retries: int = dataclasses.field(
        default=3, metadata=_doc("Retries after the first attempt, for retryable failures.")
    )
    retry_http_codes: list[int] = dataclasses.field(
        default_factory=lambda: list(DEFAULT_RETRY_HTTP_CODES),
        metadata=_doc("HTTP status codes that are retried."),
    )
    retry_backoff_base: float = dataclasses.field(
        default=0.5, metadata=_doc("First retry delay in seconds; doubles each attempt, jittered.")
    )
    retry_backoff_max: float = dataclasses.field(
        default=30.0, metadata=_doc("Longest computed retry delay in seconds.")
    )
    retry_after_max: float = dataclasses.field(
        default=120.0, metadata=_doc("Longest Retry-After delay honoured, in seconds.")
    )
    connect_timeout: float = dataclasses.field(default=10.0, metadata=_doc("Seconds to open a connection."))
    read_timeout: float = dataclasses.field(
        default=30.0, metadata=_doc("Seconds to wait between two reads of a response.")
    )
    download_timeout: float = dataclasses.field(
        default=60.0, metadata=_doc("Seconds for a whole request, connection to last byte.")
    )
    max_response_size: int = dataclasses.field(
        default=32 * 1024 * 1024,
        metadata=_doc("Largest body accepted, in bytes, compressed or not (0: no limit)."),
    )
    max_redirects: int = dataclasses.field(
        default=20, metadata=_doc("Redirects followed for one request before it fails.")
    )
    verify_tls: bool = dataclasses.field(
        default=True,
        metadata=_doc("Verify TLS certificates; a spider may turn it off in its custom_settings."),
    )
    obey_robots: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "Fetch each host's robots.txt once and skip what it disallows; its Crawl-delay is honoured."
        ),
    )
    robots_user_agent: str = dataclasses.field(
        default="",
        metadata=_doc(
            "The name matched against robots.txt User-agent lines; empty: the product token of "
            "user_agent (crawlkit)."
        ),
    )
    host_rules: dict[str, dict[str, Any]] = dataclasses.field(
        default_factory=dict,
        metadata=_doc(
            'Per-host limits by glob, first match wins: {"*.example.com": {"concurrency": 2, '
            '"delay": 1.0}}; other hosts get concurrency_per_host and download_delay.'
        ),
    )
    autothrottle: bool = dataclasses.field(
        default=True,
        metadata=_doc(
            "Adapt each host's delay to its response times, and rest a host that answers 429 or "
            "503 (for its Retry-After), then speed up again gradually."
        ),
    )
    autothrottle_target_concurrency: float = dataclasses.field(
        default=0.0,
        metadata=_doc(
            "Requests the adaptive delay aims to keep in flight to one host: the delay is "
            "latency / this (0: the host's concurrency limit)."
        ),
    )
    autothrottle_max_delay: float = dataclasses.field(
        default=60.0, metadata=_doc("Longest delay adaptive throttling gives a host, in seconds.")
    )
    close_after_items: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many items are written (0: never).")
    )
    close_after_pages: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many responses are received (0: never).")
    )
    close_after_errors: int = dataclasses.field(
        default=0, metadata=_doc("Stop cleanly once this many pages or items failed (0: never).")
    )
    close_after_seconds: float = dataclasses.field(
        default=0.0, metadata=_doc("Stop cleanly after this many seconds of crawling (0: never).")
    )
    user_agent: str = dataclasses.field(
        default=DEFAULT_USER_AGENT, metadata=_doc("The User-Agent header sent with every request.")
    )
    default_headers: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en",
        },
        metadata=_doc("Headers sent with every request unless the request sets them."),
    )
    dns_cache_ttl: int = dataclasses.field(default=300, metadata=_doc("Seconds a DNS answer is reused."))
    pipelines: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc("Item pipelines, as import paths (module:Name), run in this order."),
    )
    shutdown_timeout: float = dataclasses.field(
        default=30.0,
        metadata=_doc("Seconds that in-flight work may take to finish after a stop is asked."),
    )
    max_memory_mb: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "Memory ceiling in MiB for the whole crawl (main process and parser workers, resident "
            "memory): a warning at 80%, a graceful, resumable stop at 100% (0: no ceiling)."
        ),
    )
    max_inflight_bytes: int = dataclasses.field(
        default=256 * 1024 * 1024,
        metadata=_doc(
            "Most bytes of response bodies held at once, read or waiting to be parsed; a fetch "
            "waits for room before reading more (0: no limit)."
        ),
    )
    parse_worker_max_tasks: int = dataclasses.field(
        default=10_000,
        metadata=_doc(
            "Responses a parser worker handles before it is replaced by a fresh one, which "
            "frees what a leaky callback kept (0: never)."
        ),
    )
    parse_timeout: float = dataclasses.field(
        default=60.0,
        metadata=_doc(
            "Seconds one callback may run; past that its worker is killed and replaced and the "
            "response fails as parse_timeout (0: no limit)."
        ),
    )
    loop_stall_warning: float = dataclasses.field(
        default=0.25,
        metadata=_doc(
            "Warn when the event loop is blocked this many seconds, naming the pipeline or hook "
            "that was running (0: off)."
        ),
    )
    log_level: str = dataclasses.field(default="INFO", metadata=_doc("DEBUG, INFO, WARNING or ERROR."))
    frontier: str = dataclasses.field(
        default="sqlite",
        metadata=_doc(
            "Where the crawl's queue lives: 'sqlite' (durable, resumable: the default), "
            "'memory' (lost when the process ends) or a redis://HOST:PORT/DB URL (shared by "
            "every process that uses it: see docs/distributed.md)."
        ),
    )
    job_dir: str = dataclasses.field(
        default="",
        metadata=_doc("Folder for a durable crawl's state (default: .crawlkit/jobs/NAME)."),
    )
    commit_interval: float = dataclasses.field(
        default=1.0,
        metadata=_doc(
            "Seconds between commits of a durable crawl; a hard kill redoes at most this much work."
        ),
    )
    job_name: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Name of a shared (Redis) crawl, its keys crawlkit:{NAME}:* (default: the spider's name)."
        ),
    )
    worker_id: str = dataclasses.field(
        default="",
        metadata=_doc(
            "This process's id in a shared crawl; names its output part, which a restart with "
            "the same id resumes (default: HOST-PID)."
        ),
    )
    lease_ttl: float = dataclasses.field(
        default=30.0,
        metadata=_doc(
            "Seconds a shared crawl's lease lasts unless renewed; the leases of a worker that "
            "died go back to the queue this long after its last renewal."
        ),
    )
    redis_retry_timeout: float = dataclasses.field(
        default=120.0,
        metadata=_doc("Seconds a worker waits for an unreachable Redis in mid-crawl before it stops."),
    )
    redis_seen_shards: int = dataclasses.field(
        default=65536,
        metadata=_doc(
            "Hashes the seen set of a new shared crawl is split into (a power of two). One stays "
            "compact (about 21 bytes a URL) up to Redis's hash-max-listpack-entries URLs (512 by "
            "default), so the default suits up to about 30 million URLs."
        ),
    )
    spiders_dir: str = dataclasses.field(
        default="spiders", metadata=_doc("Folder that `crawlkit crawl` and `list` search.")
    )
    output_format: str = dataclasses.field(
        default="",
        metadata=_doc(
            "Output format: 'jsonl', 'csv' or 'json' (a JSON array); empty: from the output "
            "file's extension, JSONL if it names none."
        ),
    )
    output_gzip: bool = dataclasses.field(
        default=False,
        metadata=_doc("Gzip the output; on by itself when the output file's name ends in .gz."),
    )
    max_items_per_file: int = dataclasses.field(
        default=0,
        metadata=_doc(
            "Split the output into numbered parts of at most this many items "
            "(out-0001.jsonl, out-0002.jsonl, ...); 0: one file."
        ),
    )
    csv_fields: list[str] = dataclasses.field(
        default_factory=list,
        metadata=_doc("CSV columns, in order; empty: the fields of the first item."),
    )
    stats_file: str = dataclasses.field(
        default="",
        metadata=_doc("Write the crawl's figures as JSON to this file at the end (empty: none)."),
    )
    progress: str = dataclasses.field(
        default="auto",
        metadata=_doc(
            "Live progress: 'rich' (a display on the terminal), 'log' (a line every "
            "progress_interval seconds), 'off', or 'auto' (rich when stderr is a terminal, else log)."
        ),
    )
    progress_interval: float = dataclasses.field(
        default=10.0, metadata=_doc("Seconds between two progress lines in 'log' mode.")
    )

    def __post_init__(self) -> None:
        positive = ("concurrency", "concurrency_per_host", "parse_batch_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"setting {name!r} must be at least 1, got {getattr(self, name)}")
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
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"setting {name!r} must not be negative, got {getattr(self, name)}")
        for name in ("connect_timeout", "read_timeout", "download_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"setting {name!r} must be greater than 0, got {getattr(self, name)}")
        _check_output_settings(self)
        _check_safety_settings(self)
        _check_frontier_settings(self)
        if self.commit_interval <= 0:
            raise ConfigError(f"setting 'commit_interval' must be greater than 0, got {self.commit_interval}")
        if self.parse_workers < -1:
            raise ConfigError(
                f"setting 'parse_workers' must be -1 (auto), 0 or more, got {self.parse_workers}"
            )
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"setting 'log_level' must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}"
            )
        for code in self.retry_http_codes:
            if not 100 <= code <= 599:
                raise ConfigError(f"setting 'retry_http_codes' holds {code}, not an HTTP status")
        _check_politeness_settings(self)

    @property
    def effective_parse_workers(self) -> int:
        return (os.cpu_count() or 1) if self.parse_workers == -1 else self.parse_workers

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


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
    if s.progress not in ("auto", "rich", "log", "off"):
        raise ConfigError(f"setting 'progress' must be auto, rich, log or off, got {s.progress!r}")
    if s.progress_interval <= 0:
        raise ConfigError(f"setting 'progress_interval' must be greater than 0, got {s.progress_interval}")


def _check_safety_settings(s: Settings) -> None:
    names = ("max_memory_mb", "max_inflight_bytes", "parse_worker_max_tasks", "parse_timeout")
    for name in (*names, "loop_stall_warning"):
        if getattr(s, name) < 0:
            raise ConfigError(f"setting {name!r} must not be negative, got {getattr(s, name)}")


def _check_politeness_settings(s: Settings) -> None:
    from .hostpolicy import parse_host_rules  # here: hostpolicy needs the frontier package

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


_HINTS = typing.get_type_hints(Settings)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp)


def _coerce(key: str, value: Any, source: str, from_text: bool) -> Any:
    """Check one value; text from the environment or the command line is converted first."""
    tp = _HINTS[key]
    origin = typing.get_origin(tp)
    where = f"setting {key!r} (from {source})"
    if from_text and isinstance(value, str) and tp is not str:
        value = _parse_text(key, value, tp, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        for item in value:
            if not isinstance(item, item_tp) or isinstance(item, bool):
                raise ConfigError(f"{where} must be a list of {_type_name(item_tp)}, got {value!r}")
        return list(value)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a table/dict, got {value!r}")
        value_cls = typing.get_origin(value_tp) or value_tp  # dict[str, Any] checks as dict
        for k, v in value.items():
            if not isinstance(k, key_tp) or not isinstance(v, value_cls):
                raise ConfigError(
                    f"{where} must map {_type_name(key_tp)} to {_type_name(value_tp)}, got {k!r}: {v!r}"
                )
        return dict(value)
    raise AssertionError(f"unhandled setting type {tp!r}")  # pragma: no cover


def _parse_text(key: str, text: str, tp: Any, where: str) -> Any:
    text = text.strip()
    if tp is bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {text!r}") from None
    origin = typing.get_origin(tp)
    if text.startswith(("[", "{")):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{where} is not valid JSON: {exc}") from None
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if item_tp is int:
            try:
                return [int(p) for p in parts]
            except ValueError:
                raise ConfigError(
                    f"{where} must be a comma-separated list of integers, got {text!r}"
                ) from None
        return parts
    raise ConfigError(f"{where} must be given as JSON, got {text!r}")


def _unknown(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, Settings.field_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown setting {key!r} (from {source}){hint}")


def _apply(values: dict[str, Any], layer: Mapping[str, Any], source: str, *, from_text: bool = False) -> None:
    for raw_key, value in layer.items():
        key = raw_key.replace("-", "_").lower()
        if key not in _HINTS:
            raise _unknown(raw_key, source)
        values[key] = _coerce(key, value, source, from_text)


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.crawlkit]`` table of a pyproject.toml (empty if there is none)."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("crawlkit", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.crawlkit] in {path} must be a table")
    return table


def env_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``CRAWLKIT_*`` variables, keyed by setting name."""
    return {
        k[len("CRAWLKIT_") :].lower(): v
        for k, v in environ.items()
        if k.startswith("CRAWLKIT_") and len(k) > len("CRAWLKIT_")
    }


def load_settings(
    *,
    pyproject: Path | None = None,
    spider_settings: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings from every layer, lowest precedence first."""
    values: dict[str, Any] = {}
    if pyproject is not None:
        _apply(values, read_pyproject(pyproject), f"[tool.crawlkit] in {pyproject}")
    if spider_settings:
        _apply(values, spider_settings, "the spider's custom_settings")
    environment = env_settings(os.environ if environ is None else environ)
    _apply(values, environment, "the environment", from_text=True)
    if overrides:
        _apply(values, overrides, "the command line", from_text=True)
    return Settings(**values)


def settings_reference() -> str:
    """A Markdown table of every setting: name, type, default, meaning."""
    rows = ["| setting | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        else:
            default = f.default_factory()  # type: ignore[operator]
        shown = orjson.dumps(default).decode() if not isinstance(default, str) else repr(default)
        hint = _HINTS[f.name]
        type_name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
        rows.append(f"| `{f.name}` | {type_name} | `{shown}` | {f.metadata.get('doc', '')} |")
    return "\n".join(rows)
