"""The ``feeds`` setting: several outputs of one crawl, each a path with its own options.

Checked when the settings are built, so that a typo in a feed's options stops the crawl before
its first request (exit code 2), naming the feed. The exporters turn each feed into an output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

__all__ = ["FEED_OPTIONS", "check_feeds"]

# A feed's options, with what each must be. Format names are those of output_format.
FEED_OPTIONS: dict[str, str] = {
    "format": "jsonl, csv or json (empty: from the file's extension)",
    "gzip": "true or false (on by itself for a name ending in .gz)",
    "max_items_per_file": "an integer, 0 or more",
    "fields": "a list of field names",
    "overwrite": "true or false",
}


def check_feeds(feeds: Mapping[str, Any]) -> None:
    """Raise a ``ConfigError`` naming the first feed whose options are not crawlkit's."""
    for path, options in feeds.items():
        where = f"setting 'feeds', feed {path!r}"
        if not path.strip():
            raise ConfigError("setting 'feeds' has an empty path")
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}: its options must be a table/dict, got {options!r}")
        for name, value in options.items():
            if name not in FEED_OPTIONS:
                known = ", ".join(FEED_OPTIONS)
                raise ConfigError(f"{where}: unknown option {name!r} (a feed takes {known})")
            if not _fits(name, value):
                raise ConfigError(f"{where}: option {name!r} must be {FEED_OPTIONS[name]}, got {value!r}")


def _fits(name: str, value: Any) -> bool:
    if name == "format":
        return isinstance(value, str) and value.lower() in ("", "jsonl", "csv", "json")
    if name in ("gzip", "overwrite"):
        return isinstance(value, bool)
    if name == "max_items_per_file":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, list | tuple) and all(isinstance(f, str) for f in value)
