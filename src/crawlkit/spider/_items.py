"""Checks on what callbacks yield: typed items (a pydantic ``item_type``) and callback names.

Both run in the parser worker, beside the callback, so that the CPU they cost stays off the event
loop and a mistake is reported with the page and the callback that made it.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from ..errors import SpiderError
from ._spider import Spider

__all__ = ["ItemValidator", "callback_names", "unknown_callback"]

# Methods of Spider that run in the main process, or are not callbacks at all.
_NOT_CALLBACKS = frozenset(name for name in vars(Spider) if name != "parse")


def callback_names(spider_cls: type[Spider]) -> list[str]:
    """The spider's methods that can serve as callbacks (public, defined by the spider)."""
    names = set()
    for klass in spider_cls.__mro__:
        if klass in (Spider, object):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in _NOT_CALLBACKS:
                continue
            if inspect.isfunction(value) or isinstance(value, staticmethod | classmethod):
                names.add(name)
    return sorted(names)


def unknown_callback(spider: Spider, name: str) -> str:
    """Why ``name`` cannot be a callback of ``spider``, and what can."""
    known = callback_names(type(spider))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(known) if known else "none (define parse)"
    return f"spider {type(spider).__name__} has no callback method {name!r}{hint} (its callbacks: {listed})"


class ItemValidator:
    """Validates items against a spider's ``item_type`` (a pydantic model), when it has one."""

    def __init__(self, spider: Spider) -> None:
        item_type = getattr(spider, "item_type", None)
        self.model: Any = item_type
        if item_type is None:
            return
        if not (inspect.isclass(item_type) and callable(getattr(item_type, "model_validate", None))):
            raise SpiderError(
                f"{type(spider).__name__}.item_type must be a pydantic model class (pydantic.BaseModel "
                f"subclass), got {item_type!r}; install it with: pip install 'crawlkit[pydantic]'"
            )

    def __bool__(self) -> bool:
        return self.model is not None

    def validate(self, item: Any) -> tuple[Any, str | None]:
        """The item as an instance of the model, or ``(None, why it is invalid)``."""
        model = self.model
        if isinstance(item, model):
            return item, None  # pydantic validated it when it was built
        try:
            if isinstance(item, dict):
                return model.model_validate(item), None
            return model.model_validate(item, from_attributes=True), None
        except Exception as exc:  # pydantic.ValidationError, without importing pydantic here
            errors = getattr(exc, "errors", None)
            if not callable(errors):
                raise
            return None, f"not a valid {model.__name__}: {_describe(errors())}"


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ())) or "(item)"
        text = f"{where}: {error.get('msg', 'invalid')}"
        if "input" in error and error.get("type") != "missing":
            text += f" (got {error['input']!r:.80})"
        parts.append(text)
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return "; ".join(parts)
