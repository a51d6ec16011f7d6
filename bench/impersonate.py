"""What the impersonating fetcher (curl_cffi) costs per page, against the aiohttp fetcher.

    .venv/bin/python bench/impersonate.py --n 10000 --rounds 3

The benchmark shop (``bench/site.py``, generated into ``bench/.work/site-N`` unless there) is
served by ``bench/delay_server.py`` (no added latency) in a process of its own. Each round runs
both crawls, in turn and in alternating order, as ``crawlkit runspider
bench/contenders/crawlkit_spider.py`` (memory frontier, 64/64 concurrency, robots.txt off):

* ``aiohttp``: the default fetcher;
* ``impersonate``: ``fetcher = "impersonate"`` (Chrome's handshake, honest headers).

CPU is user + system time of the crawl's process tree (the main process and its parser workers,
from ``wait4``), so the parsing both crawls share is in both figures; pages/s is items over wall
time. The site is plain HTTP on loopback: what is measured is each client's cost per request and
response. A TLS handshake, which curl makes the browser's way, is paid once per connection, and
both clients keep connections alive.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from identities import site_dir, started, stopped

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SPIDER = HERE / "contenders" / "crawlkit_spider.py"
FETCHERS = ("aiohttp", "impersonate")


def crawl(site_port: int, out: Path, fetcher: str) -> tuple[float, float, int]:
    """One crawl: (wall seconds, CPU seconds of its process tree, items written)."""
    cmd = [
        PY, "-m", "crawlkit", "runspider", str(SPIDER), "-o", str(out), "--overwrite",
        "-a", f"start_url=http://127.0.0.1:{site_port}/index.html",
        "-s", "concurrency=64", "-s", "concurrency_per_host=64", "--frontier", "memory",
        "-s", "obey_robots=false", "--log-level", "WARNING", "-s", "progress=off",
        "-s", f"fetcher={fetcher}",
    ]  # fmt: skip
    start = time.monotonic()
    log = out.with_suffix(".log")
    with log.open("wb") as stderr:  # the summary and any error, kept for a look
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"crawl failed with exit code {code} (see {log}): {' '.join(cmd)}")
    items = sum(1 for _ in out.open("rb"))
    return wall, usage.ru_utime + usage.ru_stime, items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="products in the shop (default 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both crawls (default 3)")
    args = ap.parse_args()
    folder = site_dir(args.n)
    out = HERE / ".work" / "impersonate-items.jsonl"
    site, site_port = started([PY, str(HERE / "delay_server.py"), str(folder), "--latency", "0"])
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in FETCHERS}
    try:
        for round_ in range(args.rounds):
            order = FETCHERS if round_ % 2 == 0 else FETCHERS[::-1]
            for name in order:
                wall, cpu, items = crawl(site_port, out, name)
                results[name].append((wall, cpu, items))
                print(
                    f"round {round_ + 1} {name:11} {wall:6.2f} s  CPU {cpu:6.2f} s  {items} items", flush=True
                )
    finally:
        stopped(site)
    print()
    print("| fetcher | wall s (median) | pages/s (median) | CPU s (median) | CPU µs per page | items |")
    print("|---|---|---|---|---|---|")
    per_page: dict[str, float] = {}
    for name, runs in results.items():
        walls = sorted(r[0] for r in runs)
        cpus = sorted(r[1] for r in runs)
        rates = sorted(r[2] / r[0] for r in runs)
        items = runs[0][2]
        wall, cpu, rate = walls[len(walls) // 2], cpus[len(cpus) // 2], rates[len(rates) // 2]
        per_page[name] = cpu / items * 1e6
        print(f"| {name} | {wall:.2f} | {rate:.0f} | {cpu:.2f} | {per_page[name]:.0f} | {items} |")
    print()
    ratio = per_page["impersonate"] / per_page["aiohttp"]
    print(f"impersonate / aiohttp, CPU per page: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
