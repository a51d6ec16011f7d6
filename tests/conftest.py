"""Shared fixtures: the real local test website, a clean environment, output paths.

``tests/`` has no ``__init__.py``, so pytest's default ("prepend") import mode puts this folder on
``sys.path`` and ``testsite`` imports as a top-level package.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from support.browser import BrowserSession, alive, require_browser
from support.procs import wait_for
from support.serverthread import ServerThread
from support.testsite import STATE, SiteLog, SiteState, make_app

REPO_ROOT = Path(__file__).resolve().parent.parent


class Site(ServerThread):
    """The running test website (see ``support.testsite`` for its endpoints).

    ``base`` is ``http://127.0.0.1:PORT``; ``url(path)`` joins a path (with its query) to it;
    ``netloc`` is ``host:port`` as in ``SiteLog`` entries' ``host``; ``log`` is the server's
    ``SiteLog``; ``reset()`` clears the log and the per-key counters of the flaky endpoints. The
    server runs in a thread with its own event loop (``serverthread.ServerThread``).
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host, what="the test site", thread_name="testsite-server")
        self.state = SiteState()

    @property
    def log(self) -> SiteLog:
        return self.state.log

    def url(self, path: str = "/") -> str:
        return self.base + (path if path.startswith("/") else "/" + path)

    def reset(self) -> None:
        self.state.reset()

    def make_app(self) -> web.Application:
        app = make_app(self.state)
        assert app[STATE] is self.state
        return app


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    """The local test website, shared by the session; reset before each test that uses it."""
    server = Site()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset_site(request: pytest.FixtureRequest) -> None:
    # Only tests that use the site start it; each of them gets an empty log and fresh counters.
    # (A module may define a "site" fixture of its own; only ours is reset.)
    if "site" in request.fixturenames:
        value = request.getfixturevalue("site")
        if isinstance(value, Site):
            value.reset()


@pytest.fixture(autouse=True)
def _clean_crawlkit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's CRAWLKIT_* settings."""
    for key in list(os.environ):
        if key.startswith("CRAWLKIT_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis for the shared-frontier tests (``redisserver.py``); skipped if there is none."""
    from support.redisserver import session_server  # here: redis-py is needed by these tests only

    yield from session_server()


@pytest.fixture
def redis_job(redis_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A job name of this test's own; its keys, and only they, are deleted afterwards."""
    from support.redisserver import delete_job, unique_job

    job = unique_job(request.node.name)
    yield job
    delete_job(redis_url, job)


@pytest.fixture
def tmp_out(tmp_path: Path) -> Path:
    """A fresh output file path (``.../out/items.jsonl``; its folder exists, the file does not)."""
    out = tmp_path / "out"
    out.mkdir()
    return out / "items.jsonl"


@pytest.fixture
def shared_dir() -> Path:
    """The project's shared folder (``../shared`` beside the repository); skips if it is absent."""
    path = (REPO_ROOT / ".." / "shared").resolve()
    if not path.is_dir():
        pytest.skip(f"the shared folder {path} is absent (it lies beside the repository checkout)")
    return path


@pytest.fixture(scope="session")
def browser_session() -> Iterator[BrowserSession]:
    """The session's one headless Chromium (``support.browser``); skipped if there is none.

    When the session ends, no process of that browser may be left.
    """
    require_browser()
    session = BrowserSession()
    try:
        yield session
    finally:
        session.close()
        wait_for(lambda: not alive(session.seen), 15, "the session's Chromium processes to end")


@pytest.fixture(scope="session")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server-side TLS context with a self-signed certificate for 127.0.0.1 (made with openssl)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
