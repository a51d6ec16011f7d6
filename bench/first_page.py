#!/usr/bin/env python3
"""A fresh crawl of two pages, from the command to its first request and to its exit.

    .venv/bin/python bench/first_page.py --rounds 20
    .venv/bin/python bench/first_page.py --rounds 20 --tree base=../wt-base   # and another checkout
    .venv/bin/python bench/first_page.py --rounds 20 --loop                   # and the hand-written loop

What a user waits for before anything happens, and what a crawl of a handful of pages costs:
the benchmark spider (``contenders/crawlkit_spider.py``) on a server in this process that answers
every path with a small page linking one more, robots.txt off, the durable frontier in a fresh
job. Measured from just before the command is spawned, on this process's monotonic clock:

* **first request**: when the server (a thread here) sees the crawl's first request;
* **exit**: when the command has exited, its two pages crawled and its output written.

With ``--tree LABEL=PATH`` each round runs this checkout and every tree, the order turned every
other round (``PYTHONPATH=PATH/src``, the same interpreter); with ``--loop``, the benchmark's
hand-written loop (``contenders/baseline.py`` in bench/run's ``venv-base``, made if missing) on
the same two pages, which is what crawlkit's start-up is up against. The table gives medians,
minima and the median of each round's ratio to this checkout. The server listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: the contenders' virtualenvs

SPIDER = BENCH / "contenders" / "crawlkit_spider.py"
PAGE = b"<html><body><ul><li class='next'><a href='/page-2.html'>next</a></li></ul></body></html>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    first_request: float | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.server.first_request is None:
            self.server.first_request = time.monotonic()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: object) -> None:
        pass


LOOP = "the loop"


def one_crawl(server: _Server, src: Path, work: Path) -> tuple[float, float]:
    """Seconds from the spawn to the first request and to the exit."""
    job = Path(tempfile.mkdtemp(prefix="first-page-", dir=work))
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    if src == Path(LOOP):
        python = runner.WORK / "venv-base" / "bin" / "python"
        argv = [str(python), str(BENCH / "contenders" / "baseline.py"), url, str(job / "items.jsonl")]
        env = dict(os.environ)
    else:
        argv = [sys.executable, "-m", "crawlkit", "runspider", str(SPIDER), "-o", str(job / "items.jsonl")]
        argv += ["-a", f"start_url={url}", "-s", "obey_robots=false", "--frontier", "sqlite"]
        argv += ["--job-dir", str(job / "job"), "--overwrite", "--log-level", "WARNING"]
        env = dict(os.environ, PYTHONPATH=str(src))
    server.first_request = None
    began = time.monotonic()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ended = time.monotonic()
    if done.returncode != 0 or server.first_request is None:
        raise SystemExit(f"the crawl failed (exit code {done.returncode}):\n{done.stderr}")
    return server.first_request - began, ended - began


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--loop", action="store_true", help="the hand-written loop too")
    args = ap.parse_args(argv)
    runner.compile_crawlkit()  # a tree run without its bytecode would time the compiler
    trees = {"this": REPO / "src"}
    trees.update(runner.tree_source(tree) for tree in args.tree)
    if args.loop:
        runner.ensure_venv("venv-base")
        trees[LOOP] = Path(LOOP)
    work = BENCH / ".work"
    work.mkdir(exist_ok=True)
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    times: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
    try:
        with tempfile.TemporaryDirectory(prefix="first-page-", dir=work) as tmp:
            for round_ in range(args.rounds):
                order = list(trees.items())
                for label, src in order if round_ % 2 == 0 else order[::-1]:
                    times[label].append(one_crawl(server, src, Path(tmp)))
    finally:
        server.shutdown()
    print(f"{args.rounds} rounds, a fresh two-page crawl, ms from the spawn (median, min)\n")
    print("| tree | first request | exit | first request vs this | exit vs this |")
    print("|---|---|---|---|---|")
    for label, runs in times.items():
        first = [f for f, _ in runs]
        exits = [e for _, e in runs]
        ratios = [
            statistics.median(a[i] / b[i] for a, b in zip(runs, times["this"], strict=True)) for i in (0, 1)
        ]
        print(
            f"| {label} | {statistics.median(first) * 1000:.0f} ({min(first) * 1000:.0f}) "
            f"| {statistics.median(exits) * 1000:.0f} ({min(exits) * 1000:.0f}) "
            f"| {ratios[0]:.3f} | {ratios[1]:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
