"""SOCKS proxies: one connector per proxy, the client sessions made on it, and their errors.

aiohttp speaks HTTP to a proxy (``proxy=``). A SOCKS proxy is reached through a connector of its
own instead (aiohttp-socks' ``ProxyConnector``, which opens each connection with a SOCKS handshake),
so a request through it goes out on an ``aiohttp.ClientSession`` made on that connector.
:class:`SocksClients` makes the connector of a proxy the first time a request goes through it,
with the crawl's connection limit and TLS setting, and the client sessions on it through the
fetcher's own factory (its timeouts, header limits and cookie jar); it closes them all at the end.
Connections through a proxy are kept alive and reused like any other.

The site's name: ``socks5://`` and ``socks4://`` resolve it here and send the proxy an address;
``socks5h://`` and ``socks4a://`` send the proxy the name, which resolves it (as curl reads these
schemes). Credentials go in the SOCKS handshake (RFC 1929), never in an HTTP header.

aiohttp-socks is imported on the first SOCKS request only: a crawl without SOCKS never loads it.
:func:`socks_failure` turns its errors into crawlkit's, as the HTTP proxies' are: the proxy's own
failure (its port refused, a refused user name or password, a reply that says the proxy failed or
will not connect) is a ``ProxyError`` (``proxy_error``: the proxy rests, the request goes through
another, none of its retries used); a reply that reports the site (unreachable, refused, SOCKS 4's
"rejected or failed", which says no more) is the site's ``ConnectError``, retried as any other; a
handshake that timed out is a ``FetchTimeout``, as a timed-out CONNECT is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from ..errors import ConnectError, FetchError, FetchTimeout, ProxyError
from ._proxies import Proxy

if TYPE_CHECKING:
    from aiohttp_socks import ProxyConnector

__all__ = ["SocksClients", "socks_failure"]

# SOCKS 5 replies about the destination (RFC 1928 section 6: network or host unreachable,
# connection refused, TTL expired), and SOCKS 4's 0x5B, "request rejected or failed".
_SITE_REPLIES = frozenset({3, 4, 5, 6, 0x5B})
# Where the name of the site is resolved: at the proxy (True) or here.
_REMOTE_DNS = {"socks5": False, "socks5h": True, "socks4": False, "socks4a": True}

# A client session on a connector, with the cookie jar (and defaults) of the session it stands for.
MakeClient = Callable[[aiohttp.BaseConnector, aiohttp.ClientSession], aiohttp.ClientSession]


class SocksClients:
    """The connectors of the crawl's SOCKS proxies and the client sessions on them."""

    def __init__(self, *, limit: int, verify_tls: bool, make_client: MakeClient) -> None:
        self._limit = limit
        self._verify_tls = verify_tls
        self._make_client = make_client
        self._connectors: dict[Proxy, ProxyConnector] = {}
        # (proxy, the session whose jar a client shares) -> the client on the proxy's connector
        self._clients: dict[tuple[Proxy, aiohttp.ClientSession], aiohttp.ClientSession] = {}
        self.errors: tuple[type[Exception], ...] = ()  # aiohttp-socks' errors, once it is loaded

    def client(self, proxy: Proxy, like: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """The client for a request of ``like`` (its cookie jar, its defaults) through ``proxy``."""
        client = self._clients.get((proxy, like))
        if client is None:
            client = self._clients[(proxy, like)] = self._make_client(self._connector(proxy), like)
        return client

    def _connector(self, proxy: Proxy) -> ProxyConnector:
        connector = self._connectors.get(proxy)
        if connector is None:
            from aiohttp_socks import ProxyConnectionError, ProxyConnector, ProxyError, ProxyTimeoutError
            from python_socks import ProxyType

            self.errors = (ProxyConnectionError, ProxyError, ProxyTimeoutError)
            kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
            connector = self._connectors[proxy] = ProxyConnector(
                proxy_type=kind,
                host=proxy.host,
                port=proxy.port,
                username=proxy.username,
                password=proxy.password,
                rdns=_REMOTE_DNS[proxy.scheme],
                limit=self._limit,
                limit_per_host=0,  # the frontier enforces the per-host limit, as on the main one
                enable_cleanup_closed=True,
                ssl=self._verify_tls,
            )
        return connector

    async def forget(self, like: aiohttp.ClientSession) -> None:
        """Close the clients made for ``like`` (a cookie jar the fetcher drops)."""
        for key in [key for key in self._clients if key[1] is like]:
            await self._clients.pop(key).close()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()  # not the connector: this owns it
        self._clients.clear()
        for connector in self._connectors.values():
            await connector.close()
        self._connectors.clear()


def socks_failure(exc: Exception, proxy: Proxy | None, url: str) -> FetchError:
    """crawlkit's error for an aiohttp-socks one (see the module's docstring)."""
    from aiohttp_socks import ProxyConnectionError, ProxyTimeoutError
    from aiohttp_socks import ProxyError as SocksReplyError

    text = str(exc)
    if isinstance(exc, ProxyTimeoutError):
        return FetchTimeout(f"timed out through SOCKS proxy {proxy}: {text}", url)
    code = exc.error_code if isinstance(exc, SocksReplyError) else None
    if code in _SITE_REPLIES:
        return ConnectError(f"SOCKS proxy {proxy} cannot reach the site: {text}", url)
    if isinstance(exc, ProxyConnectionError):
        detail = "socks_connect"
    elif "authentication" in text.lower():  # no method acceptable, or the user name refused
        detail = "socks_auth"
    else:
        detail = f"socks_reply_{code}" if code is not None else "socks_protocol"
    return ProxyError(f"SOCKS proxy {proxy} failed: {text}", url, detail=detail)
