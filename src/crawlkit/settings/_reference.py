"""The settings reference: one Markdown table, generated from the schema."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import orjson

from ._schema import Settings

__all__ = ["settings_reference"]


def settings_reference() -> str:
    """A Markdown table of every setting: name, type, default, meaning."""
    rows = ["| setting | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        else:
            default = f.default_factory()  # type: ignore[operator]
        shown = orjson.dumps(default).decode() if not isinstance(default, str) else repr(default)
        hint = typing.get_type_hints(Settings)[f.name]
        type_name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
        rows.append(f"| `{f.name}` | {type_name} | `{shown}` | {f.metadata.get('doc', '')} |")
    return "\n".join(rows)
