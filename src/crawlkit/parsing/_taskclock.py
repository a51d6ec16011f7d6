"""A parser worker's task clock: which task it is running, and since when, in shared memory.

Results come back a batch at a time, so the pipe cannot tell the main process which response of
a batch a worker is stuck on. The clock can: 24 bytes in a shared file mapping that the worker
writes before and after each callback (the batch and the place in it of the task it runs, and the
monotonic time that task started, 0.0 when it is idle) and the main process reads whenever it
likes. Three stores per response cost nothing next to a callback, and a worker that hangs is found
after ``parse_timeout`` seconds exactly, with the one response that hangs it named.

Reads are not synchronised with writes. The worker stores the task before the start time, and a
start time is only acted on once it is ``parse_timeout`` old, by which time all stores are long
visible; a read that mixes two tasks only ever sees a fresh start time.
"""

from __future__ import annotations

import mmap
import os
import struct
import tempfile
import time

__all__ = ["TaskClock"]

_TASK = struct.Struct("=qq")
_TIME = struct.Struct("=d")
_SIZE = 24


class TaskClock:
    """One worker's clock. The main process ``create()``s it; the worker ``attach()``es by fd."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._map = mmap.mmap(fd, _SIZE)

    @classmethod
    def create(cls) -> TaskClock:
        """A new clock on an anonymous (already unlinked) file; pass ``fileno()`` to the worker."""
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
        os.ftruncate(fd, _SIZE)
        return cls(fd)

    @classmethod
    def attach(cls, fd: int) -> TaskClock:
        return cls(fd)

    def fileno(self) -> int:
        return self._fd

    # -- the worker's side ---------------------------------------------------------------------

    def started(self, batch: int, index: int) -> None:
        """Task ``index`` of batch ``batch`` starts now."""
        _TASK.pack_into(self._map, 0, batch, index)
        _TIME.pack_into(self._map, 16, time.monotonic())

    def finished(self) -> None:
        _TIME.pack_into(self._map, 16, 0.0)

    # -- the main process's side ---------------------------------------------------------------

    def read(self) -> tuple[int, int, float]:
        """(batch, index in it, start time) of the running task; the time is 0.0 when idle."""
        batch, index = _TASK.unpack_from(self._map, 0)
        return batch, index, _TIME.unpack_from(self._map, 16)[0]

    def close(self) -> None:
        if not self._map.closed:
            self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
