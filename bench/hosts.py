#!/usr/bin/env python3
"""Many hosts, politeness on: the benchmark shop on 1,000 or 10,000 loopback addresses.

    bench/hosts.py                                    # 1,000 and 10,000 hosts, 3 rounds
    bench/hosts.py --hosts 1000 --rounds 1            # a quick check
    bench/hosts.py --hosts 1000,10000 --scrapy-hosts 1000   # Scrapy only where it ends in minutes

One nginx serves the 10-product shop (12 pages: the index, one listing, 10 products) on every
address 127.0.1.1, 127.0.1.2, ... (all in 127/8, which Linux routes to ``lo`` with no set-up; one
``listen 127.x.y.z:PORT`` line per address, nothing on any other interface), with a robots.txt
on each. ``worker_connections`` and ``worker_rlimit_nofile`` are raised above the listening
sockets, and nginx closes idle connections after 15 s (a common server setting; nginx's own 75 s
with 10,000 hosts would let idle connections eat every descriptor the machine allows).

The crawl is seeded with every host's ``/index.html`` (a file of start URLs, ``-a
start_urls_file``), in both crawlers: a real many-host crawl starts from a list of sites, and
links across hosts would make the order the hosts are found part of the measure. Contenders:

* ``crawlkit``: the durable default (SQLite frontier) with default politeness (robots.txt obeyed,
  ``concurrency_per_host`` 8, adaptive throttle), ``download_delay`` 0, concurrency 64;
* ``scrapy``: ``ROBOTSTXT_OBEY`` on, its default per-domain limit (8), concurrency 64, no delay;
* ``single``: bench/run's ``crawlkit-sqlite`` on one host serving a shop of the same page count
  (politeness off, as bench/run's contract has it): what the same pages cost with no host
  bookkeeping at all. Its shops (11,427 and 114,284 products: 0.7 and 6.9 GB on disk with their
  gzip copies) are generated into bench/.work/ once, the larger in several minutes.

The host counts take turns within a round, their order turned every other round. Every output is
validated: every host's 10 products exactly once, each field as ``expected.jsonl`` has it, the
pages fetched (robots.txt files not counted) equal to 12 per host, no nginx error. Raw data goes
to ``bench/.work/hosts-STAMP.json``.
"""

# The table uses typographic characters on purpose (multiplication signs for ratios).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import runner  # noqa: E402 - bench/runner.py: nginx helpers, timed runs, the single-host contender

log = runner.log
HOST_PRODUCTS = 10  # the shop on each host: index, one listing, 10 products
HOST_PAGES = 12
MAX_HOSTS = 254 * 254  # 127.0.1.1 ... 127.0.254.254
ROBOTS_TXT = "User-agent: *\\nDisallow: /private/\\nDisallow: /cart/\\n"
CONTENDERS = ("crawlkit", "scrapy", "single")


def address(i: int) -> str:
    """The ``i``-th host (from 0): 127.0.1.1, ..., 127.0.1.254, 127.0.2.1, ..."""
    return f"127.0.{1 + i // 254}.{1 + i % 254}"


def single_host_products(pages: int) -> int:
    """Products of the one-host shop with ``pages`` pages (products + listings of 20 + index)."""
    n = (pages - 1) * 20 // 21
    while n + -(-n // 20) + 1 < pages:
        n += 1
    return n


class HostsNginx:
    """One nginx listening on the first ``hosts`` addresses, one port; quacks like runner.Nginx."""

    def __init__(self, hosts: int, site: Path) -> None:
        self.hosts = hosts
        self.site = site.resolve()
        self.port = runner.free_port()
        self.prefix = runner.WORK / f"nginx-hosts-{self.port}"
        self.error_log = self.prefix / "error.log"
        self.master: int | None = None

    def config(self, files: int) -> str:
        user = ""  # workers drop root; www-data must be able to read the site
        if os.getuid() == 0:
            user = "user www-data;" if _has_user("www-data") else "user nobody;"
        listens = "\n".join(
            f"        listen {address(i)}:{self.port} backlog=512;" for i in range(self.hosts)
        )
        p = self.prefix
        return f"""# written by bench/hosts.py: {self.hosts} loopback addresses, port {self.port}
{user}
worker_processes 1;
worker_rlimit_nofile {files};
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections {files - 32}; }}
http {{
    types {{ text/html html; text/plain txt; }}
    default_type application/octet-stream;
    charset utf-8;
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 15s;
    keepalive_requests 100000;
    gzip off;
    gzip_static on;
    client_body_temp_path {p}/temp/client;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;
    server {{
{listens}
        server_name bench;
        root {self.site};
        location = /robots.txt {{ default_type text/plain; return 200 "{ROBOTS_TXT}"; }}
        location / {{ try_files $uri =404; }}
    }}
}}
"""

    def __enter__(self) -> HostsNginx:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        files = hard if hard != resource.RLIM_INFINITY else 65536
        if files < self.hosts + 2048:
            raise SystemExit(
                f"{self.hosts} hosts need {self.hosts + 2048} open files for nginx; the limit is {files}"
            )
        (self.prefix / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(self.config(files))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"

        def raise_limit() -> None:  # the master opens every listening socket itself
            resource.setrlimit(resource.RLIMIT_NOFILE, (files, hard))

        for argv in ([nginx, "-t", "-q"], [nginx]):
            done = subprocess.run(
                [*argv, "-p", str(self.prefix), "-c", str(conf)],
                capture_output=True,
                text=True,
                preexec_fn=raise_limit,
            )
            if done.returncode != 0:
                raise SystemExit(f"nginx failed on {conf}: {done.stderr.strip()}")
        pid_file = self.prefix / "nginx.pid"
        for _ in range(100):
            if (
                pid_file.exists()
                and pid_file.read_text().strip()
                and _listening(address(self.hosts - 1), self.port)
            ):
                self.master = int(pid_file.read_text())
                return self
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"nginx did not start on {self.hosts} addresses (see {self.error_log})")

    def __exit__(self, *exc: object) -> None:
        pid_file = self.prefix / "nginx.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGQUIT)  # graceful: the master waits for its worker
                for _ in range(100):
                    if not runner.alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGTERM)
        if self.error_log_size() == 0:
            shutil.rmtree(self.prefix, ignore_errors=True)

    @property
    def worker(self) -> int | None:
        kids = runner.children(self.master) if self.master else []
        return kids[0] if kids else None

    def error_log_size(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0

    def errors_since(self, offset: int) -> list[str]:
        return runner._error_lines(self.error_log, offset, r"\[(error|crit|alert|emerg)\]")


def _has_user(name: str) -> bool:
    return subprocess.run(["id", name], capture_output=True).returncode == 0


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def check_hosts(server: HostsNginx) -> None:
    """The first and the last host serve the shop and a robots.txt."""
    for host in (address(0), address(server.hosts - 1)):
        base = f"http://{host}:{server.port}"
        runner.check_serving(base, server.site)
        plain, *_ = runner.fetch_both(f"{base}/robots.txt")
        if b"Disallow: /private/" not in plain:
            raise SystemExit(f"{base}/robots.txt is not the bench's: {plain[:80]!r}")


# ------------------------------------------------------------------------------------ validation


def validate_hosts(
    out: Path, hosts: int, port: int, expected: dict[str, dict[str, Any]]
) -> tuple[int, list[str]]:
    """(items, problems): every host's products exactly once, each field as expected."""
    if not out.exists():
        return 0, ["no output file"]
    want_hosts = {f"{address(i)}:{port}" for i in range(hosts)}
    seen: Counter[tuple[str, str]] = Counter()
    wrong: Counter[str] = Counter()
    examples: list[str] = []
    count = 0
    with open(out, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            count += 1
            try:
                item = json.loads(line)
                parts = urlsplit(str(item.get("url") or ""))
            except (ValueError, AttributeError):
                wrong["bad line"] += 1
                continue
            seen[(parts.netloc, parts.path)] += 1
            want = expected.get(parts.path)
            if want is None or parts.netloc not in want_hosts:
                wrong["unknown url"] += 1
                if len(examples) < 5:
                    examples.append(f"unknown url {item.get('url')!r}")
                continue
            for key in ("title", "price", "sku", "availability", "n_related"):
                got = item.get(key)
                if key == "availability" and isinstance(got, str):
                    got = " ".join(got.split())
                if got != want[key]:
                    wrong[key] += 1
                    if len(examples) < 5:
                        examples.append(f"{item.get('url')} {key}: got {got!r}, want {want[key]!r}")
    problems = []
    total = hosts * HOST_PRODUCTS
    if count != total:
        problems.append(f"{count} items, want exactly {total}")
    duplicates = sum(c - 1 for c in seen.values() if c > 1)
    missing = total - len({key for key in seen if key[0] in want_hosts and key[1] in expected})
    if duplicates or missing:
        problems.append(f"{duplicates} duplicate URLs, {missing} products missing")
    if wrong:
        problems.append(f"wrong fields {dict(wrong)}; e.g. {examples}")
    return count, problems


# ------------------------------------------------------------------------------------ running


def crawlkit_argv(run: runner.Run, urls: Path) -> tuple[list[str], dict[str, str]]:
    return [
        runner.crawlkit_bin(),
        "runspider",
        str(runner.CONTENDERS_DIR / "crawlkit_spider.py"),
        "-o",
        str(run.out),
        "-a",
        f"start_urls_file={urls}",
        *runner.setting_args([f"concurrency={run.concurrency}", "download_delay=0"]),
        "--frontier",
        "sqlite",
        "--job-dir",
        str(run.tmp / "job"),
        "--overwrite",
        "--log-level",
        "WARNING",
    ], {}


def scrapy_argv(run: runner.Run, urls: Path) -> tuple[list[str], dict[str, str]]:
    settings = [
        f"CONCURRENT_REQUESTS={run.concurrency}",
        "CONCURRENT_REQUESTS_PER_DOMAIN=8",  # Scrapy's default (the spider's file sets 64)
        "ROBOTSTXT_OBEY=True",
    ]
    return [
        str(runner.WORK / "venv-scrapy" / "bin" / "scrapy"),
        "runspider",
        str(runner.CONTENDERS_DIR / "scrapy_spider.py"),
        "-L",
        "WARNING",
        "-a",
        f"start_urls_file={urls}",
        "-a",
        f"stats_path={run.stats}",
        *runner.setting_args(settings),
    ], {"BENCH_OUT": str(run.out)}


def run_hosts(
    name: str,
    server: HostsNginx,
    urls: Path,
    expected: dict[str, dict[str, Any]],
    logs: Path,
    round_no: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """One many-host run of ``name`` (crawlkit or scrapy), timed, sampled and validated."""
    tag = f"{name}-h{server.hosts}-r{round_no}"
    tmp = runner.work_tmp(f"{tag}-")
    run = runner.Run("", tmp / "items.jsonl", tmp / "stats.json", tmp, args.concurrency)
    argv, env = (crawlkit_argv if name == "crawlkit" else scrapy_argv)(run, urls)
    given = runner.cores_given()
    nginx_cpu0 = runner.cpu_seconds(server.worker)
    log0 = server.error_log_size()
    t = runner.timed_run(tag, tmp, logs, argv, env, args.timeout)
    nginx_cpu = runner.cpu_seconds(server.worker) - nginx_cpu0
    items, problems = validate_hosts(run.out, server.hosts, server.port, expected)
    pages_total = server.hosts * HOST_PAGES
    pages = runner.pages_reported(name, run.stats, t.log_path)
    if pages is not None and pages != pages_total:
        problems.append(f"fetched {pages} pages, the hosts have {pages_total}")
    errors = server.errors_since(log0)
    if errors:
        problems.append(f"{len(errors)} nginx errors, e.g. {errors[0][:200]}")
    measures = t.measures()
    return t.result(
        name,
        round_no,
        problems,
        items=items,
        pages=pages_total,
        **measures,
        cores_busy=round((measures["cpu_s"] + nginx_cpu) / t.wall, 2),
        main_hwm_sampled_mb=round(t.sampler.main_hwm_kb / 1024, 1),
        nginx_cpu_s=round(nginx_cpu, 2),
        cores_given=round(given, 2),
    )


def figures(runs: list[dict[str, Any]], pages: int) -> dict[str, float] | None:
    ok = [r for r in runs if r["valid"]]
    if not ok:
        return None
    wall = statistics.median(r["wall_s"] for r in ok)
    return {
        "valid": len(ok),
        "wall_s": wall,
        "pages_per_s": pages / wall,
        "cpu_ms": 1000 * statistics.median(r["cpu_s"] for r in ok) / pages,
        "main_cpu_ms": _median_of(ok, "main_cpu_s_sampled", 1000 / pages),
        "cores_busy": _median_of(ok, "cores_busy", 1.0),
        "main_rss_mb": statistics.median(r["main_peak_rss_mb"] for r in ok),
        "main_rss_max_mb": max(r["main_peak_rss_mb"] for r in ok),
    }


def _median_of(runs: list[dict[str, Any]], key: str, scale: float) -> float:
    """The median of a sampled figure over the runs that have it (NaN if none has)."""
    values = [r[key] * scale for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def _round_ratios(runs: list[dict[str, Any]], hosts: int) -> list[float]:
    """crawlkit's pages/s over the single host's, round by round (both valid)."""
    walls: dict[tuple[str, int], float] = {
        (r["contender"], r["round"]): r["wall_s"] for r in runs if r["hosts"] == hosts and r["valid"]
    }
    rounds = sorted({n for _, n in walls})
    return [
        walls["single", n] / walls["crawlkit", n]
        for n in rounds
        if ("single", n) in walls and ("crawlkit", n) in walls
    ]


def markdown(runs: list[dict[str, Any]], host_counts: list[int], names: list[str]) -> str:
    # Main CPU and cores busy tell a per-page cost from a pipeline that idles: at 1,000 hosts
    # crawlkit's CPU per page matched the single host's while fewer cores were kept busy.
    head = (
        "| hosts | contender | valid runs | median wall s | pages/s | CPU ms/page | main CPU ms/page "
        "| cores busy | main peak RSS MB (max) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for hosts in host_counts:
        pages = hosts * HOST_PAGES
        found = {}
        for name in names:
            mine = [r for r in runs if r["contender"] == name and r["hosts"] == hosts]
            if not mine:
                continue
            f = found[name] = figures(mine, pages)
            label = name if name != "single" else f"single (1 host, {pages:,} pages)"
            if f is None:
                lines.append(f"| {hosts:,} | {label} | 0/{len(mine)} | INVALID | – | – | – | – | – |")
                continue
            lines.append(
                f"| {hosts:,} | {label} | {f['valid']}/{len(mine)} | {f['wall_s']:.2f} | "
                f"{f['pages_per_s']:,.0f} | {f['cpu_ms']:.2f} | {f['main_cpu_ms']:.2f} | "
                f"{f['cores_busy']:.2f} | {f['main_rss_mb']:.0f} ({f['main_rss_max_mb']:.0f}) |"
            )
        ours = found.get("crawlkit")
        if ours:
            said = []
            if found.get("single"):
                paired = _round_ratios(runs, hosts)
                by_round = (
                    f" (round by round {', '.join(f'{x:.2f}' for x in paired)})" if len(paired) > 1 else ""
                )
                said.append(
                    f"{ours['pages_per_s'] / found['single']['pages_per_s']:.2f}× the single host's pages/s"
                    + by_round
                )
            if found.get("scrapy"):
                said.append(
                    f"{found['scrapy']['wall_s'] / ours['wall_s']:.1f}× Scrapy's speed, "
                    f"{found['scrapy']['cpu_ms'] / ours['cpu_ms']:.1f}× less CPU per page"
                )
            if said:
                notes.append(f"{hosts:,} hosts: crawlkit at " + "; ".join(said) + ".")
    return "\n".join(lines) + ("\n\n" + " ".join(notes) if notes else "")


def log_run(r: dict[str, Any]) -> None:
    pages = r["hosts"] * HOST_PAGES
    verdict = "ok" if r["valid"] else "INVALID: " + "; ".join(r["problems"])
    log(
        f"round {r['round']} {r['hosts']:>6,} hosts {r['contender']:9} {r['wall_s']:7.2f} s  "
        f"{pages / r['wall_s']:7,.0f} pages/s  cpu {1000 * r['cpu_s'] / pages:.2f} ms/page  "
        f"rss {r['main_peak_rss_mb']:.0f} MB  cores {r['cores_given']:.2f}  {verdict}"
    )
    if not r["valid"]:
        log(f"  log: {r['log']}; output kept in {r.get('kept')}")


def main(argv: list[str] | None = None) -> int:
    return runner.interruptible(_main, argv, "nginx")


def _counts(ap: argparse.ArgumentParser, text: str, option: str) -> list[int]:
    try:
        counts = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        ap.error(f"{option} takes whole numbers separated by commas, not {text!r}")
    if any(not 1 <= c <= MAX_HOSTS for c in counts):
        ap.error(f"{option}: host counts go from 1 to {MAX_HOSTS:,}, not {text!r}")
    return counts


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/hosts.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--hosts", default="1000,10000", help="host counts, comma-separated (default 1000,10000)")
    ap.add_argument(
        "--scrapy-hosts",
        default="1000",
        help="the host counts Scrapy runs at (default 1000: at 10,000 one run takes ten minutes)",
    )
    runner.add_session_options(ap, ",".join(CONTENDERS), timeout=900)
    args = ap.parse_args(argv)
    if args.seed != 42:
        ap.error("--seed: the many-host shop is the seed-42 shop")
    host_counts = _counts(ap, args.hosts, "--hosts")
    scrapy_counts = set(_counts(ap, args.scrapy_hosts, "--scrapy-hosts")) if args.scrapy_hosts else set()
    names = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contenders {unknown}; these are: {', '.join(CONTENDERS)}")
    prepare = ["crawlkit-sqlite"] + (["scrapy"] if "scrapy" in names else [])
    if len(runner.prepare_contenders(prepare)) < len(prepare):
        return 2
    host_site = runner.ensure_site(HOST_PRODUCTS, 42)
    _, expected = runner.load_expected(host_site)
    single_sites = {}
    if "single" in names:
        single_sites = {h: runner.ensure_site(single_host_products(h * HOST_PAGES), 42) for h in host_counts}
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    command = shlex.join(["bench/hosts.py", *(argv if argv is not None else sys.argv[1:])])
    logs = runner.WORK / "logs" / f"hosts-{stamp}"
    logs.mkdir(parents=True)
    results: dict[str, Any] = {
        "stamp": stamp,
        "command": command,
        "hosts": host_counts,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "machine": runner.machine(),
        "runs": [],
    }
    out = runner.WORK / f"hosts-{stamp}.json"
    with runner.sigterm_as_exit(), contextlib.ExitStack() as stack:
        servers, singles, url_files = {}, {}, {}
        for hosts in host_counts:
            server = servers[hosts] = stack.enter_context(HostsNginx(hosts, host_site))
            check_hosts(server)
            url_files[hosts] = logs / f"start-urls-{hosts}.txt"
            url_files[hosts].write_text(
                "".join(f"http://{address(i)}:{server.port}/index.html\n" for i in range(hosts))
            )
            if "single" in names:
                site = single_sites[hosts]
                one = stack.enter_context(runner.Nginx(runner.free_port(), site))
                base = f"http://127.0.0.1:{one.port}"
                runner.check_serving(base, site)
                manifest, single_expected = runner.load_expected(site)
                singles[hosts] = runner.Session(
                    stamp,
                    logs,
                    one,
                    f"{base}/index.html",
                    manifest,
                    single_expected,
                    args.concurrency,
                    args.timeout,
                )
                runner.warm_page_cache(site)
        runner.warm_page_cache(host_site)
        try:
            for round_no in range(1, args.rounds + 1):
                for hosts in host_counts if round_no % 2 else host_counts[::-1]:
                    for name in names:
                        if name == "scrapy" and hosts not in scrapy_counts:
                            continue
                        time.sleep(args.pause)
                        if name == "single":
                            r = runner.run_once(
                                singles[hosts], runner.CONTENDERS["crawlkit-sqlite"], round_no
                            )
                            r["contender"] = "single"
                        else:
                            r = run_hosts(
                                name, servers[hosts], url_files[hosts], expected, logs, round_no, args
                            )
                        r["hosts"] = hosts
                        results["runs"].append(r)
                        log_run(r)
        finally:
            out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    title = (
        f"Many hosts: {', '.join(f'{h:,}' for h in host_counts)} hosts × {HOST_PAGES} pages, "
        f"{args.rounds} interleaved round(s), concurrency {args.concurrency}; "
        f"{runner.machine_line(results['machine'])}"
    )
    table = markdown(results["runs"], host_counts, names) + runner.cores_line(results["runs"])
    runner.publish(runner.WORK / f"hosts-{stamp}.md", title, command, table)
    log(f"raw results: {out}")
    return 0 if all(r["valid"] for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
