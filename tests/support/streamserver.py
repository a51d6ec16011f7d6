"""A TCP server on 127.0.0.1 run by asyncio in a thread of its own, for the tests' small servers
(the HTTP forward proxy, the SOCKS proxy): started and stopped from synchronous test code, every
connection handled by ``_handle`` and cancelled at the stop, and what it saw kept under a lock."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

__all__ = ["StreamServerThread"]

T = TypeVar("T")


class StreamServerThread(Generic[T]):
    """Subclasses implement ``_handle``; ``_record`` keeps what they saw, ``seen`` gives a copy."""

    server_name = "stream-server"
    # What a client's connection may end with that is the client's business, not the server's.
    quiet_errors: tuple[type[BaseException], ...] = (OSError, asyncio.IncompleteReadError)

    def __init__(self) -> None:
        self.port = 0
        self._seen: list[T] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=self.server_name, daemon=True)

    @property
    def seen(self) -> list[T]:
        with self._lock:
            return list(self._seen)

    def _record(self, item: T) -> None:
        with self._lock:
            self._seen.append(item)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.server_name} did not start")
        if self._error is not None:
            raise RuntimeError(f"{self.server_name} failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await self._handle(reader, writer)
            except self.quiet_errors:
                pass
            finally:
                tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
