#!/usr/bin/env python3
"""What a re-crawl with nothing changed costs against the first crawl, and a replay against live.

    bench/recrawl.py                               # 10,000 products, 3 rounds
    bench/recrawl.py --n 1000 --rounds 1           # a quick check

The benchmark shop (bench/run's site, served by nginx on 127.0.0.1 through bench/serve.sh, which
sends ``ETag`` and ``Last-Modified`` for every page) is crawled with bench/run's crawlkit contender
and contract settings, sqlite frontier, four ways in each round, in this order:

* ``live``: no cache, as bench/run's crawlkit-sqlite;
* ``first``: ``--cache`` into an empty job: the first crawl of a job that will be re-crawled;
* ``recrawl``: ``--recrawl`` of that job, the site unchanged: every page asked with
  ``If-None-Match`` / ``If-Modified-Since``, every answer a 304;
* ``replay``: ``--offline --fresh`` from the same job's cache, no request reaching nginx.

Every run is checked: ``live``, ``first`` and ``replay`` against the site's manifest (exactly its
items); ``recrawl`` must write no item and count every page of the first crawl ``not_modified``;
``replay`` must send nothing to nginx. For each run: wall time, pages/s (the crawl's own figure),
CPU of the crawl's whole process tree (``time -v``) and of its main process, per page, and the
bytes received: the bodies (the crawl's ``bytes``) and everything nginx wrote to its sockets
(the worker's ``wchar``, headers included; ``sendfile`` counts there too). Medians per way, the
ratios of each round's pairs, and the raw data in ``bench/.work/recrawl-STAMP.json``.

``--tree LABEL=PATH`` (repeatable) runs every way also with the crawlkit of the checkout PATH
(its ``src`` first on ``PYTHONPATH``), as ``WAY@LABEL``, in the same rounds, the trees taking
turns to go first: a change measured against the code before it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: the contract, nginx, the site and its checks

WAYS = {
    "live": [],
    "first": ["--cache"],
    "recrawl": ["--recrawl"],
    "replay": ["--offline", "--fresh"],
}
# (numerator, denominator): what the issue asks to compare
PAIRS = (("recrawl", "first"), ("replay", "live"), ("first", "live"))


def wchar(pid: int | None) -> int:
    """Bytes ``pid`` has written, sockets and ``sendfile`` included (``/proc/PID/io``)."""
    if pid is None:
        return 0
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def check(
    way: str,
    out: Path,
    figures: dict[str, Any],
    first_pages: int | None,
    sent: int,
    manifest: dict[str, Any],
    expected: dict[str, dict[str, Any]],
) -> tuple[int, list[str]]:
    """(items, problems) of one run."""
    if way != "recrawl":
        count, problems = runner.validate(out, manifest, expected)
        if way == "replay" and sent:
            problems.append(f"the offline replay made nginx send {sent} bytes")
        return count, problems
    lines = [line for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    problems = [f"{len(lines)} items written, want none"] if lines else []
    recrawl = figures.get("recrawl") or {}
    if first_pages is None or recrawl.get("not_modified") != first_pages:
        problems.append(f"not_modified {recrawl.get('not_modified')}, want every page ({first_pages})")
    if set(recrawl) - {"not_modified", "unchanged"}:
        problems.append(f"pages counted other than unchanged: {recrawl}")
    return len(lines), problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="products in the shop")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--way", action="append", choices=list(WAYS), help="only these ways (repeatable; default all)"
    )
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH")
    args = parser.parse_args()
    trees: list[tuple[str, dict[str, str]]] = [("", {})]
    for tree in args.tree:
        label, src = runner.tree_source(tree)
        trees.append((f"@{label}", {"PYTHONPATH": str(src)}))
    ways = [way for way in WAYS if not args.way or way in args.way]  # first before its uses
    if {"recrawl", "replay"} & set(ways) and "first" not in ways:
        parser.error("recrawl and replay need the first crawl's cache: add --way first")
    runner.ensure_tools()
    runner.compile_crawlkit()
    site = runner.ensure_site(args.n, 42)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = runner.WORK / f"recrawl-{stamp}"
    logs = work / "logs"
    logs.mkdir(parents=True)
    port = runner.free_port()
    runs: list[dict[str, Any]] = []
    with runner.Nginx(port, site) as nginx:
        start_url = f"http://127.0.0.1:{port}/index.html"
        runner.check_serving(f"http://127.0.0.1:{port}", site)
        runner.warm_page_cache(site)
        for round_no in range(1, args.rounds + 1):
            turn = (round_no - 1) % len(trees)
            for suffix, env in trees[turn:] + trees[:turn]:
                runs += run_round(round_no, suffix, env, ways, work, logs, nginx, start_url, args)
    print(report(runs, ways, [suffix for suffix, _env in trees], args))
    (runner.WORK / f"recrawl-{stamp}.json").write_text(json.dumps(runs, indent=2))
    return 0 if all(r["valid"] for r in runs) else 1


def run_round(
    round_no: int,
    suffix: str,
    env: dict[str, str],
    ways: list[str],
    work: Path,
    logs: Path,
    nginx: runner.Nginx,
    start_url: str,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Each of ``ways`` once, in order, with one tree's crawlkit (``suffix``, ``env``)."""
    manifest, expected = runner.load_expected(runner.ensure_site(args.n, 42))
    runs: list[dict[str, Any]] = []
    job = work / f"job-r{round_no}{suffix}"
    first_pages: int | None = None
    for way in ways:
        tmp = work / f"{way}{suffix}-r{round_no}"
        tmp.mkdir()
        out, stats = tmp / "items.jsonl", tmp / "stats.json"
        command = runner.crawlkit_command(
            BENCH / "contenders" / "crawlkit_spider.py",
            out,
            start_url,
            args.concurrency,
            "sqlite",
            job if way != "live" else tmp / "job",
            extra=[*WAYS[way], "--stats-file", str(stats), "--progress", "off"],
        )
        before = wchar(nginx.worker)
        timed = runner.timed_run(f"{way}{suffix}-r{round_no}", tmp, logs, command, env, timeout=600)
        sent = wchar(nginx.worker) - before
        figures = json.loads(stats.read_text()) if stats.exists() else {}
        pages = int(figures.get("pages") or 0)
        if way == "first":
            first_pages = pages
        count, problems = check(way, out, figures, first_pages, sent, manifest, expected)
        if timed.rc != 0:
            problems.insert(0, f"exit code {timed.rc}: {timed.log_path}")
        measures = timed.measures()
        run = {
            "round": round_no,
            "way": way + suffix,
            "valid": not problems,
            "problems": problems[:5],
            "wall_s": round(timed.wall, 3),
            "items": count,
            "pages": pages,
            "pages_per_s": figures.get("pages_per_s"),
            "cpu_s": measures["cpu_s"],
            "main_cpu_s": measures["main_cpu_s_sampled"],
            "cpu_ms_per_page": round(1000 * measures["cpu_s"] / pages, 4) if pages else None,
            "main_cpu_ms_per_page": round(1000 * measures["main_cpu_s_sampled"] / pages, 4)
            if pages
            else None,
            "body_bytes": figures.get("bytes"),
            "wire_bytes": sent,
            "cache": figures.get("cache"),
            "recrawl": figures.get("recrawl"),
            "tree_peak_rss_mb": measures["tree_peak_rss_mb"],
        }
        runs.append(run)
        if not problems:
            out.unlink(missing_ok=True)
        print(
            f"round {round_no} {way + suffix:<12} {timed.wall:6.2f} s {run['pages_per_s'] or 0:8.1f} pages/s "
            f"CPU {run['cpu_ms_per_page'] or 0:.3f} ms/page"
            f" (main {run['main_cpu_ms_per_page'] or 0:.3f})"
            f"  bodies {run['body_bytes'] or 0:>11,} B  nginx sent {sent:>11,} B  items {count}"
            f"{'' if run['valid'] else '  INVALID ' + '; '.join(problems[:2])}",
            file=sys.stderr,
        )
    shutil.rmtree(job, ignore_errors=True)
    return runs


def report(runs: list[dict[str, Any]], ways: list[str], suffixes: list[str], args: argparse.Namespace) -> str:
    """Medians per way, and the medians of each round's ratios: the pairs of ``PAIRS`` in each
    tree, and each way of this tree against the same way of each other tree."""
    names = [way + suffix for suffix in suffixes for way in ways]
    lines = [
        f"\n{args.n} products, {args.rounds} rounds, concurrency {args.concurrency} (medians of valid runs)",
        "| way | wall s | pages/s | CPU ms/page | main CPU ms/page | bodies received | nginx sent |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def median(name: str, key: str) -> float | None:
        values = [r[key] for r in runs if r["way"] == name and r["valid"] and r[key] is not None]
        return statistics.median(values) if values else None

    for name in names:
        if median(name, "wall_s") is None:
            lines.append(f"| {name} | INVALID | | | | | |")
            continue
        lines.append(
            f"| {name} | {median(name, 'wall_s'):.2f} | {median(name, 'pages_per_s') or 0:,.0f} "
            f"| {median(name, 'cpu_ms_per_page') or 0:.3f} | {median(name, 'main_cpu_ms_per_page') or 0:.3f} "
            f"| {int(median(name, 'body_bytes') or 0):,} | {int(median(name, 'wire_bytes') or 0):,} |"
        )
    pairs = [(num + suffix, den + suffix) for suffix in suffixes for num, den in PAIRS]
    pairs += [(way, way + suffix) for suffix in suffixes if suffix for way in ways]
    lines.append("\nratios, median of the rounds' pairs:")
    for num, den in pairs:
        matched = [
            (a, b)
            for a in runs
            for b in runs
            if a["way"] == num and b["way"] == den and a["round"] == b["round"] and a["valid"] and b["valid"]
        ]
        if not matched:
            continue

        def ratio(key: str, matched: list[tuple[dict[str, Any], dict[str, Any]]] = matched) -> str:
            values = [a[key] / b[key] for a, b in matched if a[key] and b[key]]
            return f"{statistics.median(values):.3f}" if values else "-"

        lines.append(
            f"  {num}/{den}: pages/s {ratio('pages_per_s')}, CPU per page {ratio('cpu_ms_per_page')}, "
            f"main CPU per page {ratio('main_cpu_ms_per_page')}, wall {ratio('wall_s')}, "
            f"nginx sent {ratio('wire_bytes')}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
