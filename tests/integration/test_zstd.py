"""zstd Content-Encoding: advertised when the decoder is installed, decoded in the parser worker, capped.

A real aiohttp server on 127.0.0.1 sends a zstd page and a zstd bomb (a few KB that would decompress
to 64 MiB); a real crawl with a parser worker reads the page and stops the bomb at
``max_response_size``, as it stops a gzip bomb.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiohttp import web

from crawlkit import crawl
from crawlspiders.polite_spiders import UrlsSpider
from support.misbehaving import serve

zstandard = pytest.importorskip("zstandard", reason="the zstd extra (zstandard) is not installed")

PAGE = b"<!DOCTYPE html><html><head><title>zstd page</title></head><body>" + b"<p>text</p>" * 500
BOMB_SIZE = 64 * 1024 * 1024


def _bomb() -> bytes:
    # Several frames, so that a decoder which stopped at the first would not be caught by the cap.
    frame = zstandard.ZstdCompressor(level=19).compress(b"<html>" + b" " * (BOMB_SIZE // 4))
    return frame * 4


async def _page(request: web.Request) -> web.Response:
    body = zstandard.ZstdCompressor().compress(PAGE)
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "zstd"}
    return web.Response(body=body, headers=headers)


async def _bomb_page(request: web.Request) -> web.Response:
    headers = {"Content-Type": "text/html", "Content-Encoding": "zstd"}
    return web.Response(body=_bomb(), headers=headers)


def test_zstd_pages_are_decoded_and_bombs_capped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out.jsonl"
    routes = [web.get("/page", _page), web.get("/bomb", _bomb_page)]
    with serve(routes) as server:
        stats = crawl(
            UrlsSpider,
            out,
            settings={
                "frontier": "memory",
                "parse_workers": 1,
                "obey_robots": False,
                "max_retries": 0,
                "max_response_size": 2_000_000,
            },
            handle_signals=False,
            urls=f"{server.url('/page')} {server.url('/bomb')}",
        )
        accepted = {hit.path_qs: hit.headers.get("Accept-Encoding", "") for hit in server.hits()}
    items = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(item["request_url"], item["title"]) for item in items] == [(server.url("/page"), "zstd page")]
    # Counted as a gzip bomb is: inflated past the cap, too large.
    assert stats.failures == {"too_large": 1}
    assert f"{server.url('/bomb')}: decompressed body exceeds 2000000 bytes" in caplog.text
    assert "zstd" in accepted["/page"].split(", ")
