"""Runs Chromium so that it cannot outlive the crawl that started it.

Playwright starts "the browser" through a small shell wrapper (written by ``_browser_launch``)
that executes this file with the standard library only (``python -I -S``), so it starts in a few
tens of milliseconds and imports nothing of crawlkit. This process is what Playwright thinks the
browser is: it forks the real Chromium with the same arguments and file descriptors (Playwright
talks to it over fds 3 and 4, ``--remote-debugging-pipe``), and then waits for one of:

- Chromium exits (Playwright closed it, or it crashed): what it left behind is killed, and this
  process exits with Chromium's status;
- the crawl process (``--crawlkit-owner``) is gone, even by ``kill -9``: a pidfd says so at once;
- its parent, Playwright's driver, is gone (``PR_SET_PDEATHSIG`` sends SIGTERM), or SIGTERM:
  Chromium's whole tree is killed and the profile directory Playwright made is removed.

Why this and not only a process group: Chromium's helpers (zygotes, renderers, the crash
handler) may leave the group, and Playwright's driver cleans up only when it gets the chance.
This process is a child subreaper, so every descendant that loses its parent becomes its child,
stays findable under it, and is reaped here rather than left as a zombie. Chromium itself gets
``PR_SET_PDEATHSIG`` (SIGKILL): should this process be killed, Chromium follows.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
OWNER_FLAG = "--crawlkit-owner="
PIDFILE_FLAG = "--crawlkit-pidfile="
PROFILE_FLAG = "--user-data-dir="


class _Stop(Exception):
    """Raised by the SIGTERM handler, to leave the wait."""


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(option, value, 0, 0, 0)


def _ppids() -> dict[int, int]:
    """Every process's parent, read from /proc (there is no children list on every kernel)."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow its last ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(name)] = int(fields[1])
    return parents


def _descendants(root: int) -> list[int]:
    parents = _ppids()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_tree(deadline: float = 5.0) -> None:
    """SIGKILL every descendant of this process and reap them, until none is left."""
    me = os.getpid()
    until = time.monotonic() + deadline
    while True:
        left = _descendants(me)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap_all()
        if not left or time.monotonic() > until:
            return
        time.sleep(0.02)


def _remove(folder: str, patience: float = 2.0) -> None:
    """Remove ``folder``, again while something still writes into it.

    ``rmtree`` gives up quietly on a folder that gains files while it walks it (a helper of
    Chromium's that was still flushing its profile when the tree was killed): it is walked again
    until it is gone, or ``patience`` seconds have passed.
    """
    until = time.monotonic() + patience
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        if not os.path.lexists(folder) or time.monotonic() > until:
            return
        time.sleep(0.02)


def _on_sigterm(signum: int, frame: object) -> None:
    raise _Stop


def main(argv: list[str]) -> int:
    owner = 0
    pidfile = ""
    profile = ""
    args: list[str] = []
    for arg in argv[1:]:
        if arg.startswith(OWNER_FLAG):
            owner = int(arg[len(OWNER_FLAG) :])
        elif arg.startswith(PIDFILE_FLAG):
            pidfile = arg[len(PIDFILE_FLAG) :]
        else:
            if arg.startswith(PROFILE_FLAG):
                profile = arg[len(PROFILE_FLAG) :]
            args.append(arg)
    if not args:
        print("usage: _chromium_guard.py CHROMIUM [--crawlkit-owner=PID] [ARGS...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    # Watch the owner first: if it is gone already, Chromium is not started at all.
    try:
        owner_fd = os.pidfd_open(owner) if owner else -1
    except ProcessLookupError:
        return 1
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(pidfile + ".tmp", pidfile)
    me = os.getpid()
    child = os.fork()
    if child == 0:  # Chromium: dies with this process, keeps every inherited fd (3 and 4 above all)
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != me:
                os._exit(1)
            os.execv(args[0], args)
        finally:
            os._exit(127)
    status = 1
    abandoned = False  # the crawl or the driver is gone: nobody else will clean up
    try:
        child_fd = os.pidfd_open(child)
        poller = select.poll()
        poller.register(child_fd, select.POLLIN)
        if owner_fd >= 0:
            poller.register(owner_fd, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if child_fd in ready:
                _, raw = os.waitpid(child, 0)
                status = os.waitstatus_to_exitcode(raw)
                status = status if status >= 0 else 128 - status
                break
            if owner_fd in ready:
                abandoned = True
                break
    except _Stop:
        abandoned = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        kill_tree()
        if abandoned:
            # Playwright's driver removes the profile it made, and the crawl its launcher's
            # folder, when they can; not when the crawl died under them.
            if profile:
                _remove(profile)
            folder = os.path.dirname(pidfile)
            if pidfile and os.path.basename(folder).startswith("crawlkit-browser-"):
                shutil.rmtree(folder, ignore_errors=True)
        if pidfile:
            with contextlib.suppress(OSError):
                os.unlink(pidfile)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
