"""An aiohttp application served on a free port of 127.0.0.1 from a thread with its own event loop.

The machinery behind the test website of ``conftest.py`` (``Site``) and the site mirrors of
``integration/test_real_sites.py`` (``Mirror``): a subclass says what it serves (``make_app()``).
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ServerThread:
    """Serves ``make_app()`` on ``host`` and a free port (or ``port``), in a daemon thread.

    ``start()``, ``stop()``; ``what`` names the server in the errors that ``start()`` and ``stop()`` raise.
    """

    def __init__(self, host: str = "127.0.0.1", *, what: str, thread_name: str, port: int = 0) -> None:
        self.host = host
        self.port = port
        self.what = what
        self.thread_name = thread_name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        """``host:port``, as the server sees it in the Host header."""
        return f"{self.host}:{self.port}"

    def make_app(self) -> web.Application:
        """The application to serve; called in the server's thread, in its event loop."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self.what} did not start in time")
        if self._error is not None:
            raise RuntimeError(f"{self.what} failed to start") from self._error

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.what} did not stop in time")
        self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(), or lost if it happens at stop
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = int(runner.addresses[0][1])
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
