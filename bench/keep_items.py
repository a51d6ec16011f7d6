#!/usr/bin/env python3
"""What keeping each page's items costs a crawl (``keep_items``), and what ``--recrawl-output all`` costs.

    bench/keep_items.py                          # 10,000 products, 3 rounds
    bench/keep_items.py --n 1000 --rounds 1      # a quick check

The benchmark shop (bench/run's site, nginx on 127.0.0.1) is crawled with bench/run's crawlkit
contender and contract settings, sqlite frontier, interleaved in each round, each from an empty
job folder:

* ``pages``: ``-s keep_pages=true -s keep_items=false``: page records only;
* ``pages+items``: ``-s keep_pages=true``: page records and each page's items (the default);

then, on the job ``pages+items`` left, two re-crawls of the unchanged site (nginx answers the
conditional requests with 304): ``recrawl``, which writes nothing, and ``recrawl-all``
(``--recrawl-output all``), which writes every item from the job's store, validated against the
site's manifest as the first crawls' outputs are.

CPU is the crawl's whole process tree (``RUSAGE_CHILDREN``: the main process and its parser
workers), per page; wall times on a shared machine are noise, CPU per page much less so.
Raw data goes to ``bench/.work/keep-items-STAMP.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: the contract, nginx, the site and its checks

CRAWLS = {
    "pages": ["-s", "keep_pages=true", "-s", "keep_items=false"],
    "pages+items": ["-s", "keep_pages=true"],
}
RECRAWLS = {"recrawl": ["--recrawl"], "recrawl-all": ["--recrawl", "--recrawl-output", "all"]}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="products in the shop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    runner.ensure_tools()
    site = runner.ensure_site(args.n, 42)
    manifest, expected = runner.load_expected(site)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = runner.WORK / f"keep-items-{stamp}"
    work.mkdir(parents=True)
    port = runner.free_port()
    runs: list[dict[str, Any]] = []
    with runner.Nginx(port, site):
        start_url = f"http://127.0.0.1:{port}/index.html"

        def run(way: str, job: Path, extra: list[str], round_no: int, *, expect_items: bool) -> None:
            out, stats = work / f"{way}.jsonl", work / f"{way}-stats.json"
            command = runner.crawlkit_command(
                BENCH / "contenders" / "crawlkit_spider.py",
                out,
                start_url,
                args.concurrency,
                "sqlite",
                job,
                extra=[*extra, "--stats-file", str(stats), "--progress", "off"],
            )
            cpu0, started = children_cpu(), time.monotonic()
            done = subprocess.run(command, capture_output=True, text=True)
            wall, cpu = time.monotonic() - started, children_cpu() - cpu0
            if expect_items:
                count, problems = runner.validate(out, manifest, expected)
            else:
                count = len(out.read_bytes().splitlines()) if out.exists() else 0
                problems = [f"{count} items written, none expected"] if count else []
            figures = json.loads(stats.read_text()) if stats.exists() else {}
            pages = figures.get("pages") or 0
            record = {
                "round": round_no,
                "way": way,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "pages": pages,
                "cpu_ms_per_page": round(1000 * cpu / max(pages, 1), 4),
                "items": count,
                "valid": done.returncode == 0 and not problems,
                "recrawl": figures.get("recrawl"),
                "problems": problems[:5] + ([done.stderr[-2000:]] if done.returncode else []),
            }
            runs.append(record)
            print(
                f"round {round_no} {way:<12} wall {wall:6.2f} s  CPU {cpu:6.2f} s  "
                f"{record['cpu_ms_per_page']:.3f} ms/page  items {count}"
                f"{'' if record['valid'] else '  INVALID'}",
                file=sys.stderr,
            )

        for round_no in range(1, args.rounds + 1):
            for way, extra in CRAWLS.items():
                job = work / f"job-{way}"
                shutil.rmtree(job, ignore_errors=True)
                run(way, job, extra, round_no, expect_items=True)
            for way, extra in RECRAWLS.items():
                run(way, work / "job-pages+items", extra, round_no, expect_items=way == "recrawl-all")
    print(f"\n{args.n} products, {args.rounds} rounds, concurrency {args.concurrency} (medians)")
    print(f"{'way':<12} {'wall s':>8} {'CPU s':>8} {'CPU ms/page':>12}")
    for way in (*CRAWLS, *RECRAWLS):
        valid = [r for r in runs if r["way"] == way and r["valid"]]
        if not valid:
            print(f"{way:<12} INVALID")
            continue
        wall = statistics.median(r["wall_s"] for r in valid)
        cpu = statistics.median(r["cpu_s"] for r in valid)
        per_page = statistics.median(r["cpu_ms_per_page"] for r in valid)
        print(f"{way:<12} {wall:8.2f} {cpu:8.2f} {per_page:12.3f}")
    (runner.WORK / f"keep-items-{stamp}.json").write_text(json.dumps(runs, indent=2))
    return 0 if all(r["valid"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
