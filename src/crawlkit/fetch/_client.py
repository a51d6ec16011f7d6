"""The HTTP client: one shared aiohttp session, timeouts, size limits and error translation.

Bodies are read still compressed (``auto_decompress=False``) and inflated by the parser worker
that parses them: that keeps zlib off the event loop and moves fewer bytes across the process
boundary. Every aiohttp or socket failure becomes one of crawlkit's ``FetchError`` types
here, and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from ..errors import (
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
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
from ._classify import Classification
from ._connector import BoundedIdleConnector, idle_bound
from ._cookies import BoundedCookieJar, jar_state, restore_jar
from ._hops import HopCheck, checked_hop, redirect_hop
from ._identity import Route
from ._proxies import Proxy
from ._retry import parse_retry_after
from ._sentheaders import foreign_text, profile_first, userinfo_wins, with_defaults
from ._sessions import Session
from ._socks import SocksClients, socks_failure

__all__ = ["Fetched", "Fetcher", "HopCheck"]  # HopCheck: from _hops.py, where callers found it

log = logging.getLogger("crawlkit.fetch")

_READ_CHUNK = 256 * 1024
_DRAIN_MAX = 64 * 1024  # an unwanted body this small is read, to keep the connection alive


@dataclass(slots=True)
class Fetched:
    """A response as it came off the wire: the body is still Content-Encoded."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_encoding: str
    latency: float = 0.0  # seconds from sending the last hop to its response headers
    binary: bool = False  # a binary file the request did not ask for: its body was not read
    hold: Hold | None = None  # the body's room in the in-flight byte budget; release after parsing
    cached: bool = False  # served by the HTTP cache, not the network
    route: Route | None = None  # the proxy and session it came through (None: the plain path)
    verdict: Classification | None = None  # the classifier's label (None: not from the network)
    # For the parser worker, which looks for a challenge page's markers when the classifier left
    # that to it: 0 no look, 1 a challenge page is blocked (unparsed), 2 it is parsed all the same.
    challenge: int = 0

    def status_error(self) -> HTTPStatusError:
        retry_after = None
        for key, value in self.headers:
            if key.lower() == "retry-after":
                retry_after = parse_retry_after(value)
                break
        return HTTPStatusError(f"HTTP {self.status}", self.url, self.status, retry_after)


class Fetcher:
    """Fetches requests over one ``aiohttp.ClientSession``; use as an async context manager."""

    def __init__(
        self,
        settings: Settings,
        budget: ByteBudget | None = None,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self._settings = settings
        # A resolver of the caller's (the fetch API's, which answers only vetted addresses, so the
        # connection goes to the address that was checked); None: aiohttp's own.
        self._resolver = resolver
        self.budget = budget if budget is not None else ByteBudget(settings.max_inflight_bytes)
        self._session: aiohttp.ClientSession | None = None  # with the crawl's own cookie jar
        # meta["cookiejar"] -> a session of its own jar, on the same connections (made on first use).
        self._sessions: dict[Any, aiohttp.ClientSession] = {}
        self._restored: dict[Any, list[dict[str, Any]]] = {}  # jars from a checkpoint, not opened yet
        self._max_size = settings.max_response_size or None
        redact_headers(settings.redact_headers)
        # Credential headers from default_headers go with each request, not in the session's
        # defaults: aiohttp would send those to every origin a redirect leads to.
        self._credentials = {k: v for k, v in settings.default_headers.items() if is_secret_header(k)}
        # crawlkit's sessions: one client for all, no jar of its own (each session brings its
        # own cookies) and no default headers: a session's profile leads, these fill in after it.
        self._identities: aiohttp.ClientSession | None = None
        self._session_defaults = {
            **{k: v for k, v in settings.default_headers.items() if k not in self._credentials},
            "Accept-Encoding": accept_encoding(),
            **self._credentials,
        }
        # SOCKS proxies: a connector each, and client sessions on them (made on first use).
        self._socks = SocksClients(
            limit=settings.concurrency, verify_tls=settings.verify_tls, make_client=self._socks_client
        )

    async def __aenter__(self) -> Fetcher:
        s = self._settings
        connector = BoundedIdleConnector(
            # Idle connections of hosts that ran out of work are closed, not kept for 15-30 s.
            max_idle=idle_bound(s.concurrency),
            limit=s.concurrency,
            # The frontier enforces the per-host limit; this is a backstop for extra connections.
            limit_per_host=0,
            ttl_dns_cache=s.dns_cache_ttl,
            enable_cleanup_closed=True,
            ssl=s.verify_tls,  # True: verify certificates; False: do not
            resolver=self._resolver,
        )
        self._session = self._make_session(connector, owner=True)
        restore_jar(self._session.cookie_jar, self._restored.pop(None, []))
        return self

    def _make_session(
        self,
        connector: aiohttp.BaseConnector,
        *,
        owner: bool,
        bare: bool = False,
        jar: aiohttp.abc.AbstractCookieJar | None = None,
    ) -> aiohttp.ClientSession:
        s = self._settings
        headers = {
            **{k: v for k, v in s.default_headers.items() if k not in self._credentials},
            "User-Agent": s.user_agent,
            "Accept-Encoding": accept_encoding(),
        }
        if jar is None:
            jar = aiohttp.DummyCookieJar() if bare else BoundedCookieJar(unsafe=True)
        return aiohttp.ClientSession(
            connector=connector,
            connector_owner=owner,
            headers=None if bare else headers,
            # Per host and domain as browsers keep them, and never sent to another site. unsafe:
            # accept cookies from IP-address hosts too (127.0.0.1), as browsers do.
            cookie_jar=jar,
            timeout=aiohttp.ClientTimeout(
                total=s.download_timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout
            ),
            auto_decompress=False,
            max_line_size=16 * 1024,
            max_field_size=16 * 1024,
        )

    def _socks_client(
        self, connector: aiohttp.BaseConnector, like: aiohttp.ClientSession
    ) -> aiohttp.ClientSession:
        """A client on a SOCKS proxy's connector that stands for ``like``: its jar, its defaults."""
        return self._make_session(connector, owner=False, bare=like is self._identities, jar=like.cookie_jar)

    def _session_for(self, key: Any) -> aiohttp.ClientSession:
        """The session of ``meta["cookiejar"] = key``: a jar of its own, the shared connections."""
        session = self._sessions.get(key)
        if session is None:
            assert self._session is not None and self._session.connector is not None
            session = self._sessions[key] = self._make_session(self._session.connector, owner=False)
            restore_jar(session.cookie_jar, self._restored.pop(key, []))
        return session

    def cookie_jar(self, key: Any = None) -> aiohttp.abc.AbstractCookieJar:
        """The jar of ``meta["cookiejar"] = key`` (``None``: the crawl's own): a render uses it too."""
        assert self._session is not None, "Fetcher used outside 'async with'"
        return (self._session if key is None else self._session_for(key)).cookie_jar

    def _identity_client(self) -> aiohttp.ClientSession:
        client = self._identities
        if client is None:
            assert self._session is not None and self._session.connector is not None
            client = self._identities = self._make_session(self._session.connector, owner=False, bare=True)
        return client

    async def drop_jar(self, key: Any) -> None:
        """Forget the jar of ``meta["cookiejar"] = key`` (the fetch API makes one per fetch)."""
        session = self._sessions.pop(key, None)
        if session is not None:
            await self._socks.forget(session)
            await session.close()  # not its connector: the shared session owns that

    def cookie_jars(self) -> list[tuple[Any, list[dict[str, Any]]]]:
        """Every cookie jar's cookies, as JSON-ready records: ``[(key, cookies), ...]`` (key
        ``None``: the crawl's own jar). Jars restored and not used since are kept as they came."""
        jars: list[tuple[Any, list[dict[str, Any]]]] = list(self._restored.items())
        if self._session is not None:
            jars.append((None, jar_state(self._session.cookie_jar)))
        jars.extend((key, jar_state(session.cookie_jar)) for key, session in self._sessions.items())
        return [(key, cookies) for key, cookies in jars if cookies]

    def restore_cookie_jars(self, jars: list[tuple[Any, list[dict[str, Any]]]]) -> None:
        """Jars saved by ``cookie_jars()`` at a checkpoint; call before entering the context."""
        self._restored = {key: cookies for key, cookies in jars}

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for session in self._sessions.values():
            await session.close()  # not its connector: the crawl's session owns that
        self._sessions.clear()
        await self._socks.close()
        if self._identities is not None:
            await self._identities.close()
            self._identities = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(
        self, request: Request, hop_check: HopCheck | None = None, route: Route | None = None
    ) -> Fetched:
        """Fetch one request; raise a ``FetchError`` subclass if no usable response came.

        Redirects are followed here, one hop at a time, so that each target passes
        ``hop_check`` (offsite, robots.txt, scheme) before it is fetched: a filtered target
        raises ``RedirectFiltered``. A URL met again with no new cookie since is a loop.
        ``meta["dont_redirect"]`` returns a redirect response as it is.

        ``route`` (the identity step's) names the proxy of each hop and the session whose jar
        and header profile the request uses; the proxy's credentials are placed per hop, for the
        proxy only, and never enter the headers a redirect carries on.
        """
        assert self._session is not None, "Fetcher used outside 'async with'"
        method, url = request.method, request.url
        identity = route.session if route is not None else None
        jar: aiohttp.abc.AbstractCookieJar
        headers: dict[str, str] | None
        if identity is not None:  # the session's own jar, whatever meta["cookiejar"] says
            session = self._identity_client()
            jar = identity.jar
            headers = profile_first(identity, self._session_defaults, request.headers)
        else:
            jar_key = request.meta.get("cookiejar")
            session = self._session if jar_key is None else self._session_for(jar_key)
            jar = session.cookie_jar
            headers = with_defaults(request.headers, self._credentials)
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
                sent, via, socks = _hop_headers(url, headers, route, identity)
                client = session if socks is None else self._socks.client(socks, session)
                started = time.monotonic()
                async with client.request(
                    method, wire_url(url), headers=sent, data=body, allow_redirects=False, **via
                ) as resp:
                    latency = time.monotonic() - started
                    if identity is not None:
                        identity.store_cookies(resp.headers.getall("Set-Cookie", ()), str(resp.url))
                    redirect = follow and resp.status in REDIRECT_STATUSES
                    location = resp.headers.get("Location") if redirect else None
                    if location is None:
                        binary = not allow_binary and is_binary_type(resp.headers.get("Content-Type"))
                        if binary:
                            await _drain(resp)
                        content, hold = (
                            (b"", None)
                            if binary
                            else await self.budget.read_held(
                                functools.partial(self._read_body, resp, request.url)
                            )
                        )
                        return Fetched(
                            url=str(resp.url),
                            status=resp.status,
                            headers=list(resp.headers.items()),
                            body=content,
                            content_encoding=resp.headers.get("Content-Encoding", ""),
                            latency=latency,
                            binary=binary,
                            hold=hold,
                            route=route,
                        )
                    hop = redirect_hop(resp.status, method, resp.url, location, body, headers, request.url)
                    await _drain(resp)
                await checked_hop(hop, visited, len(jar), hop_check, request.url)
                method, url, body, headers = hop.method, hop.url, hop.body, hop.headers
            raise RedirectError(f"more than {self._settings.max_redirects} redirects", request.url)
        except FetchError:
            raise
        except aiohttp.TooManyRedirects as exc:
            raise RedirectError(
                f"more than {self._settings.max_redirects} redirects (a loop?)", request.url
            ) from exc
        except aiohttp.InvalidURL as exc:
            error = FetchError(foreign_text(f"invalid URL: {exc}"), request.url)
            raise error from exc
        except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as exc:
            # The proxy failed, not the site (a refused port, a 407 or 5xx to CONNECT): the
            # proxy's error, tried again through another (ClientHttpProxyError is a
            # ClientResponseError, which would otherwise be an unretried ProtocolError).
            proxy = route.used if route is not None else None
            raise ProxyError(foreign_text(f"proxy {proxy} failed: {exc}"), request.url) from exc
        except self._socks.errors as exc:  # () until the first SOCKS connector is made
            raise socks_failure(exc, route.used if route is not None else None, request.url) from exc
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            raise TLSError(foreign_text(f"TLS failed: {exc}"), request.url) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(foreign_text(f"cannot connect: {exc}"), request.url) from exc
        except TimeoutError as exc:
            raise FetchTimeout("timed out", request.url) from exc
        except aiohttp.ClientResponseError as exc:
            # With redirects followed here and no raise_for_status, aiohttp raises this only
            # when the response head does not parse (too many or too long headers, a bad status
            # line): the same server sends the same head again, so it is not retried.
            message = foreign_text(f"unreadable response: {exc.message or type(exc).__name__}")
            raise ProtocolError(message, request.url) from exc
        except (aiohttp.ClientError, OSError) as exc:
            if _socks_handshake_tls(exc, route):
                raise TLSError(foreign_text(f"TLS failed: {exc}"), request.url) from exc
            raise TransportError(foreign_text(f"{type(exc).__name__}: {exc}"), request.url) from exc

    async def _read_body(self, resp: aiohttp.ClientResponse, url: str, hold: Hold) -> bytes:
        # Room in the in-flight budget is taken before bytes are read: for the whole body when
        # its length is declared, else a chunk at a time (what a short chunk left is given back).
        limit = self._max_size
        declared = resp.content_length
        if limit is not None and declared is not None and declared > limit:
            raise ResponseTooLarge(f"Content-Length {declared} exceeds {limit} bytes", url)
        if declared is not None:
            await hold.grow(declared)
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        while True:
            await hold.grow(_READ_CHUNK)
            chunk = await resp.content.read(_READ_CHUNK)
            hold.shrink(_READ_CHUNK - len(chunk))
            if not chunk:
                break
            size += len(chunk)
            if limit is not None and size > limit:
                raise ResponseTooLarge(f"body exceeds {limit} bytes", url)
            chunks.append(chunk)
        return b"".join(chunks)


_DIRECT: dict[str, Any] = {}


def _hop_headers(
    url: str, headers: dict[str, str] | None, route: Route | None, identity: Session | None
) -> tuple[dict[str, str] | None, dict[str, Any], Proxy | None]:
    """One hop's headers and proxy arguments: the session's cookies for ``url``, and the proxy's
    credentials where this hop needs them (in the CONNECT for https, on the request for http).
    A SOCKS proxy comes back third: its connector carries the hop, its credentials in the handshake."""
    if route is None:
        return headers, _DIRECT, None
    proxy = route.proxy_for(url)
    sent = headers
    if identity is not None:
        cookie = identity.cookie_header(url)
        if cookie:
            sent = dict(sent or {})
            own = next((k for k in sent if k.lower() == "cookie"), None)
            if own is not None:
                cookie = f"{sent.pop(own)}; {cookie}"
            sent["Cookie"] = cookie
    if proxy is None:
        return sent, _DIRECT, None
    if proxy.is_socks:
        return sent, _DIRECT, proxy
    args = proxy.for_request(url)
    if args.headers:
        sent = {**(sent or {}), **args.headers}
    return sent, {"proxy": args.proxy, "proxy_headers": args.proxy_headers or None}, None


def _socks_handshake_tls(exc: BaseException, route: Route | None) -> bool:
    """Whether ``exc`` is the TLS handshake with the site, made inside a SOCKS connector: aiohttp
    tells its own handshakes' errors apart, but a connector's come as a bare ``OSError``."""
    if route is None or route.used is None or not route.used.is_socks:
        return False
    return isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError)


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read a small unwanted body so the connection is reused; a larger one closes it instead."""
    declared = resp.content_length
    if declared is not None and declared <= _DRAIN_MAX:
        # The response is not used: a broken body costs only the connection.
        with contextlib.suppress(aiohttp.ClientError, OSError):
            await resp.read()
