"""A small real HTTP forward proxy on 127.0.0.1, for the tests of proxies and sessions.

It speaks what aiohttp's ``proxy=`` speaks: an http target comes as an absolute-form request
(``GET http://host/path``), forwarded with the ``Proxy-*`` headers stripped; an https target comes
as ``CONNECT host:port``, answered 200 and piped both ways. A forwarded request gets a ``Via``
header naming the proxy (``1.1 NAME``), as RFC 9110 asks of proxies, so a site can tell who sent
it. ``auth=(user, password)`` makes it answer 407 to any request without those credentials;
``fail_status=502`` makes it answer that to everything, with RFC 9209's ``Proxy-Status`` naming
itself, as a proxy's own error page does. ``seen`` records every request it received (method,
target, headers), Proxy-Authorization included.

``down_proxy_url()`` is the URL of a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from support.streamserver import StreamServerThread

__all__ = ["ForwardProxy", "Seen", "down_proxy_url", "forward_proxy"]

_HOP_HEADERS = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]  # names lower-case


class ForwardProxy(StreamServerThread[Seen]):
    server_name = "forward-proxy"
    quiet_errors = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)

    def __init__(
        self, auth: tuple[str, str] | None = None, fail_status: int | None = None, name: str = "test-proxy"
    ) -> None:
        self.auth = auth
        self.fail_status = fail_status
        self.name = name
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with_credentials(self, user: str, password: str) -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # a client may send several requests on one connection
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            self._record(Seen(method, target, headers))
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.auth is not None and not self._authorised(headers):
                await _answer(
                    writer,
                    407,
                    "Proxy Authentication Required",
                    [("Proxy-Authenticate", 'Basic realm="test"')],
                )
                continue
            if self.fail_status is not None:
                status = [("Proxy-Status", f"{self.name}; error=proxy_internal_error")]
                await _answer(writer, self.fail_status, "Proxy Failure", status)
                continue
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, headers, body, writer)
            return

    def _authorised(self, headers: dict[str, str]) -> bool:
        assert self.auth is not None
        user, password = self.auth
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return headers.get("proxy-authorization") == expected

    async def _tunnel(self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            await _answer(
                writer, 502, "Bad Gateway", [("Proxy-Status", f"{self.name}; error=connection_refused")]
            )
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        parts = urlsplit(target)
        try:
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        except OSError:
            await _answer(
                writer, 502, "Bad Gateway", [("Proxy-Status", f"{self.name}; error=connection_refused")]
            )
            return
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        kept = [f"{k}: {v}" for k, v in headers.items() if k not in _HOP_HEADERS and k != "via"]
        via = f"Via: {', '.join(filter(None, [headers.get('via'), f'1.1 {self.name}']))}"  # RFC 9110 7.6.3
        up_writer.write(f"{method} {path} HTTP/1.1\r\n".encode("latin-1"))
        up_writer.write(("\r\n".join([*kept, via, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
        up_writer.write(body)
        await up_writer.drain()
        try:
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()


async def _answer(
    writer: asyncio.StreamWriter, status: int, phrase: str, headers: list[tuple[str, str]]
) -> None:
    body = f"{status} {phrase} (from the proxy)\n".encode()
    lines = [f"HTTP/1.1 {status} {phrase}", *(f"{k}: {v}" for k, v in headers)]
    lines += ["Content-Type: text/plain", f"Content-Length: {len(body)}"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
        with contextlib.suppress(OSError):
            dst.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.contextmanager
def forward_proxy(
    auth: tuple[str, str] | None = None, fail_status: int | None = None, name: str = "test-proxy"
) -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(auth, fail_status, name)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def down_proxy_url() -> str:
    """A proxy URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
