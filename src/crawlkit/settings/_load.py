"""Where settings come from, lowest precedence first, and how text becomes a typed value.

Defaults < ``[tool.crawlkit]`` in ``pyproject.toml`` < the spider's ``custom_settings`` <
``CRAWLKIT_*`` environment variables < ``-s KEY=VALUE`` on the command line. Every key is checked:
an unknown key or a value of the wrong type is a :class:`ConfigError` that names the key and where
it came from. The one exception is an unknown name in the environment: other tools share the
``CRAWLKIT_`` prefix (a wrapper's ``CRAWLKIT_BIN``), so it is logged as a warning and skipped.
Scrapy's names (``CONCURRENT_REQUESTS``) are answered in every layer by ``_scrapy``: taken under
crawlkit's name with a warning that names it, or refused with what to do instead.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError
from ._schema import Settings
from ._scrapy import CONVERTED_NAMES, scrapy_setting

__all__ = ["env_settings", "load_settings", "read_pyproject"]

_HINTS = typing.get_type_hints(Settings)

log = logging.getLogger("crawlkit.settings")


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
        item_cls = typing.get_origin(item_tp) or item_tp  # list[dict[str, Any]] checks as dict
        for item in value:
            if not isinstance(item, item_cls) or isinstance(item, bool):
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
    # Match as the key is read (lowercase, underscores), so that CONCURENCY suggests concurrency.
    close = difflib.get_close_matches(key.replace("-", "_").lower(), Settings.field_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown setting {key!r} (from {source}){hint}")


# Warnings already given: the CLI reads the project's layers more than once (to find the spider,
# then to run it), and a habit deserves one line, not one per read.
_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.warning("%s", message)


def _apply(
    values: dict[str, Any],
    layer: Mapping[str, Any],
    source: str,
    *,
    from_text: bool = False,
    environment: bool = False,
) -> None:
    """Check and store one layer; in ``environment``, names crawlkit does not know are skipped."""
    for raw_key, value in layer.items():
        key = raw_key.replace("-", "_").lower()
        # EXTENSIONS is Scrapy's name and, lowercased, crawlkit's: a priority mapping is Scrapy's.
        if key in _HINTS and raw_key not in CONVERTED_NAMES:
            values[key] = _coerce(key, value, source, from_text)
            continue
        shown = f"CRAWLKIT_{raw_key.upper()}" if environment else raw_key
        try:
            answer = scrapy_setting(raw_key, value, source, _HINTS)
            if answer is None:
                raise _unknown(raw_key, source)
        except ConfigError as exc:
            if not environment:
                raise
            # A variable set for something else (a wrapper script's CRAWLKIT_BIN) must not stop
            # every crawl; a typo is still shown. Names given on purpose (flags, pyproject) stay strict.
            log.warning("ignoring %s: %s", shown, exc)
            continue
        if answer.ignored_because:
            _say_once(f"ignoring Scrapy's {shown} (from {source}): {answer.ignored_because}")
        for name, converted in answer.values.items():
            values[name] = _coerce(name, converted, source, from_text)
            _say_once(f"{shown} is Scrapy's name (from {source}): using {name}={values[name]!r}")


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
    _apply(values, environment, "the environment", from_text=True, environment=True)
    if overrides:
        _apply(values, overrides, "the command line", from_text=True)
    return Settings(**values)
