"""The benchmark shop through one local forward proxy: crawlkit (sessions and block detection on)
against Scrapy through the same proxy, and each of them direct.

    .venv/bin/python bench/proxied.py --n 10000 --rounds 3
    .venv/bin/python bench/proxied.py --proxy test     # the test suite's proxy (one request a connection)

The site is the benchmark shop (``bench/site.py``), served by nginx (``bench/serve.sh``), as for
``bench/run``. The proxy is a second nginx, on a port of its own, set up as a forward proxy for
plain http: it takes absolute-form requests (``GET http://127.0.0.1:PORT/page.html``) and passes
them to the site over a pool of kept-alive connections (``--proxy nginx``, the default). A proxy's
connection handling dominates a crawl through it: the test suite's proxy
(``tests/support/forwardproxy.py``, ``--proxy test``) closes every connection after one request,
so each page costs both crawlers a new connection to the proxy and the proxy one to the site.
nginx keeps both sides alive, as a production proxy does; it runs in processes of its own, so its
CPU is counted for no crawler.

Contenders, interleaved round after round (the order turns each round):

* ``crawlkit-direct``: ``crawlkit runspider bench/contenders/crawlkit_spider.py`` on the contract
  of ``bench/run`` (64/64 concurrency, robots.txt and throttling off; the SQLite frontier, the
  default). Every answer is classified, proxy or not;
* ``crawlkit-proxied``: the same with ``proxies = [the proxy]``: sessions are on (two live), each
  request goes through the proxy with its session's cookies and header profile, each label is
  counted against the session and the proxy;
* ``scrapy-direct``: ``scrapy runspider bench/contenders/scrapy_spider.py`` (its virtualenv in
  ``bench/.work/venv-scrapy``, made by ``bench/run`` or here);
* ``scrapy-proxied``: the same with ``http_proxy`` in its environment, which Scrapy's
  ``HttpProxyMiddleware`` reads (as ``meta["proxy"]`` on every request would).

Each output is validated against the site's manifest (every product once, every field right); an
invalid run is reported and left out. CPU is user + system time of the crawler's process tree
(``wait4``: the main process and the parser workers it reaped), divided by the pages it reports
fetched. The machine may be shared: quote the ratios of one run, and CPU per page, not a wall time.
"""

# The table uses typographic characters on purpose (en dashes for ranges, multiplication signs for ratios).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from runner import (
    CONTENDERS_DIR,
    REPO,
    WORK,
    Nginx,
    compile_crawlkit,
    crawlkit_command,
    ensure_site,
    ensure_tools,
    ensure_venv,
    free_port,
    load_expected,
    pages_reported,
    start_port_server,
    stop_port_server,
    validate,
)

CONTENDERS = ("crawlkit-direct", "crawlkit-proxied", "scrapy-direct", "scrapy-proxied")
CONCURRENCY = 64

_TEST_PROXY = """
import sys
sys.path.insert(0, {tests!r})
from support.forwardproxy import ForwardProxy
proxy = ForwardProxy(name="bench-proxy")
proxy.start()
print("PORT", proxy.port, flush=True)
sys.stdin.read()
proxy.stop()
"""


def nginx_proxy_conf(prefix: Path, port: int, site_port: int) -> str:
    user = ""
    if os.geteuid() == 0:
        user = "user www-data;" if shutil.which("id") and _has_user("www-data") else "user nobody;"
    return f"""# written by bench/proxied.py: a forward proxy for plain http, kept alive on both sides
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format one_line "$request_uri";
    access_log {prefix}/access.log one_line;  # counted per run: proof that a crawl went through it
    server_tokens off;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    client_body_temp_path {prefix}/temp/client;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    upstream site {{
        server 127.0.0.1:{site_port};
        keepalive 256;
        keepalive_requests 100000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=2048;
        location / {{
            proxy_pass http://site;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_max_temp_file_size 0;
            add_header Via "1.1 bench-proxy";
        }}
    }}
}}
"""


def _has_user(name: str) -> bool:
    return subprocess.run(["id", name], capture_output=True).returncode == 0


@dataclass
class Proxy:
    port: int
    access_log: Path | None  # nginx's: one line a request it passed on

    def requests(self) -> int | None:
        if self.access_log is None:
            return None
        return sum(1 for _ in self.access_log.open("rb")) if self.access_log.exists() else 0


@contextmanager
def forward_proxy(kind: str, site_port: int) -> Iterator[Proxy]:
    """A forward proxy in front of the site, on a free port of 127.0.0.1, stopped at the end."""
    if kind == "test":
        proc, port = start_port_server([sys.executable, "-c", _TEST_PROXY.format(tests=str(REPO / "tests"))])
        try:
            yield Proxy(port, None)
        finally:
            stop_port_server(proc)
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    prefix = WORK / f"proxy-{port}"
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_proxy_conf(prefix, port, site_port))
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"])
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the proxy did not start (see {prefix}/error.log)")
            time.sleep(0.05)
        yield Proxy(port, prefix / "access.log")
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(prefix, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Result:
    contender: str
    wall: float
    cpu: float
    pages: int
    problems: list[str]
    proxied: int | None = None  # requests the proxy passed on during the run (nginx only)


def command(
    contender: str, start_url: str, out: Path, stats: Path, proxy: str, frontier: str
) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    if contender.startswith("crawlkit"):
        settings = ["progress=off"] + ([f"proxies={proxy}"] if contender.endswith("proxied") else [])
        cmd = crawlkit_command(
            CONTENDERS_DIR / "crawlkit_spider.py",
            out,
            start_url,
            CONCURRENCY,
            frontier,
            out.with_suffix(".job"),
            settings,
        )
        return cmd, env
    cmd = [
        str(WORK / "venv-scrapy" / "bin" / "scrapy"), "runspider", str(CONTENDERS_DIR / "scrapy_spider.py"),
        "-L", "WARNING", "-a", f"start_url={start_url}", "-a", f"stats_path={stats}",
    ]  # fmt: skip
    env["BENCH_OUT"] = str(out)
    if contender.endswith("proxied"):
        env["http_proxy"] = proxy
    return cmd, env


def run(contender: str, start_url: str, proxy: Proxy, site: Path, frontier: str) -> Result:
    folder = WORK / "proxied"
    folder.mkdir(parents=True, exist_ok=True)
    out, stats = folder / f"{contender}.jsonl", folder / f"{contender}-stats.json"
    log = folder / f"{contender}.log"
    for path in (out, stats):
        path.unlink(missing_ok=True)
    shutil.rmtree(out.with_suffix(".job"), ignore_errors=True)
    cmd, env = command(contender, start_url, out, stats, f"http://127.0.0.1:{proxy.port}", frontier)
    before = proxy.requests()
    start = time.monotonic()
    with log.open("wb") as stderr:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    problems = (
        [] if os.waitstatus_to_exitcode(status) == 0 else [f"exit code {os.waitstatus_to_exitcode(status)}"]
    )
    manifest, expected = load_expected(site)
    _, invalid = validate(out, manifest, expected)
    pages = pages_reported(contender, stats, log) or 0
    after = proxy.requests()
    through = None if after is None or before is None else after - before
    if through is not None and (through >= pages) != contender.endswith("proxied"):
        problems.append(f"{through} requests went through the proxy, for {pages} pages")
    return Result(contender, wall, usage.ru_utime + usage.ru_stime, pages, problems + invalid, through)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="products in the shop (default 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every contender (default 3)")
    ap.add_argument(
        "--proxy", choices=("nginx", "test"), default="nginx", help="the forward proxy (default nginx)"
    )
    ap.add_argument("--frontier", default="sqlite", help="crawlkit's frontier (default sqlite)")
    ap.add_argument(
        "--contenders", default=",".join(CONTENDERS), help="comma-separated, of " + ", ".join(CONTENDERS)
    )
    args = ap.parse_args()
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = set(names) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"unknown contenders: {', '.join(sorted(unknown))}")
    ensure_tools()
    if any(name.startswith("scrapy") for name in names):
        ensure_venv("venv-scrapy")
    compile_crawlkit()
    site = ensure_site(args.n, 42)
    results: dict[str, list[Result]] = {name: [] for name in names}
    with Nginx(free_port(), site) as server, forward_proxy(args.proxy, server.port) as proxy:
        start_url = f"http://127.0.0.1:{server.port}/index.html"
        for round_no in range(args.rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                r = run(name, start_url, proxy, site, args.frontier)
                results[name].append(r)
                state = "ok" if not r.problems else "INVALID: " + "; ".join(r.problems)[:300]
                took = f"{r.wall:6.2f} s  CPU {r.cpu:6.2f} s  {r.pages} pages"
                if r.proxied:
                    took += f" ({r.proxied} through the proxy)"
                print(f"round {round_no + 1} {name:17} {took}  {state}", flush=True)
    print()
    print(f"proxy: {args.proxy}; {args.n} products; {args.rounds} rounds; crawlkit frontier {args.frontier}")
    print()
    head = [
        "contender",
        "valid runs",
        "median wall s (min–max)",
        "pages/s",
        "CPU ms/page",
        "speed vs scrapy-proxied",
    ]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|")
    reference = _median_wall(results.get("scrapy-proxied", []))
    for name, runs in results.items():
        valid = [r for r in runs if not r.problems and r.pages]
        if not valid:
            print(f"| {name} | 0/{len(runs)} | – | – | – | – |")
            continue
        wall = _median_wall(valid)
        walls = [r.wall for r in valid]
        cpu_per_page = statistics.median(r.cpu / r.pages for r in valid) * 1e3
        pages_s = statistics.median(r.pages / r.wall for r in valid)
        ratio = f"{reference / wall:.2f}×" if reference and wall else "–"
        print(
            f"| {name} | {len(valid)}/{len(runs)} | {wall:.2f} ({min(walls):.2f}–{max(walls):.2f}) | "
            f"{pages_s:.0f} | {cpu_per_page:.2f} | {ratio} |"
        )
    return 0


def _median_wall(runs: list[Result]) -> float | None:
    valid = [r.wall for r in runs if not r.problems and r.pages]
    return statistics.median(valid) if valid else None


if __name__ == "__main__":
    sys.exit(main())
