"""``crawl()``: run a spider from Python, the way the ``crawlkit crawl`` command does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .engine import Engine
from .export import Mode
from .settings import Settings, load_settings
from .spider import Spider
from .stats import CrawlStats

__all__ = ["crawl", "new_event_loop"]


def new_event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop where it is installed (faster I/O), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - depends on the platform
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


new_event_loop = new_event_loop_factory()


def resolve_settings(
    spider_cls: type[Spider], settings: Settings | Mapping[str, Any] | None
) -> Settings:
    if isinstance(settings, Settings):
        return settings
    return load_settings(
        pyproject=Path("pyproject.toml"),
        spider_settings=spider_cls.custom_settings,
        overrides=settings,
    )


def crawl(
    spider_cls: type[Spider],
    output: str | Path,
    *,
    settings: Settings | Mapping[str, Any] | None = None,
    mode: Mode = "overwrite",
    handle_signals: bool = True,
    **spider_kwargs: Any,
) -> CrawlStats:
    """Crawl with ``spider_cls`` and write its items as JSON lines to ``output``.

    ``settings`` is a :class:`Settings` or a mapping of overrides (applied above pyproject,
    the spider's ``custom_settings`` and the environment). Keyword arguments become spider
    attributes. Returns the crawl's statistics.
    """
    resolved = resolve_settings(spider_cls, settings)
    engine = Engine(
        spider_cls,
        resolved,
        Path(output),
        output_mode=mode,
        spider_kwargs=spider_kwargs,
        handle_signals=handle_signals,
    )
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(engine.run())


