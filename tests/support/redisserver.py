"""A real ``redis-server`` for the tests of the shared (Redis) frontier.

``TEST_REDIS_URL`` names a server that is already running (``scripts/test`` starts one); without
it, a ``redis-server`` on PATH is started on a free port of 127.0.0.1 for the session. Without
either, the tests that need Redis are skipped, unless ``TEST_REDIS_REQUIRED=1`` (CI), which makes
that an error. Each test works under its own job name and deletes only that job's keys.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support.procs import reap, stop

__all__ = ["RedisServer", "free_port", "redis_server_binary", "require_redis", "unique_job"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def require_redis(reason: str) -> None:
    """Skip the test, or fail it in CI, where Redis must be there."""
    if os.environ.get("TEST_REDIS_REQUIRED") == "1":
        pytest.fail(f"{reason}, but TEST_REDIS_REQUIRED=1 (CI): install redis-server")
    pytest.skip(reason)


class RedisServer:
    """A redis-server process on 127.0.0.1 that a test can kill and start again on the same port.

    ``persistent`` turns the append-only file on (fsync at every write) in ``directory``, so that
    a restart after a kill keeps every acknowledged write.
    """

    def __init__(self, directory: Path, *, persistent: bool = False, port: int | None = None) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = redis_server_binary()
        assert binary is not None
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is saved at exit."""
        if self.proc is not None:
            reap(self.proc)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        self.proc = None


def session_server() -> Iterator[str]:
    """The URL of the session's Redis: ``TEST_REDIS_URL``, or a redis-server started here."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    if redis_server_binary() is None:
        require_redis("redis-server is not installed and TEST_REDIS_URL is not set")
    with tempfile.TemporaryDirectory(prefix="crawlkit-redis-") as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def unique_job(label: str) -> str:
    label = re.sub(r"[^A-Za-z0-9_-]", "-", label)[:40]
    return f"test-{label}-{uuid.uuid4().hex[:10]}"


def delete_job(url: str, job: str) -> None:
    """Delete the keys of one job only: other tests (and people) may share the server."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"crawlkit:{{{job}}}:*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()
