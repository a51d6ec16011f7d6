"""Crawl events, and the objects that hook into a crawl: middlewares and extensions.

``Crawler`` is what a hook's ``from_crawler(crawler)`` gets: ``settings``, ``stats``, ``signals``
and ``spider``. ``CrawlSignals`` holds the handlers of each event; the engine sends an event only
when something is connected to it, so an event nobody listens to costs nothing.

Events and the arguments their handlers are called with (positional):

* ``item_scraped(item)``: an item was written (after the pipelines, as it was written);
* ``item_dropped(item, reason)``: a pipeline dropped it (``reason``: ``"dropped"``);
* ``request_failed(request, failure)``: a request failed for good (a ``crawlkit.Failure``);
* ``spider_idle()``: nothing is pending or in flight; the crawl ends after the handlers unless
  one of them scheduled requests (``crawler.schedule(request)``);
* ``spider_closed(reason)``: the crawl is over (``reason``: the summary's "stopped because").

Handlers run in the main process, in the event loop, sync or async (awaited in turn). One that
raises is logged and counted (``hook_errors`` in the summary); the crawl goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from ..errors import ConfigError
from ..guards import running
from ..spider import import_object

if TYPE_CHECKING:
    from ..fetch import CaptchaSolver, Classification
    from ..http import Request, Response
    from ..settings import Settings
    from ..spider import Spider
    from ._stats import CrawlStats

__all__ = ["EVENTS", "CrawlSignals", "Crawler", "build_component", "captcha_solver"]

log = logging.getLogger("crawlkit.hooks")

EVENTS = ("item_scraped", "item_dropped", "request_failed", "spider_idle", "spider_closed")

Handler = Callable[..., Any]


class CrawlSignals:
    """Handlers per event: ``connect(handler, "item_scraped")``, ``disconnect(...)``."""

    def __init__(self, stats: CrawlStats) -> None:
        self._stats = stats
        self._handlers: dict[str, list[Handler]] = {event: [] for event in EVENTS}

    def connect(self, handler: Handler, signal: str) -> None:
        self._handlers_of(signal).append(handler)

    def disconnect(self, handler: Handler, signal: str) -> None:
        handlers = self._handlers_of(signal)
        if handler in handlers:
            handlers.remove(handler)

    def has(self, signal: str) -> bool:
        """Whether anything listens to ``signal`` (the engine sends it only then)."""
        return bool(self._handlers[signal])

    async def send(self, signal: str, *args: Any) -> None:
        """Call every handler of ``signal``; one that raises is logged and counted, never raised."""
        for handler in list(self._handlers[signal]):
            name = _name(handler)
            try:
                with running(f"{signal} handler {name}"):  # the watchdog names one that blocks
                    result = handler(*args)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s handler %s raised; the crawl goes on", signal, name)
                self._stats.hook_errors[name] += 1

    def _handlers_of(self, signal: str) -> list[Handler]:
        handlers = self._handlers.get(signal)
        if handlers is None:
            raise ValueError(f"unknown crawl event {signal!r}; the events are: {', '.join(EVENTS)}")
        return handlers


class Crawler:
    """What middlewares and extensions are built with: ``Class.from_crawler(crawler)``."""

    def __init__(
        self,
        settings: Settings,
        stats: CrawlStats,
        spider: Spider,
        schedule: Callable[[Request], Awaitable[None]],
    ) -> None:
        self.settings = settings
        self.stats = stats
        self.spider = spider
        self.signals = CrawlSignals(stats)
        self._schedule = schedule

    async def schedule(self, request: Request) -> None:
        """Queue ``request`` in the frontier, deduplicated as a start request is."""
        await self._schedule(request)


def build_component(path: str, crawler: Crawler, kind: str) -> Any:
    """Import ``module:Class`` and build it: ``from_crawler(crawler)``, else ``Class(settings)``,
    else ``Class()``. ``kind`` (``middleware``, ``extension``) names it in errors."""
    cls: Any = import_object(path, kind)
    if not inspect.isclass(cls):
        return cls  # an instance, ready to use
    try:
        factory = getattr(cls, "from_crawler", None)
        if callable(factory):
            return factory(crawler)
        make: Callable[..., Any] = cls
        return make(crawler.settings) if _takes_an_argument(cls) else make()
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{kind} {path!r} could not be built: {type(exc).__name__}: {exc}") from exc


def _takes_an_argument(cls: type) -> bool:
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)


def _name(handler: Handler) -> str:
    owner = getattr(handler, "__self__", None)
    name = str(getattr(handler, "__qualname__", None) or getattr(handler, "__name__", repr(handler)))
    if owner is not None and "." not in name:
        return f"{type(owner).__name__}.{name}"
    return str(name)


def captcha_solver(settings: Settings, crawler: Crawler, spider: Spider) -> CaptchaSolver | None:
    """The crawl's CAPTCHA solver: the ``captcha_solver`` setting's object (its ``solve``), else
    the spider's ``solve_captcha`` method, else None. Sync or async; one that raises is logged
    and counted (``hook_errors``), and the page is handled as a block."""
    method: Callable[..., Any] | None
    name: str
    if settings.captcha_solver:
        solver = build_component(settings.captcha_solver, crawler, "captcha_solver")
        method = getattr(solver, "solve", None)
        if not callable(method):
            raise ConfigError(
                f"captcha_solver {settings.captcha_solver!r} has no solve(request, response, verdict) method"
            )
        name = f"{type(solver).__name__}.solve"
    else:
        method = getattr(spider, "solve_captcha", None)
        if method is None:
            return None
        name = f"{type(spider).__name__}.solve_captcha"
    stats = crawler.stats
    solve = method

    async def ask(request: Request, response: Response, verdict: Classification) -> Request | None:
        try:
            with running(name):  # the call only: the marker must not span an await
                answer = solve(request, response, verdict)
            if inspect.isawaitable(answer):
                answer = await answer
        except Exception:
            log.exception("%s raised on %s; handled as a block", name, request.url)
            stats.hook_errors[name] += 1
            return None
        return cast("Request | None", answer)

    return ask
