"""``session`` and ``proxy`` of the fetch API, and the 400s of its query.

Against real servers on 127.0.0.1: ``crawlkit serve`` as a subprocess (with ``--allow-private``,
the test site being on loopback), the test site as the target and a real forward proxy with
credentials, named in the project's ``[tool.crawlkit] proxies``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from conftest import Site
from support.forwardproxy import ForwardProxy, down_proxy_url, forward_proxy
from support.serveproc import Server, make_project, serving

USER, PASSWORD = "fetcher", "s3cret-pass"


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(auth=(USER, PASSWORD), name="pool-proxy") as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("fetch-options") / "project")
    with serving(project, "--allow-private") as running:
        yield running


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory, proxy: ForwardProxy) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("fetch-proxied") / "project")
    proxies = [proxy.url_with_credentials(USER, PASSWORD)]
    (project / "pyproject.toml").write_text(f"[tool.crawlkit]\nproxies = {orjson.dumps(proxies).decode()}\n")
    with serving(project, "--allow-private") as running:
        yield running


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    project = make_project(tmp_path_factory.mktemp("fetch-guarded") / "project")
    with serving(project) as running:
        yield running


def fetch(server: Server, url: str, **params: str) -> tuple[int, dict[str, Any]]:
    query = "".join(f"&{k}={quote(v, safe='')}" for k, v in params.items())
    status, data, _ = server.call(f"/api/fetch?url={quote(url, safe='')}{query}")
    return status, data


def echoed_headers(data: dict[str, Any]) -> dict[str, str]:
    """The headers the test site's /echo saw, names lower-case."""
    return {k.lower(): v for k, v in orjson.loads(data["body"])["headers"].items()}


def test_a_session_keeps_its_cookies_and_two_sessions_share_none(server: Server, site: Site) -> None:
    status, data = fetch(server, site.url("/set-cookie?name=basket&value=alice"), session="alice-1")
    assert status == 200 and data["session"] == "alice-1" and data["session_new"] is True, data
    fetch(server, site.url("/set-cookie?name=basket&value=bob"), session="bob-1")

    status, data = fetch(server, site.url("/echo"), session="alice-1")
    assert data["session_new"] is False
    assert echoed_headers(data).get("cookie") == "basket=alice"
    status, data = fetch(server, site.url("/echo"), session="bob-1")
    assert echoed_headers(data).get("cookie") == "basket=bob"
    status, data = fetch(server, site.url("/echo"))  # no session: a jar of its own, empty
    assert "cookie" not in echoed_headers(data) and "session" not in data
    status, data = fetch(server, site.url("/echo"), session="carol-1")
    assert data["session_new"] is True and "cookie" not in echoed_headers(data)


def test_proxy_auto_goes_through_the_pool_and_its_credentials_stay_with_the_proxy(
    proxied: Server, proxy: ForwardProxy, site: Site
) -> None:
    def pages() -> list[Any]:  # robots.txt goes through the pool too, once
        return [s for s in proxy.seen if not s.target.endswith("/robots.txt")]

    before = len(pages())
    status, data = fetch(proxied, site.url("/echo"), proxy="auto")
    assert status == 200 and data["classification"] == "ok", data
    seen = pages()[before:]
    assert [s.target for s in seen] == [site.url("/echo")]  # through the proxy, with its credentials
    assert seen[0].headers["proxy-authorization"].startswith("Basic ")
    headers = echoed_headers(data)
    assert "proxy-authorization" not in headers and "via" in headers  # the site saw the proxy, no secret
    assert PASSWORD not in data["proxy"] and f"127.0.0.1:{proxy.port}" in data["proxy"]
    assert PASSWORD not in orjson.dumps(data).decode()

    # The default with proxies configured is the pool too; proxy=none goes direct.
    status, data = fetch(proxied, site.url("/echo"))
    assert data["proxy"] is not None and len(pages()) == before + 2
    status, data = fetch(proxied, site.url("/echo"), proxy="none")
    assert data["proxy"] is None and "via" not in echoed_headers(data) and len(pages()) == before + 2
    # One of the server's proxies by HOST:PORT: its credentials come from the server, not the client.
    status, data = fetch(proxied, site.url("/echo"), proxy=f"127.0.0.1:{proxy.port}")
    assert status == 200 and data["classification"] == "ok" and len(pages()) == before + 3


def test_a_session_keeps_its_proxy(proxied: Server, proxy: ForwardProxy, site: Site) -> None:
    status, data = fetch(proxied, site.url("/set-cookie?name=s&value=1"), session="via-proxy")
    assert status == 200 and data["proxy"] is not None, data
    status, data = fetch(proxied, site.url("/echo"), session="via-proxy")
    assert echoed_headers(data).get("cookie") == "s=1" and data["proxy"] is not None
    status, data = fetch(proxied, site.url("/echo"), session="via-proxy", proxy="none")
    assert status == 400 and "for its whole life" in data["error"], data


def test_a_proxy_that_is_down_is_a_502_not_a_hang(server: Server, site: Site) -> None:
    status, data = fetch(server, site.url("/ok"), proxy=down_proxy_url(), timeout="10")
    assert status == 502 and data["classification"] == "proxy_error", data


BAD = [
    ({"render": "1", "wait_for": "#x", "screenshot": "2"}, "screenshot must be 1 or 0"),
    ({"wait_for": "#x"}, "add render=1"),
    ({"render_timeout": "5"}, "add render=1"),
    ({"render": "1", "render_timeout": "40", "timeout": "30"}, "render_timeout must be within"),
    ({"session": "no spaces"}, "session must be"),
    ({"session": "x" * 101}, "session must be"),
    ({"proxy": "auto"}, "the server has no proxies"),
    ({"proxy": "ftp://example.com:21"}, "proxy:"),
    ({"proxy": "http://203.0.113.5:3128"}, "only --allow-private takes one"),
    ({"timeout": "0"}, "timeout must be within"),
    ({"timeout": "nan"}, "timeout must be a number"),
    ({"colour": "blue"}, "unknown parameters: colour"),
]


@pytest.mark.parametrize(("params", "words"), BAD, ids=[w for _, w in BAD])
def test_bad_parameters_are_400s_that_say_why(
    guarded: Server, site: Site, params: dict[str, str], words: str
) -> None:
    status, data = fetch(guarded, "http://203.0.113.9/", **params)
    assert status == 400 and words in data["error"], data
    assert site.log.count("/") == 0


def test_a_parameter_given_twice_and_no_url_are_400s(guarded: Server) -> None:
    status, data, _ = guarded.call("/api/fetch?url=http%3A%2F%2F203.0.113.9%2F&render=1&render=0")
    assert status == 400 and "given more than once: render" in data["error"]
    status, data, _ = guarded.call("/api/fetch?render=1")
    assert status == 400 and "url is required" in data["error"]


def test_the_status_counts_named_sessions(server: Server, site: Site) -> None:
    fetch(server, site.url("/ok"), session="counted")
    assert server.call("/api/status")[1]["fetch"]["sessions"] >= 1


def test_serve_refuses_bad_session_bounds(tmp_path: Path) -> None:
    import subprocess

    from support.procs import CRAWLKIT_EXE, subprocess_env

    project = make_project(tmp_path / "project")
    for flag, value, words in [
        ("--fetch-sessions", "0", "--fetch-sessions must be at least 1"),
        ("--fetch-session-idle", "0", "--fetch-session-idle must be within"),
    ]:
        done = subprocess.run(
            [str(CRAWLKIT_EXE), "serve", "--port", "0", flag, value],
            cwd=project,
            env=subprocess_env(),
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 2 and words in done.stderr.decode(), done.stderr
