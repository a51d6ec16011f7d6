"""A rendered request's way through the downloader: the browser in place of the HTTP client.

``RenderRoute.fetch(request, ...)`` answers as ``Fetcher.fetch`` does, with a ``Fetched`` or a
``FetchError``, so that the politeness gate before it and the classifier and the retry policy
after it are the same for both. What it adds:

- the ``BrowserFetcher`` is made on the first rendered request (Playwright is imported then, and
  Chromium launched), and closed with the crawl;
- the cookies of the request's jar (the crawl's, or ``meta["cookiejar"]``'s) for the URL go into
  the render, and cookies the page set come back to that jar; each jar renders in a browser
  context of its own, so that two jars never share cookies there either;
- credential headers are not handed to the browser: it would send them with every request of the
  page, to every origin the page loads from (use cookies, or a plain request);
- the rendered DOM, UTF-8, is the body (it takes its room in the in-flight byte budget); the
  ``evaluate`` steps' results go to ``response.meta["render"]``; screenshots and PDFs are written
  to a folder beside the output, named by the request's fingerprint (a page done again after a
  crash writes the same file again), their paths in ``meta["screenshot"]`` and ``meta["pdf"]``;
- a page that ended somewhere else (a redirect, a script's navigation) passes the same check as a
  redirect hop (offsite, robots.txt): if it fails, the request ends unparsed.

``RenderSetup`` is for a caller other than a crawl (the fetch API of ``crawlkit serve``): a
running browser to share, a check on every request a page makes and the proxy its contexts go
through (``BrowserFetcher``'s ``request_check`` and ``via``), and screenshots kept in memory
(``meta["screenshot_data"]``, ``meta["pdf_data"]``) rather than written.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import Morsel
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from ..errors import ConfigError, RedirectFiltered, RenderError, ResponseTooLarge
from ..guards import is_secret_header, redact_text
from ..http import RenderPlan, Request
from ._budget import ByteBudget

if TYPE_CHECKING:
    from aiohttp.abc import AbstractCookieJar

    from ..core import CrawlStats
    from ..settings import Settings
    from ._browser import BrowserFetcher, RequestCheck
    from ._browser_launch import BrowserLauncher
    from ._client import Fetched, HopCheck

__all__ = ["RenderRoute", "RenderSetup"]

log = logging.getLogger("crawlkit.browser")


@dataclass(frozen=True, slots=True)
class RenderSetup:
    """How a downloader's browser is made, beyond the settings (see the module's docs)."""

    launcher: BrowserLauncher | None = None  # a running browser to share; None: its own
    request_check: RequestCheck | None = None
    via: str | None = None
    files_inline: bool = False
    launch_args: tuple[str, ...] = ()  # Chromium's flags, for a browser of its own


class RenderRoute:
    """Renders requests in one crawl's browser; ``close()`` ends the browser if one started."""

    def __init__(
        self,
        settings: Settings,
        budget: ByteBudget,
        stats: CrawlStats,
        files_dir: Path | None,
        setup: RenderSetup | None = None,
    ) -> None:
        self.setup = setup or RenderSetup()
        self.settings = settings
        self.budget = budget
        self.stats = stats
        self.files_dir = files_dir  # screenshots and PDFs; None: not written
        self.browser: BrowserFetcher | None = None
        self._no_browser_logged = False
        # Headers every render sends: the settings' own, but no credentials (see the module docs).
        self._headers = {
            k: v
            for k, v in settings.default_headers.items()
            if not is_secret_header(k) and k.lower() not in ("user-agent", "accept-encoding")
        }

    def _browser(self) -> BrowserFetcher:
        browser = self.browser
        if browser is None:
            from ._browser import BrowserConfig, BrowserFetcher  # Playwright loads on first render

            config = BrowserConfig.from_settings(self.settings, user_agent=self.settings.user_agent)
            setup = self.setup
            browser = self.browser = BrowserFetcher(
                config,
                setup.launcher,
                request_check=setup.request_check,
                via=setup.via,
                launch_args=setup.launch_args,
            )
            # The summary reads the browser's own counters: nothing is counted twice.
            self.stats.render_blocked = browser.stats.blocked
            self.stats.browser_restarts = browser.stats.restarts
        return browser

    def memory_bytes(self) -> int:
        """What the browser holds (PSS), for the crawl's memory ceiling; 0 before it starts."""
        return self.browser.memory_bytes() if self.browser is not None else 0

    async def close(self) -> None:
        if self.browser is not None:
            await self.browser.close()

    async def fetch(
        self,
        request: Request,
        plan_data: Mapping[str, Any],
        jar: AbstractCookieJar,
        hop_check: HopCheck,
        *,
        proxy: str | None = None,
        session: str | None = None,
        identity_headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """Render ``request``; raise a ``FetchError`` (``RenderTimeout``, ...) if no page came.

        ``proxy``, ``session`` and ``identity_headers`` are the request's session's, when it has
        one: the browser context is then that session's, its cookies those of ``jar``."""
        from ._client import Fetched

        url = request.url
        plan = RenderPlan.from_data(plan_data)  # checked when the request was made
        if request.cookies:
            jar.update_cookies(request.cookies, URL(url))
        sent = {name: morsel.value for name, morsel in jar.filter_cookies(URL(url)).items()}
        own = {k: v for k, v in (request.headers or {}).items() if not is_secret_header(k)}
        headers = {**self._headers, **(identity_headers or {}), **own}
        jar_key = request.meta.get("cookiejar")
        if session is None and jar_key is not None:
            session = f"cookiejar:{jar_key!r}"
        try:
            rendered = await self._browser().render(
                url,
                plan,
                headers=headers or None,
                cookies=sent or None,
                proxy=proxy,
                session=session,
                want_cookies=True,
            )
        except ConfigError as exc:
            # No Playwright, or no Chromium: every render fails alike, so the reason is said once.
            if not self._no_browser_logged:
                self._no_browser_logged = True
                log.error("cannot render: %s", exc)
            raise RenderError(f"no browser: {exc}", url) from exc
        self.stats.renders += 1
        _into_jar(jar, rendered.cookies, sent)
        limit = self.settings.max_response_size
        if limit and len(rendered.body) > limit:
            raise ResponseTooLarge(f"the rendered page has {len(rendered.body)} bytes, over {limit}", url)
        if rendered.url != url:
            reason = await hop_check(rendered.url)
            if reason is not None:
                target = redact_text(rendered.url, 2000)
                message = f"the page ended at {target}, not followed ({reason})"
                raise RedirectFiltered(message, url, reason, target)
        meta: dict[str, Any] = {**request.meta, "render": rendered.results}
        if rendered.refused:
            meta["render_refused"] = rendered.refused
        for kind, data, suffix in (("screenshot", rendered.screenshot, "png"), ("pdf", rendered.pdf, "pdf")):
            if data is not None and self.setup.files_inline:
                meta[f"{kind}_data"] = data
            elif data is not None and self.files_dir is not None:
                path = self.files_dir / f"{request.fingerprint.hex()}.{suffix}"
                await asyncio.to_thread(_write, path, data)
                meta[kind] = str(path)
        # A new dict: a meta given to several requests is one object, in the worker that made them.
        request.meta = meta
        hold = self.budget.hold()
        try:
            await hold.grow(len(rendered.body))
        except BaseException:
            hold.release()
            raise
        hold.done_reading()
        return Fetched(
            url=rendered.url,
            status=rendered.status,
            headers=rendered.headers,
            body=rendered.body,
            content_encoding="",
            latency=rendered.elapsed,
            hold=hold,
        )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)  # a reader never sees half a file, nor does a resumed crawl


def _into_jar(jar: AbstractCookieJar, cookies: list[dict[str, Any]], sent: Mapping[str, str]) -> None:
    """The cookies the page set (Playwright's records) into the jar, with their scope.

    Those the render was given and that came back unchanged are left alone: the jar holds them
    already, with their own scope (which the browser may have made narrower).
    """
    for cookie in cookies:
        name, value = str(cookie.get("name", "")), str(cookie.get("value", ""))
        if not name or sent.get(name) == value:
            continue
        domain = str(cookie.get("domain", ""))
        host = domain.lstrip(".")
        if not host:
            continue
        path = str(cookie.get("path") or "/")
        secure = bool(cookie.get("secure"))
        morsel: Morsel[str] = Morsel()
        morsel.set(name, value, value)
        morsel["path"] = path
        if domain.startswith("."):  # a domain cookie; without the dot, for its host only
            morsel["domain"] = host
        expires = cookie.get("expires", -1)
        if isinstance(expires, int | float) and expires > 0:
            morsel["expires"] = email.utils.formatdate(expires, usegmt=True)
        if secure:
            morsel["secure"] = True
        if cookie.get("httpOnly"):
            morsel["httponly"] = True
        scheme = "https" if secure else "http"
        jar.update_cookies({name: morsel}, URL.build(scheme=scheme, host=host, path=path))
