"""The HTTP client: one shared aiohttp session, timeouts, size limits and error translation.

Bodies are read still compressed (``auto_decompress=False``) and inflated by the parser worker
that parses them: that keeps zlib off the event loop and moves a quarter of the bytes across the
process boundary. Every aiohttp or socket failure becomes one of crawlkit's ``FetchError`` types
here, and nowhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from .encoding import accept_encoding
from .errors import (
    ConnectError,
    FetchError,
    FetchTimeout,
    HTTPStatusError,
    RedirectError,
    ResponseTooLarge,
    TransportError,
)
from .http import Request
from .retry import parse_retry_after
from .settings import Settings

__all__ = ["Fetched", "Fetcher"]

log = logging.getLogger("crawlkit.fetch")

_READ_CHUNK = 256 * 1024


@dataclass(slots=True)
class Fetched:
    """A response as it came off the wire: the body is still Content-Encoded."""

    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    content_encoding: str

    def status_error(self) -> HTTPStatusError:
        retry_after = None
        for key, value in self.headers:
            if key.lower() == "retry-after":
                retry_after = parse_retry_after(value)
                break
        return HTTPStatusError(f"HTTP {self.status}", self.url, self.status, retry_after)


class Fetcher:
    """Fetches requests over one ``aiohttp.ClientSession``; use as an async context manager."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._max_size = settings.max_response_size or None

    async def __aenter__(self) -> Fetcher:
        s = self._settings
        connector = aiohttp.TCPConnector(
            limit=s.concurrency,
            # The frontier enforces the per-host limit; this is a backstop for extra connections.
            limit_per_host=0,
            ttl_dns_cache=s.dns_cache_ttl,
            enable_cleanup_closed=True,
        )
        headers = {
            **s.default_headers,
            "User-Agent": s.user_agent,
            "Accept-Encoding": accept_encoding(),
        }
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                total=s.download_timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout
            ),
            auto_decompress=False,
            max_line_size=16 * 1024,
            max_field_size=16 * 1024,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, request: Request) -> Fetched:
        """Fetch one request; raise a ``FetchError`` subclass if no usable response came."""
        assert self._session is not None, "Fetcher used outside 'async with'"
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                max_redirects=self._settings.max_redirects,
            ) as resp:
                body = await self._read_body(resp, request.url)
                return Fetched(
                    url=str(resp.url),
                    status=resp.status,
                    headers=list(resp.headers.items()),
                    body=body,
                    content_encoding=resp.headers.get("Content-Encoding", ""),
                )
        except FetchError:
            raise
        except aiohttp.TooManyRedirects as exc:
            raise RedirectError(
                f"more than {self._settings.max_redirects} redirects (a loop?)", request.url
            ) from exc
        except aiohttp.InvalidURL as exc:
            error = FetchError(f"invalid URL: {exc}", request.url)
            raise error from exc
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError) as exc:
            raise ConnectError(f"cannot connect: {exc}", request.url) from exc
        except TimeoutError as exc:
            raise FetchTimeout("timed out", request.url) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}", request.url) from exc

    async def _read_body(self, resp: aiohttp.ClientResponse, url: str) -> bytes:
        limit = self._max_size
        if limit is None:
            return await resp.read()
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise ResponseTooLarge(f"Content-Length {declared} exceeds {limit} bytes", url)
        if declared is not None:
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(f"body exceeds {limit} bytes", url)
            chunks.append(chunk)
        return b"".join(chunks)
