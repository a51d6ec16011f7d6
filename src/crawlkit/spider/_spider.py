"""The ``Spider`` base class users subclass.

A spider instance lives in the main process (``start_requests()``, ``opened()``, ``closed()``,
``state``) and another lives in each parser worker process, where callbacks run. Callbacks must not
rely on attributes that other callbacks change: what a callback needs travels with its request
(``meta``, ``cb_kwargs``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar

from ..guards import protect_loggers
from ..http import Request, Response
from ._sitemaps import sitemap_requests, start_sitemap_requests

__all__ = ["Spider"]

_WORKER_STATE_ERROR = (
    "spider.state is crawl-wide state and lives in the main process, but this callback runs in a "
    "parser worker process, where changes would be lost. Pass what a callback needs in "
    "Request(meta=...) or cb_kwargs, or use state in start_requests(), opened() or closed()."
)


class Spider:
    """Base class of every spider.

    Class attributes: ``name`` (how ``crawlkit crawl NAME`` finds it), ``start_urls``,
    ``allowed_domains`` (empty: any host; a domain allows its subdomains, on any port;
    ``"127.0.0.1:8080"`` allows that port only),
    ``custom_settings`` (setting overrides for this spider), ``handle_httpstatus_list``
    (non-2xx statuses to pass to callbacks instead of counting as failures) and ``item_type``
    (a pydantic model: every item is validated against it in the parser worker; an invalid one is
    logged with the field that failed, counted as ``invalid_item`` and not written).

    ``render = True`` renders every request in headless Chromium, unless it says ``render=False``
    (sitemaps never are); a request's own ``render=True``, ``wait_for`` or ``actions`` render it
    in any spider. See docs/rendering.md.

    Sitemaps: ``sitemap_urls`` (sitemaps, sitemap indexes, gzip or plain text, or robots.txt
    files whose ``Sitemap:`` lines to read), ``sitemap_follow_robots`` (also read the robots.txt
    of each start URL's site), ``sitemap_callback`` (the callback of the pages they list,
    ``parse`` by default) and ``sitemap_max_depth`` (how deep sitemap indexes may nest).

    Keyword arguments (``crawlkit crawl NAME -a key=value``) become instance attributes.

    ``self.logger`` is a ``logging.Logger`` named after the spider, in every process.

    Blocks (docs/identities.md): ``block_rules`` (the site's own, tried before the built-in
    rules: ``crawlkit.fetch.Rule`` objects or tables as in the ``block_rules`` setting),
    ``handle_blocked`` (pass blocked answers to callbacks instead of rotating the session), and
    ``solve_captcha(request, response, verdict)``, a coroutine run in the main process for each
    CAPTCHA page seen, which may return a request to send instead.
    """

    name: ClassVar[str] = ""
    start_urls: ClassVar[list[str]] = []
    allowed_domains: ClassVar[list[str]] = []
    custom_settings: ClassVar[dict[str, Any]] = {}
    handle_httpstatus_list: ClassVar[list[int]] = []
    item_type: ClassVar[type[Any] | None] = None
    sitemap_urls: ClassVar[list[str]] = []
    sitemap_follow_robots: ClassVar[bool] = False
    sitemap_callback: ClassVar[str] = "parse"
    sitemap_max_depth: ClassVar[int] = 3
    render: ClassVar[bool] = False
    block_rules: ClassVar[list[Any]] = []
    handle_blocked: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)
        self._state: dict[str, Any] | None = {}

    @property
    def state(self) -> dict[str, Any]:
        """A JSON-able dict for crawl-wide state; main process only (see the class docs)."""
        if self._state is None:
            raise RuntimeError(_WORKER_STATE_ERROR)
        return self._state

    @property
    def logger(self) -> logging.Logger:
        """A logger named after the spider, as Scrapy's; its records are redacted like crawlkit's.

        In a parser worker its lines reach the crawl's stderr in the main process's format, tagged
        ``NAME[worker PID]``.
        """
        logger: logging.Logger | None = self.__dict__.get("_logger")
        if logger is None:
            logger = logging.getLogger(self.name or type(self).__name__)
            # On the logger itself, not only on the CLI's handlers: a program that calls crawl()
            # with handlers of its own must not see a credential a callback logged.
            protect_loggers(logger.name)
            self.__dict__["_logger"] = logger
        return logger

    def start_requests(self) -> Iterable[Request] | AsyncIterator[Request]:
        """The first requests of the crawl; by default one per ``start_urls`` entry, then the sitemaps."""
        sitemaps = start_sitemap_requests(self)
        if not sitemaps:
            return (Request(url, dont_filter=True) for url in self.start_urls)
        return itertools.chain((Request(url, dont_filter=True) for url in self.start_urls), sitemaps)

    def _parse_sitemap(self, response: Response) -> Iterable[Request]:
        """The callback of sitemap requests: the pages and sitemaps it lists, parsed as a stream."""
        return sitemap_requests(self, response)

    def parse(self, response: Response) -> Iterable[Any] | None:
        """The default callback. Yield items (dicts, dataclasses) and ``Request``s."""
        raise NotImplementedError(
            f"{type(self).__name__}.parse() is not defined; define it or give each request a callback"
        )

    async def opened(self) -> None:
        """Called in the main process before the first request."""

    async def closed(self, reason: str) -> None:
        """Called in the main process after the crawl, with why it ended."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def detach_state(spider: Spider) -> None:
    """Make ``spider.state`` raise, as it does in a parser worker (internal to crawlkit).

    Crawl-wide state lives in the main process; a spider instance that runs callbacks
    elsewhere (a parser worker, ``crawlkit parse``, ``crawlkit.testing``) is detached from it,
    so that a callback which uses it fails with an error that says why.
    """
    spider._state = None
