"""What a crawl through a proxy with sessions and block detection costs, against the same crawl direct.

    .venv/bin/python bench/identities.py --n 10000 --rounds 3

The benchmark shop (``bench/site.py``, generated into ``bench/.work/site-N`` unless there) is
served by ``bench/delay_server.py`` (no added latency); the proxy is the test suite's forward proxy
(``tests/support/forwardproxy.py``, a real HTTP proxy on 127.0.0.1) in a process of its own, so
that its CPU is not counted as the crawl's. Each round runs both crawls, in turn, as
``crawlkit runspider bench/contenders/crawlkit_spider.py`` (memory frontier, 64/64 concurrency):

* ``direct``: no proxy. Every answer is still classified (the classifier labels every attempt);
* ``proxied``: ``proxies = [the proxy]``, so sessions are on (two live ones), each request goes
  through the proxy with its session's cookies and profile, and each label is recorded.

CPU is user + system time of the crawl's process tree (the main process and its parser workers,
from ``wait4``). The test proxy closes each connection after one request (it forwards with
``Connection: close``), so the proxied crawl also pays one new connection a page: a keep-alive
proxy costs less. The classifier's own cost is measured apart, in this process: every page of the
site classified as the crawl receives it (gzip, ``text/html``, status 200), best of 5.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SPIDER = HERE / "contenders" / "crawlkit_spider.py"

_PROXY = """
import sys
sys.path.insert(0, {tests!r})
from support.forwardproxy import ForwardProxy
proxy = ForwardProxy(name="bench-proxy")
proxy.start()
print("PORT", proxy.port, flush=True)
sys.stdin.read()
proxy.stop()
"""


def site_dir(n: int) -> Path:
    folder = HERE / ".work" / f"site-{n}"
    if not (folder / "index.html").is_file():
        subprocess.run([PY, str(HERE / "site.py"), str(folder), "--n", str(n)], check=True)
    return folder


def started(cmd: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "PORT":
        proc.kill()
        raise SystemExit(f"{cmd[1]} did not start: {line}")
    return proc, int(line[1])


def stopped(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def crawl(site_port: int, out: Path, proxy: str | None) -> tuple[float, float, int]:
    """One crawl: (wall seconds, CPU seconds of its process tree, items written)."""
    cmd = [
        PY, "-m", "crawlkit", "runspider", str(SPIDER), "-o", str(out), "--overwrite",
        "-a", f"start_url=http://127.0.0.1:{site_port}/index.html",
        "-s", "concurrency=64", "-s", "concurrency_per_host=64", "--frontier", "memory",
        "-s", "obey_robots=false", "--log-level", "WARNING", "-s", "progress=off",
    ]  # fmt: skip
    if proxy is not None:
        cmd += ["-s", f"proxies={proxy}"]
    start = time.monotonic()
    log = out.with_suffix(".log")
    with log.open("wb") as stderr:  # the summary and any error, kept for a look
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"crawl failed with exit code {proc.returncode} (see {log}): {' '.join(cmd)}")
    items = sum(1 for _ in out.open("rb"))
    return wall, usage.ru_utime + usage.ru_stime, items


def classify_cost(folder: Path) -> float:
    """Microseconds per page to classify every page of the site as the crawl receives it."""
    from crawlkit.fetch import Classifier

    pages = [p.read_bytes() for p in folder.rglob("*.html.gz")] or [
        p.read_bytes() for p in folder.rglob("*.html")
    ]
    coding = "gzip" if next(folder.rglob("*.html.gz"), None) else ""
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Server", "nginx")]
    classifier = Classifier()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for body in pages:
            classifier.response(200, headers, body, coding)
        best = min(best, (time.perf_counter() - start) / len(pages))
    return best * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="products in the shop (default 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of both crawls (default 3)")
    args = ap.parse_args()
    folder = site_dir(args.n)
    out = HERE / ".work" / "identities-items.jsonl"
    site, site_port = started([PY, str(HERE / "delay_server.py"), str(folder), "--latency", "0"])
    proxy, proxy_port = started([PY, "-c", _PROXY.format(tests=str(ROOT / "tests"))])
    results: dict[str, list[tuple[float, float, int]]] = {"direct": [], "proxied": []}
    try:
        for round_ in range(args.rounds):
            order = ["direct", "proxied"] if round_ % 2 == 0 else ["proxied", "direct"]
            for name in order:
                via = f"http://127.0.0.1:{proxy_port}" if name == "proxied" else None
                wall, cpu, items = crawl(site_port, out, via)
                results[name].append((wall, cpu, items))
                print(
                    f"round {round_ + 1} {name:8} {wall:6.2f} s  CPU {cpu:6.2f} s  {items} items", flush=True
                )
    finally:
        stopped(proxy)
        stopped(site)
    print()
    print("| crawl | wall s (median) | CPU s (median) | CPU µs per page | items |")
    print("|---|---|---|---|---|")
    medians: dict[str, float] = {}
    for name, runs in results.items():
        walls = sorted(r[0] for r in runs)
        cpus = sorted(r[1] for r in runs)
        items = runs[0][2]
        medians[name] = cpus[len(cpus) // 2] / items * 1e6
        wall, cpu = walls[len(walls) // 2], cpus[len(cpus) // 2]
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {medians[name]:.0f} | {items} |")
    cost = classify_cost(folder)
    print()
    share = 100 * cost / medians["proxied"]
    print(f"classifier: {cost:.1f} µs per page, {share:.2f} % of the proxied crawl's CPU per page")
    print(f"proxy and sessions: {100 * (medians['proxied'] / medians['direct'] - 1):+.1f} % CPU per page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
