"""How far the shop's listing chain has got while the products are crawled (a diagnostic).

    bench/chain.py                          # 10,000 products, the durable frontier
    bench/chain.py --n 50000 --frontier memory

The shop's listing pages are reachable only one from the next (``li.next a``), so a crawl of it
ends fetching whatever listings are left one at a time. This runs one crawl of the benchmark site
(contract settings, nginx on 127.0.0.1) with ``contenders/timeline_spider.py``, which stamps every
page with the time it was parsed, and prints how many listings were behind the crawl when 10 %,
25 %, 50 %, 75 % and 90 % of the products were, and how long the crawl went on after its last
product page. A mechanism to look at, with far less noise than a wall time; not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: the site, nginx, the contract settings

SPIDER = BENCH / "contenders" / "timeline_spider.py"


def crawl(n: int, frontier: str, concurrency: int) -> tuple[list[float], list[float], float]:
    """Parse times of the listings and of the products (from the first parse), and the wall time."""
    site = runner.ensure_site(n, 42)
    runner.compile_crawlkit()
    tmp = runner.work_tmp("chain-")
    out = tmp / "items.jsonl"
    with runner.Nginx(runner.free_port(), site) as server:
        runner.warm_page_cache(site)
        start_url = f"http://127.0.0.1:{server.port}/index.html"
        argv = runner.crawlkit_command(SPIDER, out, start_url, concurrency, frontier, tmp / "job")
        began = time.monotonic()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"the crawl failed (exit code {done.returncode}):\n{done.stderr}")
    rows = [json.loads(line) for line in out.read_bytes().splitlines()]
    start = min(row["t"] for row in rows)
    listings = sorted(row["t"] - start for row in rows if "listing" in row)
    products = sorted(row["t"] - start for row in rows if "listing" not in row)
    if len(products) != n:
        raise SystemExit(f"expected {n} products, got {len(products)}: see {out}")
    return listings, products, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="products on the site (default 10,000)")
    ap.add_argument("--frontier", default="sqlite", help="sqlite (default) or memory")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args(argv)
    listings, products, wall = crawl(args.n, args.frontier, args.concurrency)
    print(f"{args.n:,} products, {len(listings)} listing pages, --frontier {args.frontier}: {wall:.2f} s")
    print("\n| products parsed | by (s) | listings parsed by then |\n|---|---|---|")
    for share in (0.10, 0.25, 0.50, 0.75, 0.90):
        at = products[min(len(products) - 1, int(share * len(products)))]
        behind = sum(1 for t in listings if t <= at)
        print(f"| {share:.0%} | {at:.2f} | {behind} of {len(listings)} |")
    nearly_all = products[int(0.99 * len(products))]
    tail = [t for t in listings if t > nearly_all]
    print(
        f"\nAfter 99 % of the products ({nearly_all:.2f} s): {len(tail)} listing pages, in"
        f" {listings[-1] - nearly_all:.2f} s; the last product at {products[-1]:.2f} s."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
