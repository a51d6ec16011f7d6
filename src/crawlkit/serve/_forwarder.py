"""The browser's way out: an HTTP forward proxy on 127.0.0.1 that connects only to vetted addresses.

Chromium resolves names and follows redirects itself, so checking the URLs a page asks for is not
enough: a redirect is never shown to request routing, and a name can answer a public address to
the check and a private one to the browser a moment later (DNS rebinding). So, without
``--allow-private``, every browser context of the fetch API goes through this proxy (Playwright
makes Chromium send loopback traffic through a context's proxy too), and the proxy is where the
connection is made:

* ``CONNECT host:port`` (https, wss): the name is resolved once, through the guard, and the tunnel
  is opened to one of the vetted addresses, never by name;
* an absolute-form request (``GET http://host/path``: http): the same, then the request goes on
  in origin form with ``Connection: close``, and the answer comes back with it too, so a
  connection carries one request to one host and is never reused for another;
* anything refused gets a 403 saying why, and the page's request fails.

Each redirect hop is a new request through the proxy, and so is checked. A request body must
have a ``Content-Length`` (the browser's uploads do; a chunked one is refused with 501).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from ._netguard import AddressRefused, NetGuard

__all__ = ["VettedForwarder"]

log = logging.getLogger("crawlkit.serve")

_HEAD_LIMIT = 64 * 1024
_HEAD_TIMEOUT = 30.0  # for the browser's request head
_ANSWER_TIMEOUT = 120.0  # for the site's answer head: a render may wait this long (MAX_TIMEOUT)
_CONNECT_TIMEOUT = 10.0
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "upgrade"}
)


class VettedForwarder:
    """``start()`` listens on 127.0.0.1 and returns the proxy's URL; ``close()`` ends every tunnel."""

    def __init__(self, guard: NetGuard) -> None:
        self.guard = guard
        self.refused = 0  # connections refused, for the status figures
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0, limit=_HEAD_LIMIT)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # the browser went away, or sent what no browser sends: the connection ends
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
        line, *fields = head.decode("latin-1").split("\r\n")[:-2]
        method, target, _version = line.split(" ", 2)
        headers = [tuple(f.split(":", 1)) for f in fields if ":" in f]
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            upstream = await self._connect(writer, host.strip("[]"), int(port_text))
            if upstream is None:
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, *upstream)
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            await _refuse(writer, 400, "only absolute http URLs and CONNECT are forwarded")
            return
        names = {name.strip().lower(): value.strip() for name, value in headers}
        if "chunked" in names.get("transfer-encoding", "").lower():
            await _refuse(writer, 501, "a chunked request body is not forwarded")
            return
        upstream = await self._connect(writer, parts.hostname, parts.port or 80)
        if upstream is None:
            return
        up_reader, up_writer = upstream
        try:
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            kept = [f"{n.strip()}:{v}" for n, v in headers if n.strip().lower() not in _HOP_HEADERS]
            up_writer.write(f"{method} {path} HTTP/1.1\r\n".encode("latin-1"))
            up_writer.write("\r\n".join([*kept, "Connection: close", "", ""]).encode("latin-1"))
            left = int(names.get("content-length", "0") or 0)
            while left > 0:  # the body in pieces: an upload is not held whole in memory
                piece = await reader.readexactly(min(left, 65536))
                up_writer.write(piece)
                await up_writer.drain()
                left -= len(piece)
            await up_writer.drain()
            answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), _ANSWER_TIMEOUT)
            status, *answer_fields = answer.decode("latin-1").split("\r\n")[:-2]
            answer_kept = [f for f in answer_fields if f.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
            writer.write("\r\n".join([status, *answer_kept, "Connection: close", "", ""]).encode("latin-1"))
            await _copy(up_reader, writer)  # the upstream closes after its answer: Connection: close
        finally:
            up_writer.close()

    async def _connect(
        self, writer: asyncio.StreamWriter, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to a vetted address of ``host``, or None after answering the refusal."""
        try:
            addresses = await self.guard.addresses(host, port)
        except AddressRefused as exc:
            self.refused += 1
            log.info("fetch API browser: refused %s:%s (%s)", host, port, exc)
            await _refuse(writer, 403, f"refused: {exc}")
            return None
        error: OSError | TimeoutError | None = None
        for address in addresses:
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), _CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                error = exc
        await _refuse(writer, 502, f"cannot connect to {host}:{port}: {error}")
        return None


async def _refuse(writer: asyncio.StreamWriter, status: int, why: str) -> None:
    body = why.encode("utf-8", "replace")
    writer.write(
        f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
        + body
    )
    await writer.drain()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while chunk := await source.read(65536):
        sink.write(chunk)
        await sink.drain()


async def _pipe_both(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    async def one_way(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            await _copy(source, sink)
        finally:
            with contextlib.suppress(OSError):
                if sink.can_write_eof():
                    sink.write_eof()

    try:
        await asyncio.gather(one_way(reader, up_writer), one_way(up_reader, writer))
    finally:
        up_writer.close()
