"""A real headless Chromium for the tests of rendering, one for the whole session.

Playwright objects belong to the event loop that made them, and each test runs its own code, so
the session's browser lives in an event loop of its own, in a thread (``BrowserSession``); a test
hands it coroutines (``session.run(coro)``). Without Playwright or a Chromium the tests that need
them are skipped, unless ``TEST_BROWSER_REQUIRED=1`` (CI), which makes that an error.

``alive(pids)``: which of the Chromium processes seen are still there (zombies included: a
process left unreaped is a leak too).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

__all__ = ["BrowserSession", "alive", "require_browser"]


def require_browser() -> None:
    """Skip the test, or fail it in CI, when Playwright or a Chromium is missing."""
    reason = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[dev]')"
    if reason is None:
        from crawlkit.fetch._browser_launch import find_system_chromium

        own = any(
            os.path.isdir(os.path.join(root, name))
            for root in (os.path.expanduser("~/.cache/ms-playwright"),)
            if os.path.isdir(root)
            for name in os.listdir(root)
            if name.startswith("chromium")
        )
        if not own and find_system_chromium() is None and not shutil.which("chromium"):
            reason = "no Chromium: neither Playwright's nor the system's (apt-get install chromium)"
    if reason is None:
        return
    if os.environ.get("TEST_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{reason}, but TEST_BROWSER_REQUIRED=1 (CI)")
    pytest.skip(reason)


class BrowserSession:
    """An event loop in a thread with one ``BrowserLauncher`` in it; ``seen`` gathers its pids."""

    def __init__(self) -> None:
        from crawlkit.fetch import BrowserLauncher

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="browser-loop", daemon=True)
        self._thread.start()
        self.launcher = BrowserLauncher()
        self.seen: set[int] = set()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
        finally:
            self.seen.update(self.launcher.pids())

    def close(self) -> None:
        try:
            self.run(self.launcher.close(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop.close()


def _is_chromium(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            comm = f.read().split(b")")[0]
    except OSError:
        return False
    # A zombie has no command line left, but still its name.
    return b"chrom" in cmdline or b"headless" in cmdline or b"chrom" in comm or b"_chromium_guard" in cmdline


def alive(pids: Iterable[int]) -> list[int]:
    """The processes of ``pids`` that still exist and are the browser's (or its guard)."""
    return sorted(pid for pid in pids if _is_chromium(pid))
