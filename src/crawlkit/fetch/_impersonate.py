"""The impersonating HTTP client: curl_cffi, so the TLS and HTTP/2 handshake is a real browser's.

Some sites judge a client by its handshake (the ClientHello's ciphers, extensions and their order,
HTTP/2's SETTINGS) before they read a header. aiohttp's handshake is OpenSSL's, which no browser
sends; curl_cffi drives curl-impersonate, whose handshake is a copy of a named browser's
(``_targets.py`` chooses which). Everything else is crawlkit's, as with the aiohttp client, whose
interface this one has (``Downloader`` picks by the ``fetcher`` setting):

* redirects are followed here, hop by hop, each hop checked (curl follows none);
* cookies live in crawlkit's own bounded jars, the crawl's, one per ``meta["cookiejar"]`` or the
  session's (curl's cookie engine keeps nothing between requests);
* headers are the session's profile or the crawl's defaults, in their order (curl adds none);
* bodies arrive still Content-Encoded (curl decodes nothing) for the parser worker to inflate,
  streamed within the byte budget and stopped at ``max_response_size``;
* a proxy per hop with its credentials given to curl for the proxy only;
* curl's errors become crawlkit's ``FetchError`` types here, and nowhere else.

HTTP/2 is used where a TLS server offers it (ALPN), as browsers do; plain ``http://`` is
HTTP/1.1 (browsers never send curl's ``Upgrade: h2c``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, cast

import aiohttp
from curl_cffi import CurlECode, CurlHttpVersion, CurlOpt
from curl_cffi import requests as curl
from curl_cffi.requests import BrowserTypeLiteral
from curl_cffi.requests import exceptions as errors
from yarl import URL

from ..errors import (
    ConnectError,
    FetchError,
    FetchTimeout,
    ProtocolError,
    ProxyError,
    RedirectError,
    ResponseTooLarge,
    TLSError,
    TransportError,
)
from ..guards import is_secret_header, redact_headers
from ..http import (
    REDIRECT_STATUSES,
    Request,
    accept_encoding,
    is_binary_type,
    wire_url,
)
from ..settings import Settings
from ._budget import ByteBudget, Hold
from ._client import Fetched
from ._cookies import BoundedCookieJar, jar_state, restore_jar
from ._hops import HopCheck, checked_hop, redirect_hop
from ._identity import Route
from ._sentheaders import foreign_text, profile_first, userinfo_wins, with_defaults
from ._targets import target_for

__all__ = ["ImpersonateFetcher"]

_DRAIN_MAX = 64 * 1024  # an unwanted body this small is read, to keep the connection alive
_TUNNEL_STATUS = re.compile(r"CONNECT tunnel failed, response (\d{3})")  # curl's words for it
_SPARE_HANDLES = 4  # curl handles beyond `concurrency`: robots.txt is fetched beside the pages


class ImpersonateFetcher:
    """Fetches requests over one curl_cffi ``AsyncSession``; use as an async context manager."""

    def __init__(self, settings: Settings, budget: ByteBudget | None = None) -> None:
        self._settings = settings
        self.budget = budget if budget is not None else ByteBudget(settings.max_inflight_bytes)
        self._client: curl.AsyncSession[curl.Response] | None = None
        self._jars: dict[Any, BoundedCookieJar] = {}  # None: the crawl's own; else meta["cookiejar"]
        self._restored: dict[Any, list[dict[str, Any]]] = {}
        self._max_size = settings.max_response_size or None
        redact_headers(settings.redact_headers)
        credentials = {k: v for k, v in settings.default_headers.items() if is_secret_header(k)}
        self._credentials = credentials
        plain = {k: v for k, v in settings.default_headers.items() if k not in credentials}
        # The crawl's own headers, for requests without a session (a request's own win by name).
        self._defaults = {**plain, "User-Agent": settings.user_agent, "Accept-Encoding": accept_encoding()}
        # After a session's profile: what the profile does not set.
        self._session_defaults = {**plain, "Accept-Encoding": accept_encoding(), **credentials}

    async def __aenter__(self) -> ImpersonateFetcher:
        s = self._settings
        self._client = curl.AsyncSession(
            max_clients=s.concurrency + _SPARE_HANDLES,
            allow_redirects=False,
            default_headers=False,  # the profile's headers, not curl's copy of a browser's
            discard_cookies=True,  # crawlkit's jars keep cookies, curl's none
            trust_env=False,  # the identity step chose the proxy, environment included
            verify=s.verify_tls,
            timeout=s.download_timeout,  # made finer by the options below, applied after it
            curl_options={
                CurlOpt.CONNECTTIMEOUT_MS: int(s.connect_timeout * 1000),
                CurlOpt.TIMEOUT_MS: int(s.download_timeout * 1000),
                # No byte for read_timeout seconds: curl measures it as a speed below 1 B/s,
                # over whole seconds.
                CurlOpt.LOW_SPEED_LIMIT: 1,
                CurlOpt.LOW_SPEED_TIME: max(1, round(s.read_timeout)),
                # Applied after impersonation, which asks for HTTP/2 on plain http too (h2c).
                CurlOpt.HTTP_VERSION: CurlHttpVersion.V2TLS,
                CurlOpt.MAXREDIRS: 0,
            },
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The jars outlive the client: the crawl's last checkpoint reads them after this.
        if self._client is not None:
            await self._client.close()
            self._client = None

    def cookie_jar(self, key: Any = None) -> aiohttp.abc.AbstractCookieJar:
        """The jar of ``meta["cookiejar"] = key`` (``None``: the crawl's own): a render uses it too."""
        jar = self._jars.get(key)
        if jar is None:
            jar = self._jars[key] = BoundedCookieJar(unsafe=True)
            restore_jar(jar, self._restored.pop(key, []))
        return jar

    async def drop_jar(self, key: Any) -> None:
        """Forget the jar of ``meta["cookiejar"] = key``."""
        self._jars.pop(key, None)

    def cookie_jars(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every cookie jar's cookies, JSON-ready, as the aiohttp client's ``cookie_jars()``."""
        jars: list[tuple[Any, list[dict[str, Any]]]] = list(self._restored.items())
        jars.extend((key, jar_state(jar)) for key, jar in self._jars.items())
        return [(key, cookies) for key, cookies in jars if cookies]

    def restore_cookie_jars(self, jars: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """Jars saved by ``cookie_jars()`` at a checkpoint; call before entering the context."""
        self._restored = {key: cookies for key, cookies in jars}

    async def fetch(
        self, request: Request, hop_check: HopCheck | None = None, route: Route | None = None
    ) -> Fetched:
        """Fetch one request as ``Fetcher.fetch`` does; raise a ``FetchError`` subclass if no
        usable response came."""
        assert self._client is not None, "ImpersonateFetcher used outside 'async with'"
        method, url = request.method, request.url
        identity = route.session if route is not None else None
        jar: aiohttp.abc.AbstractCookieJar
        headers: dict[str, str] | None
        if identity is not None:
            jar = identity.jar
            headers = profile_first(identity, self._session_defaults, request.headers)
            target = target_for(identity.profile, self._settings.impersonate)
        else:
            jar = self.cookie_jar(request.meta.get("cookiejar"))
            headers = _own_first(self._defaults, with_defaults(request.headers, self._credentials))
            target = self._settings.impersonate
        if request.cookies:
            jar.update_cookies(request.cookies, URL(url))
        body: bytes | None = request.body or None
        follow = not request.meta.get("dont_redirect")
        allow_binary = bool(request.meta.get("allow_binary"))
        visited: dict[str, int] = {}  # URL -> cookies in the jar when it was requested
        try:
            for _ in range(self._settings.max_redirects + 1):
                visited[url] = len(jar)
                headers = userinfo_wins(url, headers)
                sent = _with_cookies(headers, jar, url)
                proxy = route.proxy_for(url) if route is not None else None
                started = time.monotonic()
                resp = await self._client.request(
                    method,  # type: ignore[arg-type]  # any token; curl sends it as it is
                    _wire(url),
                    headers=sent,
                    data=body,
                    impersonate=cast(BrowserTypeLiteral, target),  # checked by check_target
                    accept_encoding=None,  # the header is ours; curl inflates nothing
                    proxy=proxy.url if proxy is not None else None,
                    proxy_auth=(proxy.username, proxy.password or "")
                    if proxy is not None and proxy.username is not None
                    else None,
                    quote=False,  # the URL is the WHATWG serialisation already
                    stream=True,
                )
                try:
                    latency = time.monotonic() - started
                    final = str(resp.url or url)
                    set_cookie = [v for v in resp.headers.get_list("set-cookie") if v]
                    if set_cookie:
                        jar.update_cookies_from_headers(set_cookie, URL(final))
                    location = resp.headers.get("location") if follow else None
                    if resp.status_code not in REDIRECT_STATUSES or location is None:
                        content_type = resp.headers.get("content-type")
                        binary = not allow_binary and is_binary_type(content_type)
                        content, hold = (
                            (b"", None)
                            if binary
                            else await self.budget.read_held(
                                functools.partial(self._read_body, resp, request.url)
                            )
                        )
                        return Fetched(
                            url=final,
                            status=resp.status_code,
                            headers=[(k, v or "") for k, v in resp.headers.multi_items()],
                            body=content,
                            content_encoding=resp.headers.get("content-encoding") or "",
                            latency=latency,
                            binary=binary,
                            hold=hold,
                            route=route,
                        )
                    current = URL(final, encoded=True)
                    hop = redirect_hop(
                        resp.status_code, method, current, location, body, headers, request.url
                    )
                    await _drain(resp)
                finally:
                    await _close(resp)
                await checked_hop(hop, visited, len(jar), hop_check, request.url)
                method, url, body, headers = hop.method, hop.url, hop.body, hop.headers
            raise RedirectError(f"more than {self._settings.max_redirects} redirects", request.url)
        except FetchError:
            raise
        except errors.RequestException as exc:
            raise _translate(exc, request.url, route) from exc

    async def _read_body(self, resp: curl.Response, url: str, hold: Hold) -> bytes:
        limit = self._max_size
        declared = _content_length(resp)
        if limit is not None and declared is not None and declared > limit:
            raise ResponseTooLarge(f"Content-Length {declared} exceeds {limit} bytes", url)
        if declared is not None:
            await hold.grow(declared)
        chunks: list[bytes] = []
        size = 0
        async for chunk in _chunks(resp):
            size += len(chunk)
            if limit is not None and size > limit:
                raise ResponseTooLarge(f"body exceeds {limit} bytes", url)
            if declared is None or size > declared:
                await hold.grow(len(chunk))
            chunks.append(chunk)
        return b"".join(chunks)


def _own_first(defaults: dict[str, str], own: dict[str, str] | None) -> dict[str, str]:
    """The crawl's defaults in their order, a request's own headers winning by name."""
    if not own:
        return dict(defaults)
    named = {k.lower() for k in own}
    return {**{k: v for k, v in defaults.items() if k.lower() not in named}, **own}


def _with_cookies(
    headers: dict[str, str] | None, jar: aiohttp.abc.AbstractCookieJar, url: str
) -> dict[str, str] | None:
    """The hop's headers with the jar's ``Cookie`` for ``url`` after the request's own."""
    cookies = jar.filter_cookies(URL(url))
    if not cookies:
        return headers
    cookie = "; ".join(f"{name}={morsel.coded_value}" for name, morsel in cookies.items())
    sent = dict(headers or {})
    own = next((k for k in sent if k.lower() == "cookie"), None)
    if own is not None:
        cookie = f"{sent.pop(own)}; {cookie}"
    sent["Cookie"] = cookie
    return sent


def _wire(url: str) -> str:
    return str(wire_url(url))  # a URL the Standard refuses goes as it is, for curl to refuse


def _content_length(resp: curl.Response) -> int | None:
    value = resp.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)


def _chunks(resp: curl.Response) -> AsyncIterator[bytes]:
    return cast(AsyncIterator[bytes], resp.aiter_content())  # type: ignore[no-untyped-call]


async def _drain(resp: curl.Response) -> None:
    """Read a small unwanted body so the connection is reused; a larger one is cut off instead."""
    declared = _content_length(resp)
    if declared is not None and declared <= _DRAIN_MAX:
        with contextlib.suppress(errors.RequestException):
            async for _ in _chunks(resp):
                pass


async def _close(resp: curl.Response) -> None:
    """End the transfer now, read or not: curl stops at its next chunk, or now if none comes."""
    task = resp.astream_task
    if not isinstance(task, asyncio.Task) or task.done():
        return
    quit_now: Any = resp.quit_now  # an asyncio.Event while streaming (typed None by curl_cffi)
    if quit_now is not None:
        quit_now.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, errors.RequestException):
        await task


def _translate(exc: errors.RequestException, url: str, route: Route | None) -> FetchError:
    """curl's error as crawlkit's: the same types the aiohttp client raises for the same failure."""
    text = str(exc)
    proxy = route.used if route is not None else None
    if proxy is not None and (
        isinstance(exc, errors.ProxyError)
        or (
            isinstance(exc, errors.ConnectionError)
            and not isinstance(exc, errors.SSLError | errors.ConnectTimeout)
        )
    ):
        # Through a proxy, curl connects to the proxy: a refused connection, a failed CONNECT
        # (407, 5xx) is the proxy's failure, tried again through another.
        tunnel = _TUNNEL_STATUS.search(text)
        detail = f"proxy_{tunnel.group(1)}" if tunnel else "proxy_connect"  # as the classifier says
        return ProxyError(foreign_text(f"proxy {proxy} failed: {text}"), url, detail=detail)
    if isinstance(exc, errors.Timeout):
        return FetchTimeout("timed out", url)
    if isinstance(exc, errors.SSLError):
        return TLSError(foreign_text(f"TLS failed: {text}"), url)
    if isinstance(exc, errors.InvalidURL | errors.InvalidSchema):
        return FetchError(foreign_text(f"invalid URL: {text}"), url)
    code = getattr(exc, "code", None)
    if code == CurlECode.WEIRD_SERVER_REPLY:
        # The response head does not parse: the same server sends the same head again.
        return ProtocolError(foreign_text(f"unreadable response: {text}"), url)
    if isinstance(exc, errors.DNSError) or code == CurlECode.COULDNT_CONNECT:
        return ConnectError(foreign_text(f"cannot connect: {text}"), url)
    return TransportError(foreign_text(f"{type(exc).__name__}: {text}"), url)
