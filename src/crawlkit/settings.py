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
        default=16, metadata=_doc("Requests in flight at once, across all hosts.")
    )
    concurrency_per_host: int = dataclasses.field(
        default=8, metadata=_doc("Requests in flight at once to one host.")
    )
    download_delay: float = dataclasses.field(
        default=0.0, metadata=_doc("Seconds between requests to one host (0: none).")
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
    log_level: str = dataclasses.field(default="INFO", metadata=_doc("DEBUG, INFO, WARNING or ERROR."))
    frontier: str = dataclasses.field(
        default="sqlite",
        metadata=_doc(
            "Where the crawl's queue lives: 'sqlite' (durable, resumable: the default) or "
            "'memory' (lost when the process ends)."
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
    spiders_dir: str = dataclasses.field(
        default="spiders", metadata=_doc("Folder that `crawlkit crawl` and `list` search.")
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
        if self.frontier not in ("sqlite", "memory"):
            raise ConfigError(f"setting 'frontier' must be 'sqlite' or 'memory', got {self.frontier!r}")
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

    @property
    def effective_parse_workers(self) -> int:
        return (os.cpu_count() or 1) if self.parse_workers == -1 else self.parse_workers

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


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
        for k, v in value.items():
            if not isinstance(k, key_tp) or not isinstance(v, value_tp):
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
