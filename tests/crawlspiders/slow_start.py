"""A spider whose parser workers are slow to start and whose ``opened()`` hook fails at once.

Imported in a parser worker, this module takes 1.5 s (a spider with heavy imports), so that the
hook runs, and fails, while the workers are still starting.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crawlkit import Request, Response, Spider

if Path(sys.argv[0]).parts[-2:] == ("parsing", "__main__.py"):  # a parser worker
    time.sleep(1.5)


def parser_workers_of(pid: int) -> set[int]:
    """The live ``crawlkit.parsing`` children of process ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"crawlkit.parsing" in cmdline:
            found.add(int(entry.name))
    return found


class OpenedFails(Spider):
    name = "opened-fails"
    base = ""
    workers_at_open: set[int] = set()

    def start_requests(self) -> Iterator[Request]:
        yield Request(f"{self.base}/ok")

    async def opened(self) -> None:
        import os

        type(self).workers_at_open = parser_workers_of(os.getpid())
        raise RuntimeError("opened() failed")

    def parse(self, response: Response) -> Iterator[Any]:
        yield {"url": response.url}
