"""Finding Chromium, launching it through Playwright so that it cannot be orphaned, watching it.

Which Chromium: ``browser_executable`` when it is set; else Playwright's own build when the user
installed it (``playwright install chromium``); else a system Chromium on PATH (Debian's
``chromium``, ``chromium-browser``, Google Chrome). At launch the browser's version is logged, with
a warning when it is far from the version this Playwright was made for (its protocol may differ).

Every launch goes through ``_chromium_guard.py`` (a shell wrapper named as Playwright's
``executable_path`` runs it): whatever ends the crawl process, even ``kill -9``, the guard kills
Chromium's whole tree. The guard's pid (written to a file at start) is the root of the tree
whose resident memory ``rss_bytes()`` adds up, for ``browser_max_memory_mb`` and the crawl's
memory ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..guards import rss_bytes
from . import _chromium_guard

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

__all__ = ["BrowserLauncher", "expected_chromium_version", "find_system_chromium"]

log = logging.getLogger("crawlkit.browser")

SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome", "chrome")
# Chromium's major version moves every four weeks; Playwright speaks the DevTools protocol of the
# one it was made for, and in practice a few releases either side work.
FAR_MAJORS = 4
# Chromium in a container: /dev/shm is often 64 MB, too small for its shared memory.
CHROMIUM_ARGS = ("--disable-dev-shm-usage",)
# Seconds between two scans of the browser's process tree. A scan reads every /proc/PID/stat
# (milliseconds, more on a busy machine), so it runs in a thread, never in the event loop.
SCAN_INTERVAL = 2.0


def find_system_chromium() -> str | None:
    for name in SYSTEM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def expected_chromium_version() -> str | None:
    """The Chromium version this Playwright was made for (from its ``browsers.json``)."""
    try:
        import playwright

        data = json.loads((Path(playwright.__file__).parent / "driver/package/browsers.json").read_text())
        for browser in data["browsers"]:
            if browser["name"] == "chromium":
                return str(browser["browserVersion"])
    except (ImportError, OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _major(version: str) -> int | None:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else None


def import_playwright() -> type:
    """``async_playwright``, or a ConfigError that says how to install it."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        raise ConfigError(
            "rendering needs Playwright: pip install 'crawlkit[browser]' "
            "(and a Chromium: 'playwright install chromium', or the system's chromium package)"
        ) from exc
    return async_playwright  # type: ignore[return-value]


class BrowserLauncher:
    """Playwright's driver and one Chromium at a time, launched on demand and relaunched.

    ``browser()`` gives the running browser, launching it when there is none or it died;
    ``restart()`` closes it (the next ``browser()`` launches a new one); ``close()`` ends both.
    One launcher may serve several ``BrowserFetcher`` in turn (the tests share one).
    """

    def __init__(self, executable: str = "", *, args: tuple[str, ...] = ()) -> None:
        self._configured = executable
        self._args = args
        self._pw: Playwright | None = None
        self._browser: Browser | None = None
        self._lock = asyncio.Lock()
        self._dir: Path | None = None
        self._wrapper: Path | None = None
        self._guard_pid: int | None = None
        self._pids: list[int] = []
        self._pss = 0
        self._watcher: asyncio.Task[None] | None = None
        self.executable = ""
        self.source = ""  # "browser_executable", "playwright" or "system"
        self.version = ""
        self.launches = 0
        # Changes whenever a browser is given up (closed, crashed): what was opened in it is gone.
        self.generation = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._pw is not None:
            return
        async_playwright = import_playwright()
        self._pw = await async_playwright().start()
        try:
            self.executable, self.source = self._find(self._pw)
            self._dir = Path(tempfile.mkdtemp(prefix="crawlkit-browser-"))
            self._wrapper = self._write_wrapper(self._dir, self.executable)
        except BaseException:
            await self._pw.stop()
            self._pw = None
            raise

    def _find(self, pw: Playwright) -> tuple[str, str]:
        if self._configured:
            path = shutil.which(self._configured) or self._configured
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                raise ConfigError(f"browser_executable {self._configured!r} is not an executable file")
            return path, "browser_executable"
        own = pw.chromium.executable_path
        if own and os.access(own, os.X_OK):
            return own, "playwright"
        system = find_system_chromium()
        if system:
            return system, "system"
        raise ConfigError(
            "no Chromium found: install Playwright's ('playwright install chromium') or the system's "
            "(Debian: apt-get install chromium), or name one with the browser_executable setting"
        )

    @staticmethod
    def _write_wrapper(directory: Path, executable: str) -> Path:
        python = sys.executable or "python3"
        guard = _chromium_guard.__file__
        wrapper = directory / "chromium"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec {shlex.quote(python)} -I -S {shlex.quote(guard)} "
            f'{_chromium_guard.OWNER_FLAG}{os.getpid()} {shlex.quote(executable)} "$@"\n'
        )
        wrapper.chmod(0o700)
        return wrapper

    async def browser(self) -> Browser:
        """The running browser; launched now if there is none, or if the last one died."""
        browser = self._browser
        if browser is not None and browser.is_connected():
            return browser
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("the browser died (%s); starting a new one", self._describe())
                await self._drop()
            return await self._launch()

    async def _launch(self) -> Browser:
        await self.start()
        assert self._pw is not None and self._dir is not None and self._wrapper is not None
        pidfile = self._dir / f"guard-{self.launches}.pid"
        started = time.monotonic()
        browser = await self._pw.chromium.launch(
            executable_path=str(self._wrapper),
            args=[*CHROMIUM_ARGS, *self._args, f"{_chromium_guard.PIDFILE_FLAG}{pidfile}"],
            headless=True,
            # The crawl decides what Ctrl-C and SIGTERM do; the guard makes sure nothing is left.
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
        )
        self._browser = browser
        self.launches += 1
        with contextlib.suppress(OSError, ValueError):
            self._guard_pid = int(pidfile.read_text())
        if self._guard_pid is not None:
            await self.scan()
            self._watcher = asyncio.create_task(self._watch(), name="browser-processes")
        first = not self.version
        self.version = browser.version
        if first:
            self._log_version(time.monotonic() - started)
        return browser

    def _log_version(self, took: float) -> None:
        expected = expected_chromium_version()
        log.info(
            "browser: Chromium %s (%s: %s), started in %.1f s",
            self.version,
            self.source,
            self.executable,
            took,
        )
        have, want = _major(self.version), _major(expected or "")
        if have is not None and want is not None and abs(have - want) > FAR_MAJORS:
            log.warning(
                "browser: Chromium %s is far from %s, the version this Playwright was made for; "
                "rendering may fail in odd ways (install Playwright's: 'playwright install chromium', "
                "or a Playwright that matches)",
                self.version,
                expected,
            )

    def _describe(self) -> str:
        return f"Chromium {self.version}, pid {self._guard_pid}"

    async def restart(self, reason: str) -> None:
        """Close the running browser (the next ``browser()`` launches another)."""
        async with self._lock:
            if self._browser is not None:
                log.warning("browser: restarting (%s; %s)", reason, self._describe())
                await self._drop()

    async def _drop(self, grace: float = 5.0) -> None:
        browser, guard = self._browser, self._guard_pid
        self._browser, self._guard_pid, self._pids, self._pss = None, None, [], 0
        self.generation += 1
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), grace)
            except Exception:  # a hung or dead browser: its guard kills the tree below
                log.debug("browser: close failed", exc_info=True)
        if guard is not None:
            # Gone already when the close worked; when it did not, the guard kills the tree.
            with contextlib.suppress(ProcessLookupError):
                os.kill(guard, signal.SIGTERM)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
            if self._pw is not None:
                pw, self._pw = self._pw, None
                with contextlib.suppress(Exception):
                    await pw.stop()
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    async def __aenter__(self) -> BrowserLauncher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- processes -------------------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(SCAN_INTERVAL)
            await self.scan()

    async def scan(self) -> None:
        """Find the browser's processes again and measure them (in a thread)."""
        guard = self._guard_pid
        if guard is None:
            return
        pids, pss = await asyncio.to_thread(_scan, guard)
        if guard == self._guard_pid:  # not relaunched meanwhile
            self._pids, self._pss = pids, pss

    def pids(self) -> list[int]:
        """The browser's processes, the guard first, as of the last scan (every 2 s)."""
        return list(self._pids)

    def rss_bytes(self) -> int:
        """Resident memory of the browser's processes added up, read now.

        Chromium's processes share most of their pages, which this counts once per process:
        ``memory_bytes()`` is closer to what the browser really holds.
        """
        return sum(rss_bytes(pid) or 0 for pid in self._pids)

    def memory_bytes(self) -> int:
        """What the browser's processes hold, shared pages divided among them (PSS; last scan).

        Falls back to ``rss_bytes()`` where /proc has no ``smaps_rollup``.
        """
        return self._pss or self.rss_bytes()


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _scan(guard: int) -> tuple[list[int], int]:
    pids = [guard, *_chromium_guard._descendants(guard)]
    return pids, sum(_pss(pid) for pid in pids)
