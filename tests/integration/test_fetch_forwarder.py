"""The fetch API's browser forwarder, spoken to as Chromium speaks to a proxy, over real sockets.

A guard that takes 127.0.0.2 as public (``NetGuard(public=...)``): a site there is reachable
through the forwarder, the same site on 127.0.0.1 is not, by CONNECT or by an absolute-form
request, and a connection carries one request only.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest
from aiohttp import web

from crawlkit.serve import NetGuard, VettedForwarder
from support.serverthread import ServerThread


class _Site(ServerThread):
    def __init__(self, host: str) -> None:
        super().__init__(host, what=f"the site on {host}", thread_name=f"forwarder-site-{host}")
        self.paths: list[str] = []

    def make_app(self) -> web.Application:
        async def page(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            body = await request.read()
            conn = request.headers.get("Connection")
            return web.Response(text=f"page {request.path} conn={conn} body={len(body)}")

        app = web.Application()
        app.router.add_route("*", "/{path:.*}", page)
        return app


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[_Site, _Site]]:
    public, private = _Site("127.0.0.2"), _Site("127.0.0.1")
    public.start()
    private.start()
    try:
        yield public, private
    finally:
        public.stop()
        private.stop()


async def _exchange(proxy_port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _run(sites: tuple[_Site, _Site], requests: list[bytes]) -> tuple[list[bytes], int]:
    async def run() -> tuple[list[bytes], int]:
        guard = NetGuard(allow_private=False, public=[ipaddress.ip_network("127.0.0.2/32")])
        forwarder = VettedForwarder(guard)
        url = await forwarder.start()
        port = int(url.rsplit(":", 1)[1])
        try:
            answers = [await _exchange(port, data) for data in requests]
        finally:
            await forwarder.close()
            await guard.close()
        return answers, forwarder.refused

    return asyncio.run(run())


def test_absolute_form_requests_reach_public_addresses_only(sites: tuple[_Site, _Site]) -> None:
    public, private = sites
    private.paths.clear()
    ok, refused, by_name = (
        f"GET http://{public.netloc}/hello HTTP/1.1\r\nHost: {public.netloc}\r\n"
        "Proxy-Connection: keep-alive\r\n\r\n".encode(),
        f"GET http://{private.netloc}/secret HTTP/1.1\r\nHost: {private.netloc}\r\n\r\n".encode(),
        f"GET http://localhost:{private.port}/secret HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    )
    answers, count = _run(sites, [ok, refused, by_name])
    assert answers[0].startswith(b"HTTP/1.1 200") and b"page /hello conn=close" in answers[0]
    assert b"\r\nConnection: close\r\n" in answers[0]  # the browser will not reuse it for another host
    assert answers[1].startswith(b"HTTP/1.1 403") and b"127.0.0.1 is a loopback address" in answers[1]
    assert answers[2].startswith(b"HTTP/1.1 403") and b"localhost resolves to" in answers[2]
    assert count == 2 and private.paths == []


def test_connect_tunnels_to_public_addresses_only(sites: tuple[_Site, _Site]) -> None:
    public, private = sites
    private.paths.clear()
    tunnel = (
        f"CONNECT {public.netloc} HTTP/1.1\r\nHost: {public.netloc}\r\n\r\n"
        f"GET /inside HTTP/1.1\r\nHost: {public.netloc}\r\nConnection: close\r\n\r\n"
    ).encode()
    refused = f"CONNECT {private.netloc} HTTP/1.1\r\nHost: {private.netloc}\r\n\r\n".encode()
    answers, count = _run(sites, [tunnel, refused])
    assert answers[0].startswith(b"HTTP/1.1 200 Connection established") and b"page /inside" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 403") and count == 1 and private.paths == []


def test_a_request_body_goes_on_in_pieces_and_a_chunked_one_is_refused(sites: tuple[_Site, _Site]) -> None:
    public, _ = sites
    body = b"x" * 200_000
    head = f"POST http://{public.netloc}/form HTTP/1.1\r\nHost: {public.netloc}\r\n"
    posted = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    chunked = (head + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode()
    answers, _ = _run(sites, [posted, chunked])
    assert answers[0].startswith(b"HTTP/1.1 200") and b"page /form conn=close body=200000" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 501")
