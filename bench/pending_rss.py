#!/usr/bin/env python3
"""Peak memory of a real crawl's main process with 1,000,000 requests pending.

A spider's ``start_requests()`` yields N requests (over 1,000 hosts' worth of distinct paths on one
local server that answers slowly), so nearly all of them stay pending; the crawl is stopped by
``close_after_seconds`` once seeding has had time to finish. The main process's peak RSS (VmHWM)
is read from /proc just before it exits.

    .venv/bin/python bench/pending_rss.py --n 1000000 --frontier sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web

SPIDER = """
from crawlkit import Request, Spider


class Pending(Spider):
    name = "pending"
    base = ""
    n = "0"

    def start_requests(self):
        for i in range(int(self.n)):
            yield Request(f"{self.base}/host-{i % 1000}/page-{i}.html")

    def parse(self, response):
        return None
"""


def serve(port_box: list[int], stop: threading.Event) -> None:
    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="<html><body>ok</body></html>", content_type="text/html")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_box.append(runner.addresses[0][1])
        await asyncio.to_thread(stop.wait)  # a threading.Event: set by the main thread
        await runner.cleanup()

    asyncio.run(main())


def vm(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--frontier", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--seconds", type=float, default=0, help="crawl time (default: enough to seed)")
    args = ap.parse_args()
    port_box: list[int] = []
    stop = threading.Event()
    server = threading.Thread(target=serve, args=(port_box, stop), daemon=True)
    server.start()
    while not port_box:
        time.sleep(0.05)
    seconds = args.seconds or max(20.0, args.n / 25_000)
    with tempfile.TemporaryDirectory(prefix="pending-rss-") as tmp:
        spider = Path(tmp) / "pending_spider.py"
        spider.write_text(SPIDER)
        cmd = [
            sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", f"{tmp}/out.jsonl",
            "-a", f"base=http://127.0.0.1:{port_box[0]}", "-a", f"n={args.n}",
            "--frontier", args.frontier, "--job-dir", f"{tmp}/job", "--concurrency", "4",
            "-s", "obey_robots=false", "-s", "progress=off", "-s", f"close_after_seconds={seconds}",
            "--log-level", "WARNING",
        ]  # fmt: skip
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, vm(proc.pid, "VmHWM"))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.2)
        _, err = proc.communicate()
        took = time.monotonic() - started
    stop.set()
    queued = [line for line in err.splitlines() if "requests queued" in line]
    print(f"frontier={args.frontier} n={args.n}: main process peak RSS {peak} MB; {took:.1f} s; "
          f"{queued[0].strip() if queued else 'no summary'}")  # fmt: skip
    return 0 if proc.returncode in (0, 1) else proc.returncode


if __name__ == "__main__":
    os.environ.pop("CRAWLKIT_FRONTIER", None)
    sys.exit(main())
