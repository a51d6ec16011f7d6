"""The fetch API of ``crawlkit serve``, and the address rules that keep it from reaching inside.

Against real servers on 127.0.0.1: the API server as a subprocess, the test site as the target.
The refusals are tested without ``--allow-private`` (the test site itself is then out of bounds);
the fetches with it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Site
from crawlkit.core import CrawlStats
from crawlkit.fetch import ByteBudget, CrawlHostPolicy, Downloader, Ended
from crawlkit.frontier import open_frontier
from crawlkit.http import Request
from crawlkit.serve import AddressRefused, NetGuard
from crawlkit.settings import load_settings
from support.serveproc import Server, make_project, serving


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("fetchapi") / "project")


@pytest.fixture(scope="module")
def guarded(project: Path) -> Iterator[Server]:
    with serving(project) as running:
        yield running


@pytest.fixture(scope="module")
def open_server(project: Path) -> Iterator[Server]:
    with serving(project, "--allow-private", "--fetch-concurrency", "1", "--fetch-queue", "1") as running:
        yield running


REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://2130706433/", "loopback"),  # decimal
    ("http://0177.0.0.1/", "loopback"),  # octal
    ("http://0x7f.0.0.1/", "loopback"),  # hexadecimal
    ("http://127.1/", "loopback"),  # short form
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:a9fe:a9fe]/", "link-local"),  # the metadata address, mapped
    ("http://169.254.169.254/latest/meta-data/", "link-local"),  # cloud metadata
    ("http://10.1.2.3/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[fd00::1]/", "unique-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
    ("http://localhost/", "loopback"),  # a name that resolves to loopback
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/", "only http and https"),
    ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_refused_targets_in_every_spelling(guarded: Server, url: str, why: str) -> None:
    status, data, _ = guarded.call(f"/api/fetch?url={_quote(url)}")
    assert status == 400, data
    assert data["classification"] == "refused" and why in data["error"], data


def _quote(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="")


def test_the_test_site_itself_is_refused_without_allow_private(guarded: Server, site: Site) -> None:
    status, data, _ = guarded.call(f"/api/fetch?url={_quote(site.url('/ok'))}")
    assert status == 400 and "loopback" in data["error"]
    assert site.log.count("/ok") == 0


def test_a_redirect_to_a_private_address_is_refused_at_its_hop(site: Site) -> None:
    """The downloader with the guard's hop check, as the fetch API builds it, against the real site."""

    async def run() -> Any:
        settings = load_settings(overrides={"frontier": "memory", "retry_times": "0"})
        policy = CrawlHostPolicy.from_settings(settings)
        frontier = open_frontier(settings, policy)
        await frontier.open()
        guard = NetGuard(allow_private=False)
        downloader = Downloader(
            settings,
            frontier=frontier,
            stats=CrawlStats(),
            host_policy=policy,
            budget=ByteBudget(settings.max_inflight_bytes),
            resolver=guard.resolver,
            hop_check=guard.hop_check,
        )
        async with downloader:
            # The first URL is the site (vetted elsewhere); its redirect leads to the metadata address.
            target = site.url("/redirect-to?url=" + _quote("http://169.254.169.254/latest/"))
            outcome = await downloader.download(Request(target))
        await guard.close()
        return outcome

    outcome = asyncio.run(run())
    assert isinstance(outcome, Ended)
    assert outcome.reason is not None and outcome.reason.startswith("refused_address_redirect")
    assert "169.254.169.254 is a link-local address" in outcome.reason


def test_the_connection_resolves_only_vetted_addresses() -> None:
    """DNS rebinding: whatever a name answers at connection time is vetted again there."""

    async def run() -> None:
        guard = NetGuard(allow_private=False)
        assert guard.resolver is not None
        try:
            with pytest.raises(AddressRefused, match=r"localhost resolves to .*loopback"):
                await guard.resolver.resolve("localhost", 80, socket.AF_UNSPEC)
        finally:
            await guard.close()

    asyncio.run(run())


def test_a_page_through_crawlkits_fetcher(open_server: Server, site: Site) -> None:
    status, data, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/ok'))}")
    assert status == 200, data
    assert data["status"] == 200 and data["final_url"] == site.url("/ok")
    assert data["classification"] == "ok" and data["attempts"] == 1
    assert data["body_encoding"] == "text" and "<title>ok</title>" in data["body"]
    assert any(name.lower() == "content-type" for name, _ in data["headers"])


def test_retries_and_redirects_are_the_crawls(open_server: Server, site: Site) -> None:
    status, data, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/flaky/fetchapi?fail=1'))}")
    assert status == 200 and data["attempts"] == 2 and data["status"] == 200, data
    status, data, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/redirect/2'))}")
    assert data["final_url"] == site.url("/ok")
    status, data, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/status/404'))}")
    assert data["status"] == 404 and data["classification"] == "target_error"


def test_the_deadline_answers_before_the_clients_timeout(open_server: Server, site: Site) -> None:
    started = time.monotonic()
    status, data, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/slow?delay=20'))}&timeout=3")
    assert status == 504 and "deadline" in data["error"]
    assert time.monotonic() - started < 3  # the client, waiting 3 s, got its answer


def test_a_full_queue_answers_503_and_a_client_that_leaves_frees_its_slot(
    open_server: Server, site: Site
) -> None:
    host, port = open_server.base.removeprefix("http://").split(":")
    path = f"/api/fetch?url={_quote(site.url('/slow?delay=30'))}&timeout=60"
    held = []
    for _ in range(2):  # one running (concurrency 1), one waiting (queue 1)
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        held.append(sock)
    _wait_figures(open_server, lambda f: f["running"] == 1 and f["waiting"] == 1)
    status, data, headers = open_server.call(path)
    assert "queue is full" in data["error"]
    assert status == 503 and headers["Retry-After"] == "2"
    for sock in held:
        sock.close()  # the clients go away: their fetches are cancelled at once
    _wait_figures(open_server, lambda f: f["running"] == 0 and f["waiting"] == 0, timeout=10)
    status, _, _ = open_server.call(f"/api/fetch?url={_quote(site.url('/ok'))}")
    assert status == 200


def _wait_figures(server: Server, check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        figures = server.call("/api/status")[1]["fetch"]
        if check(figures):
            return
        assert time.monotonic() < deadline, figures
        time.sleep(0.05)
