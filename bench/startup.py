#!/usr/bin/env python3
"""Start-up of a resumed durable job with N requests pending: to the first request, to the first commit.

    .venv/bin/python bench/startup.py --n 1000000 --rounds 3

Once, it builds the job (kept in ``bench/.work/startup-N/``, reused for the same N and hosts,
with the servers on the port its URLs name): a spider whose ``start_requests()`` yields N URLs
over ``--hosts`` hosts (the loopback addresses 127.0.1.1, 127.0.1.2, ...: one server listening
on each, same port) that answer pages slowly (``--latency``) and robots.txt at once with a 404;
the crawl is stopped by ``close_after_seconds`` and run again until its frontier records the
seeding as finished. Then, each round, it resumes that job with the ``crawlkit runspider``
command and measures, from just before the command is spawned:

* **first request**: when the first request of the resumed crawl (robots.txt included) reaches a
  server, on the monotonic clock of this process, which the server threads share;
* **first commit**: when the frontier database's ``meta.checkpointed`` first changes (polled
  every 5 ms through a read-only connection; the database is in WAL mode, so reading never
  blocks the crawl).

Then the crawl's process group is killed: nothing it leased was fetched (the pages take
``--latency`` seconds), and the next open hands every leased row back, so each round resumes the
same job; the crawls' logs go to ``resume.log`` beside it. Standard library and aiohttp only;
everything listens on loopback addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiohttp import web

HERE = Path(__file__).resolve().parent
SPIDER = """
from crawlkit import Request, Spider


class Pending(Spider):
    name = "startup_pending"
    port = "0"
    n = "0"
    hosts = "1"

    def start_requests(self):
        hosts = int(self.hosts)
        for i in range(int(self.n)):
            yield Request(f"http://127.0.1.{1 + i % hosts}:{self.port}/page-{i}.html")

    def parse(self, response):
        return None
"""


class Servers:
    """One aiohttp app listening on 127.0.1.1..127.0.1.H, one port; notes its first request."""

    def __init__(self, hosts: int, latency: float, port: int) -> None:
        self.hosts = hosts
        self.latency = latency
        self.port = port
        self.first: float | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def reset(self) -> None:
        self.first = None

    async def _serve(self) -> None:
        async def page(request: web.Request) -> web.Response:
            if self.first is None:
                self.first = time.monotonic()
            if request.path == "/robots.txt":
                return web.Response(status=404)
            await asyncio.sleep(self.latency)
            return web.Response(text="<html><body>ok</body></html>", content_type="text/html")

        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        first = web.TCPSite(runner, "127.0.1.1", self.port)
        await first.start()
        self.port = int(runner.addresses[0][1])
        for k in range(2, self.hosts + 1):
            await web.TCPSite(runner, f"127.0.1.{k}", self.port).start()
        self._ready.set()
        await asyncio.to_thread(self._stop.wait)
        await runner.cleanup()

    def __enter__(self) -> Servers:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the servers did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def command(work: Path, port: int, n: int, hosts: int, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(work / "startup_spider.py"),
        "-o", str(work / "out.jsonl"), "--job-dir", str(work / "job"), "--frontier", "sqlite",
        "-a", f"port={port}", "-a", f"n={n}", "-a", f"hosts={hosts}",
        "-s", "progress=off", "--log-level", "WARNING", *extra,
    ]  # fmt: skip


def meta(db: Path) -> tuple[float | None, int]:
    """The last checkpoint's time and whether it recorded the seeding as finished."""
    if not db.exists():
        return None, 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        checkpointed, seeded = conn.execute("SELECT checkpointed, seeded FROM meta WHERE id = 1").fetchone()
    return checkpointed, int(seeded or 0)


def built_port(work: Path, n: int, hosts: int) -> int:
    """The port the job's URLs name, if the job in ``work`` is built for ``n`` and ``hosts``; else 0."""
    key = work / "built-for"
    if not key.exists() or not meta(work / "job" / "frontier.sqlite")[1]:
        return 0
    words = key.read_text().split()
    return int(words[2]) if words[:2] == [str(n), str(hosts)] and len(words) == 3 else 0


def build(work: Path, servers: Servers, n: int, hosts: int) -> None:
    """Seed the job until its frontier says the seeding is over; the pages take too long to finish."""
    work.mkdir(parents=True, exist_ok=True)
    key = work / "built-for"
    key.unlink(missing_ok=True)
    (work / "startup_spider.py").write_text(SPIDER)
    for extra in (["--fresh"], [], [], []):
        print(f"building the job: seeding {n:,} requests ...", flush=True)
        started = time.monotonic()
        seconds = str(max(30.0, n / 20_000))
        cmd = command(work, servers.port, n, hosts, "-s", f"close_after_seconds={seconds}", *extra)
        subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  {time.monotonic() - started:.0f} s", flush=True)
        if meta(work / "job" / "frontier.sqlite")[1]:
            key.write_text(f"{n} {hosts} {servers.port}")  # the URLs name the port: resumes reuse it
            return
    raise SystemExit("the job was not seeded after four runs")


def resume_once(
    work: Path, servers: Servers, n: int, hosts: int, timeout: float, extra: list[str]
) -> tuple[float, float]:
    db = work / "job" / "frontier.sqlite"
    before, _ = meta(db)
    servers.reset()
    started = time.monotonic()
    with open(work / "resume.log", "ab") as log:
        proc = subprocess.Popen(
            command(work, servers.port, n, hosts, *extra), start_new_session=True, stdout=log, stderr=log
        )
    committed: float | None = None
    try:
        while time.monotonic() - started < timeout:
            if committed is None:
                try:
                    now, _ = meta(db)
                except sqlite3.OperationalError:
                    now = before  # the crawl has the database locked for a moment
                if now != before:
                    committed = time.monotonic()
            if committed is not None and servers.first is not None:
                break
            if proc.poll() is not None:
                raise SystemExit(f"the resumed crawl exited ({proc.returncode}) before its first commit")
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the crawl's own process group: it and its workers
        proc.wait()
    if committed is None or servers.first is None:
        raise SystemExit(f"no first request or commit within {timeout} s")
    return servers.first - started, committed - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="requests pending (default 1,000,000)")
    ap.add_argument("--hosts", type=int, default=100, help="hosts they are spread over (at most 250)")
    ap.add_argument("--latency", type=float, default=60.0, help="seconds a page takes to answer")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a resume may take")
    ap.add_argument("-s", dest="settings", action="append", default=[], help="KEY=VALUE for the resumes")
    args = ap.parse_args()
    work = HERE / ".work" / f"startup-{args.n}"
    port = built_port(work, args.n, args.hosts)
    with Servers(args.hosts, args.latency, port) as servers:
        if not port:
            build(work, servers, args.n, args.hosts)
        firsts, commits = [], []
        for r in range(args.rounds):
            extra = [arg for kv in args.settings for arg in ("-s", kv)]
            first, commit = resume_once(work, servers, args.n, args.hosts, args.timeout, extra)
            firsts.append(first)
            commits.append(commit)
            print(f"round {r + 1}: first request {first:.3f} s, first commit {commit:.3f} s", flush=True)
    print(
        f"n={args.n:,} pending over {args.hosts} hosts, {args.rounds} rounds: median first request "
        f"{statistics.median(firsts):.3f} s, median first commit {statistics.median(commits):.3f} s"
    )
    return 0


if __name__ == "__main__":
    os.environ.pop("CRAWLKIT_FRONTIER", None)
    sys.exit(main())
