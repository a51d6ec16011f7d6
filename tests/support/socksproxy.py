"""A small real SOCKS 5 server on 127.0.0.1, for the tests of SOCKS proxies.

RFC 1928 with the CONNECT command only (BIND and UDP ASSOCIATE are answered "command not
supported"), and RFC 1929's user name and password when ``auth=(user, password)`` is given: a
client that offers no such method gets "no acceptable methods", wrong credentials get status 1,
and the connection is closed, as the RFCs say. ``reply=N`` answers every CONNECT with that reply
code instead of connecting (1: general failure, 5: connection refused...). ``source`` is the
address its outgoing connections come from (a loopback address of its own, ``127.0.0.2``...), so
that a site can tell the proxies apart by the address it sees, as it would tell real ones.

``seen`` records every handshake: the user name offered (None without one), the destination as
the client sent it (an address, or the name itself for ``socks5h://``), its address type (1 IPv4,
3 a name, 4 IPv6) and port, and whether the proxy let it through.

``down_socks_url()`` is the URL of a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from support.forwardproxy import _pipe_both
from support.streamserver import StreamServerThread

__all__ = ["Handshake", "SocksProxy", "down_socks_url", "socks_proxy"]

_VERSION = 5
_NO_AUTH, _USER_PASSWORD, _NO_ACCEPTABLE = 0x00, 0x02, 0xFF
_CONNECT = 1
_IPV4, _NAME, _IPV6 = 1, 3, 4
_SUCCEEDED, _GENERAL_FAILURE, _HOST_UNREACHABLE, _REFUSED, _COMMAND_NOT_SUPPORTED = 0, 1, 4, 5, 7


@dataclass(frozen=True)
class Handshake:
    user: str | None
    host: str
    address_type: int
    port: int
    allowed: bool


class SocksProxy(StreamServerThread[Handshake]):
    server_name = "socks-proxy"
    quiet_errors = (OSError, asyncio.IncompleteReadError, UnicodeDecodeError)

    def __init__(
        self, auth: tuple[str, str] | None = None, reply: int | None = None, source: str = "127.0.0.1"
    ) -> None:
        self.auth = auth
        self.reply = reply
        self.source = source
        super().__init__()

    def url(self, scheme: str = "socks5") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def url_with_credentials(self, user: str, password: str, scheme: str = "socks5") -> str:
        return f"{scheme}://{user}:{password}@127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        if version != _VERSION:
            return
        methods = await reader.readexactly(count)
        user = await self._authenticate(methods, reader, writer)
        if user is False:
            return
        version, command, _reserved, address_type = await reader.readexactly(4)
        host = await _read_address(address_type, reader)
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        allowed = command == _CONNECT and self.reply is None
        self._record(Handshake(user, host, address_type, port, allowed))
        if command != _CONNECT:
            await _reply(writer, _COMMAND_NOT_SUPPORTED)
            return
        if self.reply is not None:
            await _reply(writer, self.reply)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                host, port, local_addr=(self.source, 0) if self.source != "127.0.0.1" else None
            )
        except socket.gaierror:
            await _reply(writer, _HOST_UNREACHABLE)
            return
        except OSError:
            await _reply(writer, _REFUSED)
            return
        await _reply(writer, _SUCCEEDED)
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _authenticate(
        self, methods: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str | bool | None:
        """The user name (None: no authentication), or False when the client is refused."""
        if self.auth is None:
            if _NO_AUTH not in methods:
                writer.write(bytes([_VERSION, _NO_ACCEPTABLE]))
                await writer.drain()
                return False
            writer.write(bytes([_VERSION, _NO_AUTH]))
            await writer.drain()
            return None
        if _USER_PASSWORD not in methods:
            writer.write(bytes([_VERSION, _NO_ACCEPTABLE]))
            await writer.drain()
            return False
        writer.write(bytes([_VERSION, _USER_PASSWORD]))
        await writer.drain()
        _subversion, size = await reader.readexactly(2)
        user = (await reader.readexactly(size)).decode()
        (size,) = await reader.readexactly(1)
        password = (await reader.readexactly(size)).decode()
        ok = (user, password) == self.auth
        writer.write(bytes([1, 0 if ok else 1]))  # RFC 1929: 0 is success
        await writer.drain()
        if not ok:
            self._record(Handshake(user, "", 0, 0, False))
            return False
        return user


async def _read_address(address_type: int, reader: asyncio.StreamReader) -> str:
    if address_type == _IPV4:
        return str(ipaddress.IPv4Address(await reader.readexactly(4)))
    if address_type == _IPV6:
        return str(ipaddress.IPv6Address(await reader.readexactly(16)))
    if address_type == _NAME:
        (size,) = await reader.readexactly(1)
        return (await reader.readexactly(size)).decode("idna")
    raise OSError(f"address type {address_type}")


async def _reply(writer: asyncio.StreamWriter, code: int) -> None:
    # The bound address is not used by a CONNECT client: 0.0.0.0:0, as many servers send.
    writer.write(bytes([_VERSION, code, 0, _IPV4, 0, 0, 0, 0, 0, 0]))
    await writer.drain()


@contextlib.contextmanager
def socks_proxy(
    auth: tuple[str, str] | None = None, reply: int | None = None, source: str = "127.0.0.1"
) -> Iterator[SocksProxy]:
    proxy = SocksProxy(auth, reply, source)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def down_socks_url(scheme: str = "socks5") -> str:
    """A SOCKS proxy URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"
