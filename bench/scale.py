#!/usr/bin/env python3
"""Does the cost per page hold as the crawl grows? Two site sizes in one run, interleaved.

    bench/scale.py                                     # 10,000 and 50,000 products, 3 rounds
    bench/scale.py --sizes 1000,10000 --rounds 1       # a quick check

``bench/run`` measures one size a session, and this machine's speed drifts by tens of per cent
within minutes: a 50,000-page session compared with a 10,000-page one from another half hour shows
the host as much as the crawler. Here both sizes run in the same rounds, each served by its own
nginx (bench/serve.sh, 127.0.0.1), the order of the sizes turned round every other round (small
first, then big first) so that a drift through the session weighs on both alike. The contenders and
their checks are bench/run's (``runner.run_once``): every output is validated against its site's
manifest, and an invalid run counts for nothing.

For each contender it prints the medians of wall time and CPU time per page at each size and the
ratio of the biggest size to the smallest; the hand-written loop (``baseline``, on by default) is
the control, since the size changes what any crawler pays per page: more bytes in the page cache
and a bigger set of seen URLs, but a start and an end that weigh less. The raw data goes to
``bench/.work/scale-STAMP.json``.
"""

# The table uses typographic characters on purpose (multiplication signs for ratios).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: contenders, nginx, timed and validated runs

log = runner.log
DEFAULT_CONTENDERS = "crawlkit-sqlite,crawlkit-memory,baseline"


def size_order(sizes: list[int], round_no: int) -> list[int]:
    """Small to big in odd rounds, big to small in even ones."""
    return sizes if round_no % 2 else sizes[::-1]


def per_page(runs: list[dict[str, Any]], pages: int) -> dict[str, float] | None:
    """Median wall and CPU milliseconds per page of the valid ``runs``, or None if there are none."""
    ok = [r for r in runs if r["valid"]]
    if not ok:
        return None
    return {
        "wall_ms": 1000 * statistics.median(r["wall_s"] for r in ok) / pages,
        "cpu_ms": 1000 * statistics.median(r["cpu_s"] for r in ok) / pages,
        "main_rss_mb": statistics.median(r["main_peak_rss_mb"] for r in ok),
        "valid_runs": len(ok),
    }


def summarize(runs: list[dict[str, Any]], names: list[str], pages: dict[int, int]) -> list[dict[str, Any]]:
    """A row per contender: its figures per size, and the biggest size's over the smallest's."""
    small, big = min(pages), max(pages)
    rows = []
    for name in names:
        row: dict[str, Any] = {"contender": name, "sizes": {}}
        for n, total in pages.items():
            mine = [r for r in runs if r["contender"] == name and r["n"] == n]
            row["sizes"][n] = {"runs": len(mine), "figures": per_page(mine, total)}
        low, high = row["sizes"][small]["figures"], row["sizes"][big]["figures"]
        if low and high:
            row["wall_ratio"] = high["wall_ms"] / low["wall_ms"]
            row["cpu_ratio"] = high["cpu_ms"] / low["cpu_ms"]
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], sizes: list[int]) -> str:
    small, big = min(sizes), max(sizes)
    head = ["contender"]
    for n in sizes:
        head += [f"{n:,}: valid runs", f"{n:,}: wall ms/page", f"{n:,}: CPU ms/page", f"{n:,}: main RSS MB"]
    head += [f"wall/page {big:,} vs {small:,}", f"CPU/page {big:,} vs {small:,}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["contender"]]
        for n in sizes:
            entry = row["sizes"][n]
            f = entry["figures"]
            if f is None:
                cells += [f"0/{entry['runs']}", "INVALID", "–", "–"]
            else:
                cells += [
                    f"{f['valid_runs']}/{entry['runs']}",
                    f"{f['wall_ms']:.3f}",
                    f"{f['cpu_ms']:.2f}",
                    f"{f['main_rss_mb']:.0f}",
                ]
        for key in ("wall_ratio", "cpu_ratio"):
            cells.append(f"{row[key]:.2f}×" if key in row else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + speed_line(rows, sizes)


def speed_line(rows: list[dict[str, Any]], sizes: list[int], reference: str = "baseline") -> str:
    """Under the table: each contender's speed against ``reference`` at each size (median walls)."""
    ref = next((r for r in rows if r["contender"] == reference), None)
    if ref is None:
        return ""
    parts = []
    for row in rows:
        if row is ref:
            continue
        speeds = []
        for n in sizes:
            mine, theirs = row["sizes"][n]["figures"], ref["sizes"][n]["figures"]
            speeds.append(f"{theirs['wall_ms'] / mine['wall_ms']:.2f}×" if mine and theirs else "–")
        parts.append(f"{row['contender']} {' / '.join(speeds)}")
    if not parts:
        return ""
    at = " / ".join(f"{n:,}" for n in sizes)
    return f"\n\nSpeed against {reference} at {at} products: " + "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    return runner.interruptible(_main, argv, "nginx")


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/scale.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes", default="10000,50000", help="products per site, comma-separated (default 10000,50000)"
    )
    runner.add_session_options(ap, DEFAULT_CONTENDERS, timeout=900)
    args = ap.parse_args(argv)
    try:
        sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error(f"--sizes takes whole numbers separated by commas, not {args.sizes!r}")
    if len(sizes) < 2 or sizes[0] < 1:
        ap.error(f"--sizes needs two or more different positive sizes, not {args.sizes!r}")
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in names if c not in runner.CONTENDERS]
    if unknown:
        ap.error(f"unknown contenders {unknown}; bench/run --list shows them")
    runnable = runner.prepare_contenders(names)
    if not runnable:
        log("nothing to run")
        return 2
    sites = {n: runner.ensure_site(n, args.seed) for n in sizes}
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    command = shlex.join(["bench/scale.py", *(argv if argv is not None else sys.argv[1:])])
    results: dict[str, Any] = {
        "stamp": stamp,
        "command": command,
        "sizes": sizes,
        "seed": args.seed,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "contenders": {n: runner.CONTENDERS[n].describe for n in runnable},
        "machine": runner.machine(),
        "runs": [],
    }
    with runner.sigterm_as_exit(), contextlib.ExitStack() as stack:
        sessions = {}
        for n, site in sites.items():
            server = stack.enter_context(runner.Nginx(runner.free_port(), site))
            base = f"http://127.0.0.1:{server.port}"
            runner.check_serving(base, site)
            manifest, expected = runner.load_expected(site)
            logs = runner.WORK / "logs" / f"scale-{stamp}" / f"n{n}"
            logs.mkdir(parents=True)
            sessions[n] = runner.Session(
                stamp, logs, server, f"{base}/index.html", manifest, expected, args.concurrency, args.timeout
            )
            size, took = runner.warm_page_cache(site)
            log(f"warm-up: read {size / 1e6:.0f} MB of the {n:,}-product site in {took:.2f} s (not recorded)")
        pages = {n: s.manifest["pages_total"] for n, s in sessions.items()}
        out = runner.WORK / f"scale-{stamp}.json"
        try:
            for round_no in range(1, args.rounds + 1):
                for n in size_order(sizes, round_no):
                    for name in runnable:
                        time.sleep(args.pause)
                        r = runner.run_once(sessions[n], runner.CONTENDERS[name], round_no)
                        r["n"] = n
                        results["runs"].append(r)
                        verdict = "ok" if r["valid"] else "INVALID: " + "; ".join(r["problems"])
                        log(
                            f"round {round_no} {n:>7,} {name:16} {r['wall_s']:7.2f} s  "
                            f"{1000 * r['wall_s'] / pages[n]:.3f} ms/page  "
                            f"cpu {1000 * r['cpu_s'] / pages[n]:.2f} ms/page  "
                            f"cores {r['cores_given']:.2f}  {verdict}"
                        )
                        if not r["valid"]:
                            log(f"  log: {r['log']}; output kept in {r['kept']}")
        finally:
            rows = summarize(results["runs"], runnable, pages)
            runner.save_results(out, results, rows)
    title = (
        f"Sizes {', '.join(f'{n:,} products ({pages[n]:,} pages)' for n in sizes)}, "
        f"{args.rounds} interleaved round(s), concurrency {args.concurrency}; "
        f"{runner.machine_line(results['machine'])}"
    )
    table = markdown(rows, sizes) + runner.cores_line(results["runs"])
    runner.publish(runner.WORK / f"scale-{stamp}.md", title, command, table)
    log(f"raw results: {out}")
    return 0 if all(r["valid"] for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
