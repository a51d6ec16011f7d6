#!/usr/bin/env python3
"""What iterating on a callback against the HTTP cache is worth: a replay from the cache vs live.

    bench/cache_replay.py                          # 10,000 products, 3 rounds
    bench/cache_replay.py --n 1000 --rounds 1      # a quick check

The benchmark shop (bench/run's site, served by nginx on 127.0.0.1 through bench/serve.sh) is
crawled with bench/run's crawlkit contender and contract settings, sqlite frontier, in three ways,
interleaved in each round:

* ``live``: no cache, as bench/run's crawlkit-sqlite;
* ``live+cache``: ``--cache --fresh``, the cache emptied first (``crawlkit cache --purge``):
  what storing every response costs;
* ``replay``: ``--offline --fresh`` from the cache the previous run filled: the fast path of
  docs/recrawl.md, no request reaching nginx.

Every output is validated against the site's manifest (``runner.validate``). For each way it
prints the median wall time and pages/s (the crawl's own figure, from ``--stats-file``), and the
raw data goes to ``bench/.work/cache-replay-STAMP.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: the contract, nginx, the site and its checks

WAYS = {"live": [], "live+cache": ["--cache", "--fresh"], "replay": ["--offline", "--fresh"]}


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
    work = runner.WORK / f"cache-replay-{stamp}"
    work.mkdir(parents=True)
    job = work / "job"
    port = runner.free_port()
    runs: list[dict[str, Any]] = []
    with runner.Nginx(port, site):
        start_url = f"http://127.0.0.1:{port}/index.html"
        for round_no in range(1, args.rounds + 1):
            for way, extra in WAYS.items():
                if way == "live+cache" and (job / "cache.sqlite").exists():
                    subprocess.run([runner.crawlkit_bin(), "cache", str(job), "--purge"], check=True)
                out, stats = work / f"{way}.jsonl", work / f"{way}-stats.json"
                command = runner.crawlkit_command(
                    BENCH / "contenders" / "crawlkit_spider.py",
                    out,
                    start_url,
                    args.concurrency,
                    "sqlite",
                    job if way != "live" else work / "job-live",
                    extra=[*extra, "--fresh", "--stats-file", str(stats), "--progress", "off"],
                )
                started = time.monotonic()
                done = subprocess.run(command, capture_output=True, text=True)
                wall = time.monotonic() - started
                count, problems = runner.validate(out, manifest, expected)
                figures = json.loads(stats.read_text()) if stats.exists() else {}
                run = {
                    "round": round_no,
                    "way": way,
                    "wall_s": round(wall, 3),
                    "items": count,
                    "valid": done.returncode == 0 and not problems,
                    "pages": figures.get("pages"),
                    "pages_per_s": figures.get("pages_per_s"),
                    "cache": figures.get("cache"),
                    "problems": problems[:5] + ([done.stderr[-2000:]] if done.returncode else []),
                }
                runs.append(run)
                print(
                    f"round {round_no} {way:<11} {wall:6.2f} s  {figures.get('pages_per_s', 0):8.1f} pages/s"
                    f"  items {count}{'' if run['valid'] else '  INVALID'}",
                    file=sys.stderr,
                )
    print(f"\n{args.n} products, {args.rounds} rounds, concurrency {args.concurrency} (medians)")
    print(f"{'way':<11} {'wall s':>8} {'pages/s':>9}")
    for way in WAYS:
        valid = [r for r in runs if r["way"] == way and r["valid"]]
        if not valid:
            print(f"{way:<11} INVALID")
            continue
        wall = statistics.median(r["wall_s"] for r in valid)
        rate = statistics.median(r["pages_per_s"] or 0 for r in valid)
        print(f"{way:<11} {wall:8.2f} {rate:9.1f}")
    (runner.WORK / f"cache-replay-{stamp}.json").write_text(json.dumps(runs, indent=2))
    return 0 if all(r["valid"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
