"""Does crawlkit's parser pool beat parsing inline on heavier, real-world pages?

    .venv/bin/python bench/readability.py                     # ~4,000 pages, 3 interleaved rounds
    .venv/bin/python bench/readability.py --copies 3 --rounds 1   # a quick check

The corpus is the 130 real web pages of ``../shared/corpus/readability`` (the ``source.html`` of
mozilla/readability's test pages: 25 MB, up to 1.6 MB a page; ``--corpus PATH`` to point
elsewhere). Without it, the script says so and exits with code 0.

1. starts a local aiohttp server (a subprocess, 127.0.0.1, a free port) that serves the corpus
   ``--copies`` times over, ``/copy/K/NAME`` for K in range(copies), and index pages
   ``/index/K.html`` that link to the pages of copy K (``a.page``) and to the next index page
   (``a.next``). Responses are precomputed at start-up: ``Content-Type: text/html`` with no charset
   (crawlkit's detection runs), gzip when the client accepts it. The server stops at the end, also
   on Ctrl-C, SIGTERM or an error, and by itself should this script die (its stdin closes);
2. checks what it serves, then times one fetch-only pass over every URL (aiohttp client, 64 in
   flight, no parsing) to show the server is not the bottleneck;
3. runs, interleaved for ``--rounds`` rounds, crawlkit with its parser pool (``parse_workers``
   default: one worker process per CPU) and crawlkit inline (``-s parse_workers=0``), both
   ``bench/contenders/readability_spider.py`` with ``--frontier memory``, concurrency 64/64,
   robots.txt and autothrottle off; each under ``/usr/bin/time -v``, the process tree sampled from
   /proc (RSS; main-process against parser-worker CPU);
4. validates each run: exit code 0, one item per corpus page copy, no duplicate URL, no unknown
   URL, the same ``n_links``/``text_len`` for every copy of a page, every page fetched;
5. prints a markdown table and writes the raw data to ``bench/.work/readability-STAMP.json``.

Standard library only in this process (it reuses helpers of bench/runner.py); the server and the
fetch-only pass run under crawlkit's Python, which has aiohttp.
"""

# The table uses typographic characters on purpose (en dashes for ranges, multiplication signs for ratios).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: timed runs, /proc sampling, summary tables, process helpers
from cores import cores_given  # noqa: E402 - bench/cores.py: what the cores give before each run

WORK = runner.WORK
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "readability"
SPIDER = BENCH / "contenders" / "readability_spider.py"
TARGET_PAGES = 4000
CONTENDERS = {
    "crawlkit-pool": [],  # parse_workers at its default: one parser worker per CPU
    "crawlkit-inline": ["parse_workers=0"],
}
log = runner.log


# ------------------------------------------------------------------------------------ corpus


def corpus_pages(corpus: Path) -> list[str]:
    return sorted(p.name for p in corpus.iterdir() if p.is_file() and p.suffix in (".html", ".htm"))


def page_path(copy: int, name: str) -> str:
    return f"/copy/{copy}/{quote(name)}"


def index_path(copy: int) -> str:
    return f"/index/{copy}.html"


def index_html(copy: int, copies: int, names: list[str]) -> bytes:
    links = "\n".join(f'<li><a class="page" href="{page_path(copy, n)}">{n}</a></li>' for n in names)
    after = f'<p><a class="next" href="{index_path(copy + 1)}">next</a></p>' if copy + 1 < copies else ""
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Copy {copy}</title></head>'
        f"<body><h1>Copy {copy} of {copies}</h1>\n<ul>\n{links}\n</ul>\n{after}\n</body></html>\n"
    ).encode()


# ------------------------------------------------------------------------------------ the server
# Runs as ``readability.py --serve CORPUS --copies N`` under crawlkit's Python (aiohttp). It prints
# "PORT <n>" once it listens, and exits when its stdin closes (the parent stopped it, or died).


def serve(corpus: Path, copies: int) -> int:
    from aiohttp import web
    from delay_server import serve_until_stdin_closes

    names = corpus_pages(corpus)
    plain: dict[str, bytes] = {}
    for name in names:
        plain[name] = (corpus / name).read_bytes()
    for k in range(copies):
        plain[index_path(k)] = index_html(k, copies, names)
    packed = {key: gzip.compress(body, 6) for key, body in plain.items()}
    base_headers = {"Content-Type": "text/html", "Vary": "Accept-Encoding"}
    gz_headers = {**base_headers, "Content-Encoding": "gzip"}

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        key: str | None = None
        if path.startswith("/copy/"):
            _, _, k, name = path.split("/", 3)
            if k.isdigit() and int(k) < copies and name in plain:
                key = name
        elif path in plain:
            key = path
        if key is None:
            return web.Response(status=404, text="not found\n")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(body=packed[key], headers=gz_headers)
        return web.Response(body=plain[key], headers=base_headers)

    serve_until_stdin_closes(handle)
    return 0


class Server:
    """The corpus server subprocess; a context manager that always stops it."""

    def __init__(self, corpus: Path, copies: int) -> None:
        self.corpus = corpus
        self.copies = copies
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Server:
        cmd = [runner.crawlkit_python(), str(Path(__file__).resolve()), "--serve", str(self.corpus)]
        self.proc, self.port = runner.start_port_server([*cmd, "--copies", str(self.copies)])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            runner.stop_port_server(self.proc)
            self.proc = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cpu_s(self) -> float:
        return runner.cpu_seconds(self.proc.pid) if self.proc is not None else 0.0


def check_serving(server: Server, names: list[str]) -> None:
    """A page comes back as the file, plain and gzip, as text/html without a charset."""
    name = names[0]
    want = (server.corpus / name).read_bytes()
    plain, ctype, encoding, packed = runner.fetch_both(server.base + page_path(server.copies - 1, name))
    if plain != want or ctype != "text/html" or encoding != "gzip" or gzip.decompress(packed) != want:
        raise SystemExit(f"the server does not serve {name} as expected ({ctype!r}, {encoding!r})")


# ------------------------------------------------------------------------------------ fetch-only
# ``readability.py --fetch-check BASE --corpus C --copies N`` under crawlkit's Python: every URL
# fetched once, gzip, 64 in flight, bodies read and not even inflated; prints JSON.


def fetch_check(base: str, corpus: Path, copies: int, concurrency: int) -> int:
    import asyncio
    import resource

    import aiohttp

    names = corpus_pages(corpus)
    urls = [base + index_path(k) for k in range(copies)]
    urls += [base + page_path(k, n) for k in range(copies) for n in names]

    async def main() -> dict[str, Any]:
        todo = iter(urls)
        done = 0
        size = 0
        bad = 0

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal done, size, bad
            for url in todo:
                async with session.get(url, headers={"Accept-Encoding": "gzip"}) as resp:
                    body = await resp.read()
                    done += 1
                    size += len(body)
                    bad += resp.status != 200

        connector = aiohttp.TCPConnector(limit=concurrency)
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
        return {"pages": done, "bytes": size, "not_200": bad, "wall_s": round(wall, 3)}

    result = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["client_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    print(json.dumps(result))
    return 0


def run_fetch_check(server: Server, concurrency: int) -> dict[str, Any]:
    cmd = [runner.crawlkit_python(), str(Path(__file__).resolve()), "--fetch-check", server.base]
    cmd += ["--corpus", str(server.corpus), "--copies", str(server.copies)]
    cmd += ["--concurrency", str(concurrency)]
    cpu0 = server.cpu_s
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the fetch-only pass failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    result["server_cpu_s"] = round(server.cpu_s - cpu0, 2)
    result["pages_per_s"] = round(result["pages"] / result["wall_s"], 1)
    return result


# ------------------------------------------------------------------------------------ runs


@dataclass
class Session:
    server: Server
    names: list[str]
    logs: Path
    concurrency: int
    timeout: float

    @property
    def start_url(self) -> str:
        return self.server.base + index_path(0)

    @property
    def corpus_items(self) -> int:
        return self.server.copies * len(self.names)

    @property
    def pages_total(self) -> int:
        return self.server.copies * (len(self.names) + 1)  # the corpus copies and the index pages


def crawlkit_argv(session: Session, settings: list[str], tmp: Path) -> list[str]:
    return runner.crawlkit_command(
        SPIDER,
        tmp / "items.jsonl",
        session.start_url,
        session.concurrency,
        "memory",
        tmp / "job",
        settings,
        extra=["--stats-file", str(tmp / "stats.json")],
    )


def validate(session: Session, out: Path, stats: Path) -> tuple[int, list[str], str | None]:
    """(items, problems, a digest of every page's figures); no problems means a valid run."""
    if not out.exists():
        return 0, ["no output file"], None
    expected = {page_path(k, n) for k in range(session.server.copies) for n in session.names}
    problems: list[str] = []
    paths: Counter[str] = Counter()
    figures: dict[str, set[tuple[Any, Any]]] = defaultdict(set)
    unknown = bad = 0
    with open(out, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                path = urlsplit(item["url"]).path
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
                continue
            paths[path] += 1
            if path not in expected:
                unknown += 1
                continue
            figures[path.rsplit("/", 1)[1]].add((item.get("n_links"), item.get("text_len")))
    items = sum(paths.values()) + bad
    if items != session.corpus_items:
        problems.append(f"{items} items, want exactly {session.corpus_items}")
    duplicates = sum(c - 1 for c in paths.values() if c > 1)
    if duplicates or unknown or bad:
        problems.append(f"{duplicates} duplicate URLs, {unknown} unknown URLs, {bad} unreadable items")
    varying = sorted(name for name, seen in figures.items() if len(seen) > 1)
    if varying:
        problems.append(f"{len(varying)} pages give different figures from copy to copy, e.g. {varying[:3]}")
    digest = hashlib.sha256(
        json.dumps(sorted((n, sorted(s)) for n, s in figures.items())).encode()
    ).hexdigest()[:16]
    try:
        crawl = json.loads(stats.read_text())
    except (OSError, ValueError):
        problems.append("no stats file")
    else:
        if crawl.get("pages") != session.pages_total or crawl.get("pages_failed"):
            problems.append(
                f"fetched {crawl.get('pages')} pages (want {session.pages_total}), "
                f"{crawl.get('pages_failed')} failed: {crawl.get('failures')}"
            )
    return items, problems, digest


def run_once(session: Session, name: str, round_no: int) -> dict[str, Any]:
    tag = f"{name}-r{round_no}"
    tmp = runner.work_tmp(f"readability-{tag}-")
    argv = crawlkit_argv(session, CONTENDERS[name], tmp)
    load_before = os.getloadavg()[0]
    given = cores_given()
    server_cpu0 = session.server.cpu_s
    t = runner.timed_run(tag, tmp, session.logs, argv, {}, session.timeout)
    server_cpu = session.server.cpu_s - server_cpu0
    items, problems, digest = validate(session, tmp / "items.jsonl", tmp / "stats.json")
    return t.result(
        name,
        round_no,
        problems,
        items=items,
        figures_digest=digest,
        **t.measures(),
        cpu_percent=t.tv.get("cpu_percent"),
        workers_cpu_s_sampled=round(t.sampler.helpers_cpu_s, 2),
        server_cpu_s=round(server_cpu, 2),
        loadavg_before=round(load_before, 2),
        cores_given=round(given, 2),
    )


# ------------------------------------------------------------------------------------ summary


def summarize(runs: list[dict[str, Any]], pages_total: int) -> list[dict[str, Any]]:
    medians = {
        "main_peak_rss_mb": "main_peak_rss_mb",
        "main_cpu_s": "main_cpu_s_sampled",
        "workers_cpu_s": "workers_cpu_s_sampled",
        "server_cpu_s": "server_cpu_s",
    }
    return runner.summarize_runs(
        runs, list(CONTENDERS), pages_total, medians, {"crawlkit-inline": "pool_vs_inline"}
    )


def markdown(rows: list[dict[str, Any]]) -> str:
    head = [*runner.SUMMARY_HEAD, "CPU s main / workers", "server CPU s", "pool vs inline"]
    return runner.markdown_table(
        head,
        rows,
        lambda r: [
            *runner.summary_cells(r),
            f"{r['main_cpu_s']:.1f} / {r['workers_cpu_s']:.1f}",
            f"{r['server_cpu_s']:.1f}",
            runner.ratio_cell(r["pool_vs_inline"]),
        ],
    )


def machine() -> dict[str, Any]:
    info = runner.machine_info(loadavg=os.getloadavg())
    packages = ["crawlkit", "aiohttp", "selectolax", "orjson", "isal", "uvloop", "yarl"]
    versions = runner.package_versions(runner.crawlkit_python(), packages)
    if versions is not None:
        info["crawlkit"] = versions
    return info


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    return runner.interruptible(_main, argv, "the server")


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/readability.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the folder of HTML pages")
    ap.add_argument(
        "--copies", type=int, default=0, help=f"times the corpus is served (default: ~{TARGET_PAGES} pages)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds one run may take (default 600)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between runs (default 2)")
    ap.add_argument("--no-fetch-check", action="store_true", help="skip the fetch-only pass")
    ap.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # internal: be the server
    ap.add_argument("--fetch-check", metavar="BASE", help=argparse.SUPPRESS)  # internal: fetch-only
    args = ap.parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.copies)
    corpus = args.corpus.resolve()
    names = corpus_pages(corpus) if corpus.is_dir() else []
    if not names:
        print(f"skipped: the corpus {corpus} is not found (or holds no .html pages)")
        return 0
    copies = args.copies or math.ceil(TARGET_PAGES / len(names))
    if args.fetch_check is not None:
        return fetch_check(args.fetch_check, corpus, copies, args.concurrency)
    if not Path(runner.TIME).exists():
        raise SystemExit(f"{runner.TIME} (GNU time) is missing: apt-get install time")
    runner.compile_crawlkit()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = WORK / "logs" / f"readability-{stamp}"
    logs.mkdir(parents=True)
    command = f"bench/readability.py {shlex.join(argv if argv is not None else sys.argv[1:])}".strip()
    corpus_bytes = sum((corpus / n).stat().st_size for n in names)
    results: dict[str, Any] = {
        "stamp": stamp,
        "command": command,
        "corpus": str(corpus),
        "corpus_pages": len(names),
        "corpus_bytes": corpus_bytes,
        "copies": copies,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "machine": machine(),
        "runs": [],
    }
    out = WORK / f"readability-{stamp}.json"
    with runner.sigterm_as_exit(), Server(corpus, copies) as server:
        check_serving(server, names)
        session = Session(server, names, logs, args.concurrency, args.timeout)
        results["pages_total"] = session.pages_total
        log(f"serving {len(names)} pages × {copies} copies + {copies} index pages on {server.base}")
        if not args.no_fetch_check:
            check = run_fetch_check(server, args.concurrency)
            results["fetch_only"] = check
            log(
                f"fetch-only pass (not recorded as a run): {check['pages']} pages, "
                f"{check['bytes'] / 1e6:.0f} MB gzip in {check['wall_s']:.2f} s = "
                f"{check['pages_per_s']:,.0f} pages/s; server CPU {check['server_cpu_s']:.2f} s, "
                f"client CPU {check['client_cpu_s']:.2f} s"
            )
        try:
            runner.run_rounds(
                args.rounds,
                list(CONTENDERS),
                args.pause,
                lambda name, round_no: run_once(session, name, round_no),
                results["runs"],
                lambda r: (
                    f"(main {r['main_cpu_s_sampled']:.1f}, workers {r['workers_cpu_s_sampled']:.1f}, "
                    f"server {r['server_cpu_s']:.1f})  rss {r['main_peak_rss_mb']:5.0f} MB  "
                    f"load {r['loadavg_before']:.2f}  cores {r['cores_given']:.2f}"
                ),
            )
        finally:
            rows = summarize(results["runs"], session.pages_total)
            results["summary"] = rows
            digests = {r["figures_digest"] for r in results["runs"] if r["valid"]}
            results["same_figures_in_every_valid_run"] = len(digests) <= 1
            out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    title = (
        f"{len(names)} real-world pages ({corpus_bytes / 1e6:.0f} MB) × {copies} copies "
        f"+ {copies} index pages = {session.pages_total:,} pages, {args.rounds} interleaved round(s), "
        f"concurrency {args.concurrency}; {runner.machine_line(results['machine'])}"
    )
    cmds = "\n".join(
        f"- `{name}`: `crawlkit runspider bench/contenders/readability_spider.py -a start_url=URL "
        + " ".join(f"-s {s}" for s in [*runner.contract_settings(args.concurrency), *CONTENDERS[name]])
        + " --frontier memory`"
        for name in CONTENDERS
    )
    notes = []
    if "fetch_only" in results:
        c = results["fetch_only"]
        notes.append(
            f"Fetch-only pass (aiohttp client, {args.concurrency} in flight, no parsing): "
            f"{c['pages_per_s']:,.0f} pages/s, server CPU {c['server_cpu_s']:.2f} s."
        )
    if not results["same_figures_in_every_valid_run"]:
        notes.append("WARNING: the valid runs do not all give the same n_links/text_len per page.")
    table = markdown(rows) + runner.cores_line(results["runs"])
    text = f"{title}\n\nCommand: `{command}`\n\n{cmds}\n\n{table}\n\n" + "\n".join(notes)
    print(f"\n{text}\n")
    (WORK / f"readability-{stamp}.md").write_text(text + "\n")
    log(f"raw results: {out}\nlogs: {logs}")
    return 0 if all(r["valid"] for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
