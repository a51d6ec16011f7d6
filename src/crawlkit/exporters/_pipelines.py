"""Item pipelines: per-item processing in the main process, between a callback and the output.

A pipeline is a class (instantiated once per crawl, with no arguments) or any object with
``process_item(item, spider)``, sync or async. It returns the item, possibly changed, to pass it on;
returning ``None`` or raising :class:`DropItem` drops it. Optional hooks: ``open_spider(spider)``
and ``close_spider(spider)``, sync or async.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Protocol, runtime_checkable

from ..errors import ConfigError, DropItem, PipelineError
from ..guards import running
from ..spider import Spider, import_object

__all__ = ["ItemPipeline", "PipelineChain", "load_pipelines"]

log = logging.getLogger("crawlkit.pipelines")


@runtime_checkable
class ItemPipeline(Protocol):
    def process_item(self, item: Any, spider: Spider) -> Any: ...


def load_pipelines(paths: list[str]) -> list[Any]:
    """Import and instantiate the configured pipelines."""
    pipelines = []
    for path in paths:
        obj = import_object(path, "pipeline")
        if inspect.isclass(obj):
            obj = obj()
        if not callable(getattr(obj, "process_item", None)):
            raise ConfigError(f"pipeline {path!r} has no process_item(item, spider) method")
        pipelines.append(obj)
    return pipelines


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class PipelineChain:
    """Runs every item through the pipelines, in order."""

    def __init__(self, pipelines: list[Any], spider: Spider) -> None:
        self.pipelines = pipelines
        self.spider = spider

    def __bool__(self) -> bool:
        return bool(self.pipelines)

    async def open(self) -> None:
        for p in self.pipelines:
            hook = getattr(p, "open_spider", None)
            if hook is not None:
                await _maybe_await(hook(self.spider))

    async def close(self) -> None:
        for p in self.pipelines:
            hook = getattr(p, "close_spider", None)
            if hook is not None:
                try:
                    await _maybe_await(hook(self.spider))
                except Exception:
                    log.exception("pipeline %s failed while closing", type(p).__name__)

    async def process(self, item: Any) -> Any:
        """The item after every pipeline; ``None`` if one dropped it.

        Raises :class:`PipelineError` when a pipeline fails with anything but ``DropItem``.
        """
        for p in self.pipelines:
            try:
                with running(f"pipeline {_name(p)}"):  # the watchdog names a pipeline that blocks
                    item = await _maybe_await(p.process_item(item, self.spider))
            except DropItem as exc:
                log.debug("item dropped by %s: %s", type(p).__name__, exc)
                return None
            except Exception as exc:
                raise PipelineError(
                    f"pipeline {type(p).__name__} raised {type(exc).__name__}: {exc}"
                ) from exc
            if item is None:
                return None
        return item


def _name(pipeline: Any) -> str:
    cls = type(pipeline)
    return f"{cls.__module__}:{cls.__qualname__}"
