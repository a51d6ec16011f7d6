"""The exception hierarchy.

Every failure crawlkit reports derives from :class:`CrawlkitError`. User code steers the
crawl with the :class:`CrawlControl` family, which is never logged as a failure::

    Exception
    ├── CrawlkitError
    │   ├── ConfigError                 settings, command line (exit 2)
    │   ├── SpiderError                 a spider that cannot be found or used (exit 2)
    │   ├── FetchError                  no usable response; ``reason`` is the summary's key
    │   │   ├── TransportError          no response at all (retried)
    │   │   │   ├── ConnectError
    │   │   │   ├── FetchTimeout
    │   │   │   │   └── RenderTimeout   a render's deadline passed
    │   │   │   ├── BrowserCrashed      the browser died during a render
    │   │   │   └── ProxyError          the proxy failed, not the site (another proxy is tried)
    │   │   ├── RenderError             a render step or a page script failed (not retried)
    │   │   ├── RedirectError
    │   │   ├── RedirectFiltered        a link not followed, not a failure
    │   │   ├── TLSError
    │   │   ├── ResponseTooLarge
    │   │   ├── HTTPStatusError
    │   │   ├── Blocked                 the site saw through the identity (a challenge, a 403)
    │   │   ├── MiddlewareError         a downloader middleware raised
    │   │   ├── NotCached               offline, and the HTTP cache has no answer (not retried)
    │   │   └── RetriesExhausted        the last attempt's error is its ``__cause__``
    │   ├── ParseError                  a callback raised
    │   │   ├── BodyTooLarge            the body inflated past max_response_size
    │   │   ├── UndecodableBody         a corrupt body or an unknown Content-Encoding
    │   │   └── ParserCrashed
    │   │       └── ParseTimeout
    │   ├── NotTextError                also a TypeError: text asked of a binary response
    │   ├── PipelineError
    │   └── StorageError                what the crawl writes cannot be written (exit 5)
    │       ├── ExportError             the output
    │       └── FrontierError           the durable frontier's database
    │           └── CommitError         a shared (Redis) crawl's commit
    └── CrawlControl                    raised by user code to steer the crawl
        ├── DropItem
        ├── IgnoreRequest
        └── CloseSpider

All exceptions pickle cleanly: parse errors travel back from the parser pool's worker
processes, so every class keeps its constructor arguments in ``args``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Blocked",
    "BodyTooLarge",
    "BrowserCrashed",
    "CloseSpider",
    "CommitError",
    "ConfigError",
    "ConnectError",
    "CrawlControl",
    "CrawlkitError",
    "DropItem",
    "ExportError",
    "FetchError",
    "FetchTimeout",
    "FrontierError",
    "HTTPStatusError",
    "IgnoreRequest",
    "MiddlewareError",
    "NotCached",
    "NotTextError",
    "ParseError",
    "ParseTimeout",
    "ParserCrashed",
    "PipelineError",
    "ProxyError",
    "RedirectError",
    "RedirectFiltered",
    "RenderError",
    "RenderTimeout",
    "ResponseTooLarge",
    "RetriesExhausted",
    "SpiderError",
    "StorageError",
    "TLSError",
    "TransportError",
    "UndecodableBody",
]


class CrawlkitError(Exception):
    """Root of every failure crawlkit reports."""


class ConfigError(CrawlkitError):
    """Invalid settings or command-line usage. Raised while settings load; the CLI exits 2."""


class SpiderError(CrawlkitError):
    """A spider that cannot be found, imported or used. Raised by the loader; the CLI exits 2."""


class FetchError(CrawlkitError):
    """A request that did not produce a usable response. Raised only by the fetch layer.

    ``url`` names the request that failed; ``reason`` is the short key that the summary counts
    failures under (``connect``, ``timeout``, ``http_503``, ...).
    """

    reason = "fetch"

    def __init__(self, message: str, url: str = "") -> None:
        super().__init__(message, url)
        self.url = url

    def __str__(self) -> str:
        return str(self.args[0])


class TransportError(FetchError):
    """No response arrived at all. Retried by default."""

    reason = "transport"


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS failure, TLS failure)."""

    reason = "connect"


class FetchTimeout(TransportError):
    """The connect, read or total timeout passed."""

    reason = "timeout"


class RenderTimeout(FetchTimeout):
    """A render passed its deadline (``render_timeout``): navigation, steps and waits together."""

    reason = "render_timeout"


class BrowserCrashed(TransportError):
    """The browser (or the page's renderer) died during a render; a new one serves the next."""

    reason = "browser_crashed"


class ProxyError(TransportError):
    """The proxy failed, not the site: its port refused, a 407, a failed CONNECT, its own 5xx.

    Counted against the proxy; the request goes again through another proxy, using none of its
    retries (``docs/identities.md``). ``detail`` says what failed (``socks_auth``...), when known.
    """

    reason = "proxy_error"

    def __init__(self, message: str, url: str = "", *, detail: str = "proxy_connect") -> None:
        super().__init__(message, url)
        # The classifier's reason (proxy_connect, proxy_407, proxy_socks, ...) when no aiohttp
        # exception under it says which: the impersonating fetcher's and SOCKS failures.
        self.detail = detail


class RenderError(FetchError):
    """A render could not be done: a step failed, a page script threw, the page is a download.

    Not retried: the same page does the same again.
    """

    reason = "render"


class ProtocolError(FetchError):
    """The response's head broke HTTP (too many or too long headers, a bad status line).

    Not retried: the same server sends the same head again.
    """

    reason = "protocol"


class RedirectError(FetchError):
    """Too many redirects, or a redirect loop. Not retried."""

    reason = "redirects"


class RedirectFiltered(FetchError):
    """A redirect led where the crawl does not go (offsite, robots.txt, not http). Not retried.

    Counted as a link not followed, not as a failure: ``reason`` is ``offsite_redirect``,
    ``robots_redirect``, ``scheme_redirect``, ... and ``target`` is where the redirect pointed.
    """

    def __init__(
        self, message: str, url: str = "", reason: str = "redirect_filtered", target: str = ""
    ) -> None:
        Exception.__init__(self, message, url, reason, target)
        self.url = url
        self.target = target
        self._reason = reason

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self._reason


class TLSError(FetchError):
    """The server's TLS certificate did not verify, or the TLS handshake failed. Not retried."""

    reason = "tls"


class ResponseTooLarge(FetchError):
    """The body passed ``max_response_size``. Not retried: the same server will send it again."""

    reason = "too_large"


class HTTPStatusError(FetchError):
    """A response whose status the spider does not handle. Retried only for ``retry_http_codes``.

    ``retry_after`` is the delay in seconds that the server asked for, if it sent Retry-After.
    """

    def __init__(
        self, message: str, url: str = "", status: int = 0, retry_after: float | None = None
    ) -> None:
        Exception.__init__(self, message, url, status, retry_after)
        self.url = url
        self.status = status
        self.retry_after = retry_after

    @property
    def reason(self) -> str:  # type: ignore[override]
        return f"http_{self.status}"


class NotCached(FetchError):
    """``--offline``, and the HTTP cache holds no answer for the request: it fails, not retried."""

    reason = "not_cached"


class Blocked(FetchError):
    """The site answered with a block: a challenge or CAPTCHA page, a 401/403, a vendor's header.

    ``status`` is the answer's status; ``rule`` names what told it (``cloudflare``,
    ``status_403``, a spider rule's name). A request fails with it once its session rotations
    (``max_session_rotations``) are used up, or at once when there is no session to rotate.
    """

    reason = "blocked"

    def __init__(self, message: str, url: str = "", status: int = 0, rule: str = "") -> None:
        Exception.__init__(self, message, url, status, rule)
        self.url = url
        self.status = status
        self.rule = rule


class MiddlewareError(FetchError):
    """A downloader middleware raised: the request fails (not retried), the crawl goes on."""

    reason = "middleware_error"


class RetriesExhausted(FetchError):
    """Every attempt failed; ``last_reason`` is the reason of the final one.

    A request that fails for good after retries fails with this, its ``__cause__`` the last
    attempt's error; ``reason`` is that error's, so the summary counts it under the same key.
    """

    def __init__(self, message: str, url: str = "", attempts: int = 0, last_reason: str = "") -> None:
        Exception.__init__(self, message, url, attempts, last_reason)
        self.url = url
        self.attempts = attempts
        self.last_reason = last_reason

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self.last_reason or "retries_exhausted"


class ParseError(CrawlkitError):
    """A spider callback raised. ``worker_traceback`` is the traceback text from the worker.

    ``reason`` is the key the summary counts the failed page under. ``kind`` names the callback and
    the exception's type (``"Shop.parse raised KeyError"``; empty when no callback raised): one bug
    fails many pages, and the log shows each kind's first tracebacks in full, then one line a page.
    """

    reason = "callback_error"

    def __init__(self, message: str, url: str = "", worker_traceback: str = "", kind: str = "") -> None:
        super().__init__(message, url, worker_traceback, kind)
        self.url = url
        self.worker_traceback = worker_traceback
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[0])


class BodyTooLarge(ParseError):
    """The body inflated past ``max_response_size`` in the parser worker (a compression bomb)."""

    reason = "too_large"


class UndecodableBody(ParseError):
    """The body could not be decoded: corrupt compressed data, or an unknown Content-Encoding."""

    reason = "undecodable"


class ParserCrashed(ParseError):
    """The parser worker process died while handling this response (segfault, ``os._exit``)."""

    reason = "parser_crashed"


class ParseTimeout(ParserCrashed):
    """The callback ran past ``parse_timeout``: its worker was killed and replaced."""

    reason = "parse_timeout"


class NotTextError(CrawlkitError, TypeError):
    """``Response.text`` or ``css()`` on a binary response (an image, a PDF): read ``body``."""


class PipelineError(CrawlkitError):
    """An item pipeline raised something other than :class:`DropItem`."""


class StorageError(CrawlkitError):
    """What the crawl writes (its output, its frontier's database) cannot be written.

    Stops the crawl at once: what the last checkpoint committed is kept, and the same command
    resumes from there once the cause is fixed. The ``crawlkit`` command exits with code 5.
    """


class ExportError(StorageError):
    """The output cannot be written. Stops the crawl: going on would lose items."""


class FrontierError(StorageError):
    """The durable frontier's database cannot be written (disk full, I/O error, file too large).

    It stops the crawl like an output error: what the last checkpoint committed is kept, and the
    same command resumes from there once the cause is fixed.
    """


class CommitError(FrontierError):
    """A shared (Redis) crawl's commit cannot be recorded: Redis stayed unreachable, this
    worker's leases were taken back, or the job's state is gone. It stops this worker; what it
    wrote since its last commit is not part of the output and is crawled again.
    """


class CrawlControl(Exception):
    """Root of the exceptions that user code raises to steer the crawl."""


class DropItem(CrawlControl):
    """Raised by a pipeline to drop an item; counted, not logged as a failure."""


class IgnoreRequest(CrawlControl):
    """Raised by a callback to say that a response yields nothing; counted, not a failure."""


class CloseSpider(CrawlControl):
    """Raised by a callback or a pipeline to stop the crawl gracefully."""

    def __init__(self, reason: str = "close_spider", *args: Any) -> None:
        super().__init__(reason, *args)
        self.reason = reason
