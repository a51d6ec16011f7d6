"""The benchmark runner behind ``bench/run`` (standard library only).

    bench/run --n 10000 --rounds 3 --contenders crawlkit-sqlite,crawlkit-memory,scrapy,baseline

1. creates the missing virtualenvs under bench/.work/ (Scrapy; aiohttp + selectolax + orjson),
   and installs nginx and GNU time with apt-get if they are missing;
2. generates the site into bench/.work/site-N/ with bench/site.py unless it is there already;
3. starts nginx on a free port of 127.0.0.1 (bench/serve.sh) and stops it at the end, also on
   Ctrl-C, SIGTERM or an error;
4. warms the page cache with one unrecorded pass (reads every file of the site);
5. runs the contenders interleaved, round after round (A B C, A B C, ...), each under
   ``/usr/bin/time -v`` with a timeout, sampling the process tree's RSS from /proc 4 times a second;
6. validates every output against the site's manifest.json and expected.jsonl; an invalid run is
   reported as INVALID and left out of the figures;
7. prints a markdown table and writes the raw data to bench/.work/results-STAMP.json.

``--profile NAME`` instead runs contender NAME once under py-spy (installed into the baseline's
virtualenv) and prints the functions with the most self time, per process.

``--latency MS`` serves the site from bench/delay_server.py instead of nginx: every answer comes
after MS milliseconds, as from a real site, so that the crawl is bound by latency, not by CPU.

``--tree LABEL=PATH`` (repeatable) runs each crawlkit contender also as ``NAME@LABEL``, with the
crawlkit of the checkout PATH (a git worktree of another commit, say), in the same rounds.
"""

# The table uses typographic characters on purpose (en dashes for ranges, multiplication signs for ratios).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cores import cores_given

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / ".work"
CONTENDERS_DIR = BENCH / "contenders"
TIME = "/usr/bin/time"
DEFAULT_CONTENDERS = "crawlkit-sqlite,crawlkit-memory,scrapy,baseline"
VENVS = {
    "venv-scrapy": ["scrapy"],
    "venv-base": ["aiohttp", "selectolax", "orjson"],
}

# ------------------------------------------------------------------------------------ contenders


@dataclass(frozen=True)
class Run:
    """What one run of a contender needs to know."""

    start_url: str
    out: Path
    stats: Path
    tmp: Path
    concurrency: int


@dataclass(frozen=True)
class Contender:
    name: str
    venv: str | None  # the bench virtualenv it needs, if any
    describe: str
    argv: Callable[[Run], tuple[list[str], dict[str, str]]]
    check: Callable[[], str | None] = lambda: None  # why it cannot run, or None


def crawlkit_bin() -> str:
    local = REPO / ".venv" / "bin" / "crawlkit"
    if local.exists():
        return str(local)
    found = shutil.which("crawlkit")
    if found is None:
        raise SystemExit("crawlkit is not installed: run scripts/setup (or pip install -e .) first")
    return found


def crawlkit_python() -> str:
    return str(Path(crawlkit_bin()).with_name("python"))


def contract_settings(concurrency: int) -> list[str]:
    """The contract: default settings except concurrency, robots.txt and throttling off."""
    return [
        f"concurrency={concurrency}",
        f"concurrency_per_host={concurrency}",
        "obey_robots=false",
        "autothrottle=false",
    ]


def setting_args(settings: list[str]) -> list[str]:
    """``-s SETTING`` for each of ``settings``."""
    return [arg for setting in settings for arg in ("-s", setting)]


def crawlkit_command(
    spider: Path,
    out: Path,
    start_url: str,
    concurrency: int,
    frontier: str,
    job_dir: Path,
    settings: list[str] | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    """``crawlkit runspider`` on the contract's terms, with ``settings`` and ``extra`` arguments on top."""
    return [
        crawlkit_bin(),
        "runspider",
        str(spider),
        "-o",
        str(out),
        "-a",
        f"start_url={start_url}",
        *setting_args(contract_settings(concurrency)),
        "--frontier",
        frontier,
        "--job-dir",
        str(job_dir),
        "--overwrite",
        "--log-level",
        "WARNING",
        *(extra or []),
        *setting_args(settings or []),
    ]


def _crawlkit(
    frontier: str, *settings: str, spider_file: str = "crawlkit_spider.py"
) -> Callable[[Run], tuple[list[str], dict[str, str]]]:
    def argv(run: Run) -> tuple[list[str], dict[str, str]]:
        spider = CONTENDERS_DIR / spider_file
        command = crawlkit_command(
            spider, run.out, run.start_url, run.concurrency, frontier, run.tmp / "job", list(settings)
        )
        return command, {}

    return argv


def _sqlite_frontier_missing() -> str | None:
    probe = subprocess.run(
        [crawlkit_python(), "-c", "import crawlkit.frontier.sqlite"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"crawlkit has no sqlite frontier yet ({last})"
    return None


def _scrapy(run: Run) -> tuple[list[str], dict[str, str]]:
    return [
        str(WORK / "venv-scrapy" / "bin" / "scrapy"),
        "runspider",
        str(CONTENDERS_DIR / "scrapy_spider.py"),
        "-L",
        "WARNING",
        "-a",
        f"start_url={run.start_url}",
        "-a",
        f"stats_path={run.stats}",
        "-s",
        f"CONCURRENT_REQUESTS={run.concurrency}",
        "-s",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={run.concurrency}",
    ], {"BENCH_OUT": str(run.out)}


def _baseline(run: Run) -> tuple[list[str], dict[str, str]]:
    return [
        str(WORK / "venv-base" / "bin" / "python"),
        str(CONTENDERS_DIR / "baseline.py"),
        run.start_url,
        str(run.out),
        "--stats",
        str(run.stats),
        "--concurrency",
        str(run.concurrency),
    ], {}


CONTENDERS = {
    c.name: c
    for c in (
        Contender(
            "crawlkit-sqlite",
            None,
            "crawlkit runspider, durable SQLite frontier (the default)",
            _crawlkit("sqlite"),
            _sqlite_frontier_missing,
        ),
        Contender("crawlkit-memory", None, "crawlkit runspider, --frontier memory", _crawlkit("memory")),
        Contender(
            "crawlkit-inline",
            None,
            "crawlkit, memory frontier, parse_workers=0: callbacks on the event loop (a diagnostic)",
            _crawlkit("memory", "parse_workers=0"),
        ),
        Contender(
            "crawlkit-xpath",
            None,
            "crawlkit-sqlite with every selection by response.xpath (parsel over lxml, as Scrapy's)",
            _crawlkit("sqlite", spider_file="crawlkit_xpath_spider.py"),
            _sqlite_frontier_missing,
        ),
        Contender("scrapy", "venv-scrapy", "Scrapy runspider, CSS selectors, jsonlines feed", _scrapy),
        Contender("baseline", "venv-base", "hand-written aiohttp + selectolax + orjson, one core", _baseline),
    )
}

# ------------------------------------------------------------------------------------ set-up


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def apt_install(*packages: str) -> None:
    log(f"installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], env=env, check=True)


def ensure_tools() -> None:
    missing = []
    if not Path(TIME).exists():
        missing.append("time")
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        missing.append("nginx")
    if missing:
        apt_install(*missing)


def ensure_venv(name: str, extra: list[str] | None = None) -> None:
    venv = WORK / name
    python = venv / "bin" / "python"
    packages = VENVS[name] + (extra or [])
    if python.exists():
        probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in sys.argv[1:]))"
        modules = [p for p in packages if p != "py-spy"]
        tools_ok = "py-spy" not in packages or (venv / "bin" / "py-spy").exists()
        if tools_ok and subprocess.run([str(python), "-c", probe, *modules]).returncode == 0:
            return
    else:
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-U", "pip"], check=True)
    log(f"installing {' '.join(packages)} into {venv}")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-U", *packages], check=True)


def compile_crawlkit(src: Path = REPO / "src") -> None:
    """Byte-compile crawlkit's sources (``src``), as an installed package is.

    crawlkit runs from the source tree (an editable install). Where ``PYTHONDONTWRITEBYTECODE`` is
    set, or after an edit, every run would compile the modules again: about 0.1 s more per crawl,
    which the other contenders, installed by pip with their bytecode, never pay.
    """
    subprocess.run([crawlkit_python(), "-m", "compileall", "-q", str(src)], check=True)


def tree_source(tree: str) -> tuple[str, Path]:
    """``--tree LABEL=PATH``: the label and the checkout's ``src``, byte-compiled (compile_crawlkit)."""
    label, sep, path = tree.partition("=")
    src = Path(path).resolve() / "src"
    if not sep or not label or not (src / "crawlkit").is_dir():
        raise SystemExit(f"--tree {tree!r}: expected LABEL=PATH of a crawlkit checkout")
    compile_crawlkit(src)
    return label, src


def add_tree_contenders(names: list[str], trees: list[str]) -> list[str]:
    """``names`` with each crawlkit contender run as it is and once more per tree of ``trees``
    (``LABEL=PATH``).

    ``NAME@LABEL`` is contender NAME with ``PATH/src`` first on ``PYTHONPATH`` (its parser workers
    inherit it), in this repository's virtualenv and with this repository's spider: other commits
    of crawlkit, measured in the same interleaved session. Each tree is byte-compiled first.
    """
    expanded: list[str] = []
    for name in names:
        if not name.startswith("crawlkit") or not trees:
            expanded.append(name)
            continue
        base = CONTENDERS[name]
        expanded.append(name)  # "also": this checkout's run stays, the trees' come beside it
        for tree in trees:
            label, src = tree_source(tree)
            CONTENDERS[f"{name}@{label}"] = Contender(
                f"{name}@{label}",
                base.venv,
                f"{base.describe}; crawlkit from {src}",
                _from_tree(base.argv, src),
            )
            expanded.append(f"{name}@{label}")
    return expanded


def _from_tree(
    argv: Callable[[Run], tuple[list[str], dict[str, str]]], src: Path
) -> Callable[[Run], tuple[list[str], dict[str, str]]]:
    def from_tree(run: Run) -> tuple[list[str], dict[str, str]]:
        command, env = argv(run)
        return command, {**env, "PYTHONPATH": str(src)}

    return from_tree


def ensure_site(n: int, seed: int) -> Path:
    site = WORK / (f"site-{n}" if seed == 42 else f"site-{n}-s{seed}")
    manifest = site / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text(encoding="utf-8"))
        if m.get("n") == n and m.get("seed") == seed:
            return site
    log(f"generating the site: {n} products, seed {seed}, into {site}")
    subprocess.run(
        [crawlkit_python(), str(BENCH / "site.py"), str(site), "--n", str(n), "--seed", str(seed)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return site


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx on 127.0.0.1:port through bench/serve.sh; a context manager that always stops it."""

    def __init__(self, port: int, site: Path) -> None:
        self.port = port
        self.site = site
        self.master: int | None = None
        self.error_log = WORK / f"nginx-{port}" / "error.log"

    def __enter__(self) -> Nginx:
        done = subprocess.run(
            ["bash", str(BENCH / "serve.sh"), "start", str(self.port), str(self.site)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"could not start nginx: {done.stderr.strip()}")
        self.master = int(done.stdout.split()[-1])
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["bash", str(BENCH / "serve.sh"), "stop", str(self.port)], capture_output=True)
        if self.error_log_size() == 0:  # nothing worth keeping: ports differ from run to run
            shutil.rmtree(self.error_log.parent, ignore_errors=True)

    @property
    def worker(self) -> int | None:
        kids = children(self.master) if self.master else []
        return kids[0] if kids else None

    def error_log_size(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0

    def errors_since(self, offset: int) -> list[str]:
        return _error_lines(self.error_log, offset, r"\[(error|crit|alert|emerg)\]")


def _error_lines(log: Path, offset: int, pattern: str) -> list[str]:
    """The lines of ``log`` past ``offset`` that match ``pattern``."""
    if not log.exists():
        return []
    with open(log, errors="replace") as f:
        f.seek(offset)
        return [line.strip() for line in f if re.search(pattern, line)]


def start_port_server(argv: list[str], stderr: Any = None) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server that prints ``PORT <n>`` once it listens and exits when its stdin closes.

    Its own session: Ctrl-C reaches the benchmark only, which then stops the server.
    """
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "PORT":
        stop_port_server(proc)
        raise SystemExit(f"the server {argv[1]} did not start")
    return proc, int(line[1])


def stop_port_server(proc: subprocess.Popen[bytes]) -> None:
    """Close its stdin and wait (10 s at most, then kill)."""
    with contextlib.suppress(OSError):
        assert proc.stdin is not None
        proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class DelayServer:
    """bench/delay_server.py (the site, each answer after ``latency_ms``); quacks like Nginx."""

    def __init__(self, site: Path, latency_ms: float) -> None:
        self.site = site
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.error_log = WORK / "delay-server.log"

    def __enter__(self) -> DelayServer:
        argv = [
            crawlkit_python(),
            str(BENCH / "delay_server.py"),
            str(self.site),
            "--latency",
            str(self.latency_ms),
        ]
        with open(self.error_log, "wb") as stderr:
            self.proc, self.port = start_port_server(argv, stderr)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_port_server(self.proc)
            self.proc = None

    @property
    def worker(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def error_log_size(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0

    def errors_since(self, offset: int) -> list[str]:
        return _error_lines(self.error_log, offset, r"\S")


def fetch_both(url: str) -> tuple[bytes, str | None, str | None, bytes]:
    """``url`` fetched plain and with gzip: (plain body, its Content-Type, Content-Encoding of the
    gzip request, its body as sent)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        plain, ctype = resp.read(), resp.headers.get("Content-Type")
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        encoding, packed = resp.headers.get("Content-Encoding"), resp.read()
    return plain, ctype, encoding, packed


def check_serving(base: str, site: Path) -> None:
    """The server answers, and its gzip body inflates to the plain file."""
    path = "/catalogue/product-1.html"
    want = (site / path.lstrip("/")).read_bytes()
    plain, _ctype, encoding, packed = fetch_both(base + path)
    if plain != want or encoding != "gzip" or gzip.decompress(packed) != want:
        raise SystemExit(f"nginx does not serve {site} as expected (Content-Encoding {encoding!r})")


def warm_page_cache(site: Path) -> tuple[int, float]:
    """Read every file of the site once, so that no run pays for the disk."""
    started = time.perf_counter()
    total = 0
    for root, _dirs, files in os.walk(site):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return total, time.perf_counter() - started


# ------------------------------------------------------------------------------------ /proc


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def descendants(pid: int) -> list[int]:
    found, stack = [], children(pid)
    while stack:
        p = stack.pop()
        found.append(p)
        stack.extend(children(p))
    return found


def status_kb(pid: int, *keys: str) -> dict[str, int]:
    values = dict.fromkeys(keys, 0)
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in values:
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def alive(pid: int) -> bool:
    """Running (not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeSampler(threading.Thread):
    """Every ``period`` s: the summed RSS of every process under ``root`` (``time`` itself excluded).

    It also keeps the last CPU time seen of each process, to split the run's CPU between the main
    process and its helpers (parser workers); that misses at most a period of each.
    """

    def __init__(self, root: int, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.period = period
        self.tree_peak_kb = 0
        self.main_hwm_kb = 0
        self.max_processes = 0
        self.seen: set[int] = set()
        self.main_pid: int | None = None
        self.cpu_seen: dict[int, float] = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        pids = descendants(self.root)
        self.seen.update(pids)
        total = 0
        for pid in pids:
            total += status_kb(pid, "VmRSS")["VmRSS"]
            self.cpu_seen[pid] = max(self.cpu_seen.get(pid, 0.0), cpu_seconds(pid))
        if pids:
            main = self.main_pid = min(children(self.root) or pids)
            self.main_hwm_kb = max(self.main_hwm_kb, status_kb(main, "VmHWM")["VmHWM"])
        self.tree_peak_kb = max(self.tree_peak_kb, total)
        self.max_processes = max(self.max_processes, len(pids))

    def run(self) -> None:
        while not self._halt.wait(self.period):
            self.sample()

    @property
    def main_cpu_s(self) -> float:
        return self.cpu_seen.get(self.main_pid, 0.0) if self.main_pid is not None else 0.0

    @property
    def helpers_cpu_s(self) -> float:
        return sum(cpu for pid, cpu in self.cpu_seen.items() if pid != self.main_pid)

    def stop(self) -> None:
        self._halt.set()
        self.join()


TIME_FIELDS = {
    "User time (seconds)": "user_s",
    "System time (seconds)": "sys_s",
    "Maximum resident set size (kbytes)": "maxrss_kb",
    "Voluntary context switches": "voluntary_switches",
    "Involuntary context switches": "involuntary_switches",
    "Percent of CPU this job got": "cpu_percent",
    "Exit status": "exit_status",
}


def parse_time_v(path: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    if not path.exists():
        return found
    for line in path.read_text(errors="replace").splitlines():
        key, _, value = line.strip().rpartition(": ")
        if key in TIME_FIELDS:
            with contextlib.suppress(ValueError):
                found[TIME_FIELDS[key]] = float(value.rstrip("%"))
    return found


# ------------------------------------------------------------------------------------ validation


def load_expected(site: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    expected = {}
    with open(site / "expected.jsonl", encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            expected[item["url"]] = item
    return manifest, expected


def validate(
    out: Path, manifest: dict[str, Any], expected: dict[str, dict[str, Any]]
) -> tuple[int, list[str]]:
    """(number of items, problems); no problems means a valid run."""
    if not out.exists():
        return 0, ["no output file"]
    problems: list[str] = []
    count = 0
    skus: Counter[str] = Counter()
    paths: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    examples: list[str] = []
    with open(out, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            count += 1
            try:
                item = json.loads(line)
            except ValueError:
                wrong["bad JSON"] += 1
                if len(examples) < 5:
                    examples.append(f"line {lineno} is not JSON: {line[:120]!r}")
                continue
            if not isinstance(item, dict):
                wrong["not an object"] += 1
                continue
            path = urlsplit(str(item.get("url") or "")).path
            skus[str(item.get("sku"))] += 1
            paths[path] += 1
            want = expected.get(path)
            if want is None:
                wrong["unknown url"] += 1
                if len(examples) < 5:
                    examples.append(f"line {lineno}: unknown url {item.get('url')!r}")
                continue
            for key in ("title", "price", "sku", "availability", "n_related"):
                got = item.get(key)
                if key == "availability" and isinstance(got, str):
                    got = " ".join(got.split())
                if got != want[key]:
                    wrong[key] += 1
                    if len(examples) < 5:
                        examples.append(f"{path} {key}: got {item.get(key)!r}, want {want[key]!r}")
    n = manifest["n"]
    if count != n:
        problems.append(f"{count} items, want exactly {n}")
    want_skus = set(manifest["skus"])
    missing = want_skus - set(skus)
    extra = set(skus) - want_skus
    if missing or extra:
        problems.append(f"{len(missing)} SKUs of the manifest missing, {len(extra)} unknown SKUs")
    duplicate_skus = sum(c - 1 for c in skus.values() if c > 1)
    duplicate_urls = sum(c - 1 for c in paths.values() if c > 1)
    if duplicate_skus or duplicate_urls:
        problems.append(f"{duplicate_skus} duplicate SKUs, {duplicate_urls} duplicate URLs")
    if wrong:
        problems.append(f"wrong fields {dict(wrong)}; e.g. {examples}")
    return count, problems


_PAGES_FETCHED = re.compile(r"pages fetched\s+(\d+)")


def pages_reported(contender: str, stats: Path, log_path: Path) -> int | None:
    """The pages the contender says it fetched: its stats file, or crawlkit's summary."""
    if stats.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return int(json.loads(stats.read_text())["pages"])
    if contender.startswith("crawlkit") and log_path.exists():
        found = _PAGES_FETCHED.findall(log_path.read_text(errors="replace"))
        if found:
            return int(found[-1])
    return None


# ------------------------------------------------------------------------------------ running


@dataclass
class Session:
    stamp: str
    logs: Path
    nginx: Nginx | DelayServer
    start_url: str
    manifest: dict[str, Any]
    expected: dict[str, dict[str, Any]]
    concurrency: int
    timeout: float


def kill_tree(proc: subprocess.Popen[bytes], seen: set[int]) -> None:
    """Kill the run's process group, then any process of its tree that left the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in seen:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def work_tmp(prefix: str) -> Path:
    """A fresh folder under bench/.work/tmp for one run."""
    (WORK / "tmp").mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=WORK / "tmp"))


@dataclass
class TimedRun:
    """One command run under ``time -v`` in its folder ``tmp``, its process tree sampled (``timed_run``)."""

    tag: str
    tmp: Path
    logs: Path
    argv: list[str]
    timeout: float
    rc: int
    wall: float
    timed_out: bool
    sampler: TreeSampler
    tv: dict[str, float]

    @property
    def log_path(self) -> Path:
        return self.logs / f"{self.tag}.log"

    def measures(self) -> dict[str, Any]:
        """The figures every run records: CPU time, peak RSS (main process and tree), processes."""
        return {
            "user_s": self.tv.get("user_s"),
            "sys_s": self.tv.get("sys_s"),
            "cpu_s": round(self.tv.get("user_s", 0.0) + self.tv.get("sys_s", 0.0), 2),
            "main_peak_rss_mb": round(self.tv.get("maxrss_kb", 0) / 1024, 1),
            "tree_peak_rss_mb": round(self.sampler.tree_peak_kb / 1024, 1),
            "main_cpu_s_sampled": round(self.sampler.main_cpu_s, 2),
            "max_processes": self.sampler.max_processes,
        }

    def result(self, contender: str, round_no: int, problems: list[str], **fields: Any) -> dict[str, Any]:
        """The run's record: a timeout or a failed exit comes first among ``problems``, ``fields``
        after the verdict. The output of an invalid run is kept for a look, that of a valid one is
        deleted."""
        if self.timed_out:
            problems.insert(0, f"timed out after {self.timeout:g} s")
        elif self.rc != 0:
            problems.insert(0, f"exit code {self.rc}")
        result: dict[str, Any] = {
            "contender": contender,
            "round": round_no,
            "valid": not problems,
            "problems": problems,
            "rc": self.rc,
            "wall_s": round(self.wall, 3),
            **fields,
            "time_v": self.tv,
            "log": str(self.log_path),
            "cmd": shlex.join(self.argv),
        }
        if problems:
            keep = self.logs / f"{self.tag}-output"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(str(self.tmp), keep)
            result["kept"] = str(keep)
            result["log_head"] = self.log_path.read_text(errors="replace").splitlines()[:15]
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return result


def timed_run(
    tag: str, tmp: Path, logs: Path, argv: list[str], env_extra: dict[str, str], timeout: float
) -> TimedRun:
    """Run ``argv`` in ``tmp`` under ``time -v``, its output in ``logs/TAG.log`` (its command line in
    ``logs/TAG.cmd``), killed after ``timeout`` s; processes of its tree that outlive it are killed."""
    time_file = tmp / "time.txt"
    cmd = [TIME, "-v", "-o", str(time_file), *argv]
    log_path = logs / f"{tag}.log"
    env = {**os.environ, **env_extra, "PYTHONUNBUFFERED": "1"}
    (logs / f"{tag}.cmd").write_text(
        "".join(f"{k}={shlex.quote(v)} " for k, v in env_extra.items()) + shlex.join(argv) + "\n"
    )
    timed_out = False
    with open(log_path, "wb") as out_log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out_log,
            stderr=subprocess.STDOUT,
            cwd=tmp,
            env=env,
            start_new_session=True,
        )
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            sampler.sample()
            kill_tree(proc, sampler.seen)
            rc = proc.wait()
            time.sleep(0.2)  # let the killed processes be reaped
        except BaseException:  # Ctrl-C: take the run down with us
            kill_tree(proc, sampler.seen)
            proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        wall = time.perf_counter() - started
        sampler.stop()
    for pid in sampler.seen:  # a parser worker that outlived its parent would skew the next run
        if alive(pid):
            log(f"  {tag}: process {pid} outlived the run; killing it")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return TimedRun(tag, tmp, logs, argv, timeout, rc, wall, timed_out, sampler, parse_time_v(time_file))


def run_once(session: Session, contender: Contender, round_no: int) -> dict[str, Any]:
    tag = f"{contender.name}-r{round_no}"
    tmp = work_tmp(f"{tag}-")
    run = Run(session.start_url, tmp / "items.jsonl", tmp / "stats.json", tmp, session.concurrency)
    argv, env_extra = contender.argv(run)
    given = cores_given()
    nginx_cpu0 = cpu_seconds(session.nginx.worker)
    nginx_log0 = session.nginx.error_log_size()
    t = timed_run(tag, tmp, session.logs, argv, env_extra, session.timeout)
    nginx_cpu = cpu_seconds(session.nginx.worker) - nginx_cpu0
    items, problems = validate(run.out, session.manifest, session.expected)
    pages = pages_reported(contender.name, run.stats, t.log_path)
    if pages is not None and pages != session.manifest["pages_total"]:
        problems.append(f"fetched {pages} pages, the site has {session.manifest['pages_total']}")
    nginx_errors = session.nginx.errors_since(nginx_log0)
    if nginx_errors:
        problems.append(f"{len(nginx_errors)} nginx errors, e.g. {nginx_errors[0][:200]}")
    measures = t.measures()
    return t.result(
        contender.name,
        round_no,
        problems,
        items=items,
        pages=pages if pages is not None else session.manifest["pages_total"],
        pages_reported=pages,
        **measures,
        # The machine's cores this run kept busy, nginx included (the CPU count is all of them).
        cores_busy=round((measures["cpu_s"] + nginx_cpu) / t.wall, 2),
        main_hwm_sampled_mb=round(t.sampler.main_hwm_kb / 1024, 1),
        helpers_cpu_s_sampled=round(t.sampler.helpers_cpu_s, 2),
        nginx_cpu_s=round(nginx_cpu, 2),
        cores_given=round(given, 2),
    )


# ------------------------------------------------------------------------------------ summary


def summarize_runs(
    runs: list[dict[str, Any]],
    names: list[str],
    pages_total: int,
    medians: dict[str, str],
    speed_vs: dict[str, str],
) -> list[dict[str, Any]]:
    """A row per contender of ``names``, from its valid runs: the median, min and max wall time,
    pages/s and CPU ms/page from the median wall and CPU time, ``key`` the median of the runs'
    ``medians[key]`` figure; then ``speed_vs[ref]``, how many times faster than contender ``ref``
    (None where either has no valid run)."""
    rows = []
    for name in names:
        mine = [r for r in runs if r["contender"] == name]
        ok = [r for r in mine if r["valid"]]
        row: dict[str, Any] = {"contender": name, "runs": len(mine), "valid_runs": len(ok)}
        if ok:
            walls = [r["wall_s"] for r in ok]
            wall = statistics.median(walls)
            row.update(
                wall_s=wall,
                wall_min=min(walls),
                wall_max=max(walls),
                pages_per_s=pages_total / wall,
                cpu_ms_per_page=1000 * statistics.median(r["cpu_s"] for r in ok) / pages_total,
            )
            row.update({key: statistics.median(r[figure] for r in ok) for key, figure in medians.items()})
        rows.append(row)
    by_name = {r["contender"]: r for r in rows}
    for row in rows:
        for ref, key in speed_vs.items():
            other = by_name.get(ref, {})
            row[key] = other["wall_s"] / row["wall_s"] if "wall_s" in other and "wall_s" in row else None
    return rows


def summarize(runs: list[dict[str, Any]], names: list[str], pages_total: int) -> list[dict[str, Any]]:
    medians = {
        "main_peak_rss_mb": "main_peak_rss_mb",
        "tree_peak_rss_mb": "tree_peak_rss_mb",
        "nginx_cpu_s": "nginx_cpu_s",
        "cores_busy": "cores_busy",
    }
    return summarize_runs(
        runs, names, pages_total, medians, {"scrapy": "vs_scrapy", "baseline": "vs_baseline"}
    )


# The first columns of every summary table, and their cells (``summary_cells``).
SUMMARY_HEAD = [
    "contender",
    "valid runs",
    "median wall s (min–max)",
    "pages/s",
    "CPU ms/page",
    "main peak RSS MB",
]


def summary_cells(r: dict[str, Any]) -> list[str]:
    return [
        r["contender"],
        f"{r['valid_runs']}/{r['runs']}",
        f"{r['wall_s']:.2f} ({r['wall_min']:.2f}–{r['wall_max']:.2f})",
        f"{r['pages_per_s']:,.0f}",
        f"{r['cpu_ms_per_page']:.2f}",
        f"{r['main_peak_rss_mb']:.0f}",
    ]


def cores_line(runs: list[dict[str, Any]], rows: list[dict[str, Any]] | None = None) -> str:
    """Under the table: what the cores did together before the runs (bench/cores.py), and how many
    of them each contender kept busy (its CPU and the server's, over its wall time; medians)."""
    given = [r["cores_given"] for r in runs if "cores_given" in r]
    if not given:
        return ""
    line = (
        f"\n\nBefore each run, {os.cpu_count()} processes did {statistics.median(given):.2f}× the work "
        f"of one (median of {len(given)} checks, {min(given):.2f}–{max(given):.2f}; `bench/cores.py`)."
    )
    busy = [f"{r['contender']} {r['cores_busy']:.2f}" for r in rows or [] if "cores_busy" in r]
    if busy:
        line += " Cores kept busy, the server's CPU included: " + ", ".join(busy) + "."
    return line


def ratio_cell(ratio: float | None) -> str:
    return f"{ratio:.2f}×" if ratio else "–"


def markdown_table(
    head: list[str], rows: list[dict[str, Any]], cells: Callable[[dict[str, Any]], list[str]]
) -> str:
    """A markdown table of summary rows: ``cells(row)`` for a row with valid runs, INVALID otherwise."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "wall_s" not in r:
            row = [r["contender"], f"{r['valid_runs']}/{r['runs']}", "INVALID"] + ["–"] * (len(head) - 3)
        else:
            row = cells(r)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = [*SUMMARY_HEAD, "tree peak RSS MB", "speed vs Scrapy", "speed vs baseline"]
    return markdown_table(
        head,
        rows,
        lambda r: [
            *summary_cells(r),
            f"{r['tree_peak_rss_mb']:.0f}",
            ratio_cell(r["vs_scrapy"]),
            ratio_cell(r["vs_baseline"]),
        ],
    )


_VERSIONS_PROBE = (
    "import sys, json, importlib.metadata as m\nv = {'python': sys.version.split()[0]}\n"
    "for p in sys.argv[1:]:\n    try: v[p] = m.version(p)\n    except Exception: pass\n"
    "print(json.dumps(v))"
)


def package_versions(python: str, packages: list[str]) -> dict[str, str] | None:
    """The versions of ``python`` and of those of ``packages`` it has; None if it cannot say."""
    with contextlib.suppress(subprocess.CalledProcessError, ValueError):
        done = subprocess.run(
            [python, "-c", _VERSIONS_PROBE, *packages], capture_output=True, text=True, check=True
        )
        versions: dict[str, str] = json.loads(done.stdout)
        return versions
    return None


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPUs, kernel, ``extra``, CPU model and memory of this machine."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "kernel": platform.release(), **extra}
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        info["mem_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    return info


def machine_line(m: dict[str, Any]) -> str:
    """The machine of a table's title: CPUs and their model, crawlkit's Python."""
    return f"{m.get('nproc')} × {m.get('cpu_model', '?')}, Python {m.get('crawlkit', {}).get('python', '?')}"


def machine() -> dict[str, Any]:
    info = machine_info(python=platform.python_version())
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with contextlib.suppress(OSError):
        info["nginx"] = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    pythons = {
        "crawlkit": (crawlkit_python(), ["crawlkit", "aiohttp", "selectolax", "orjson", "uvloop"]),
        "venv-scrapy": (
            str(WORK / "venv-scrapy" / "bin" / "python"),
            ["scrapy", "twisted", "lxml", "parsel"],
        ),
        "venv-base": (str(WORK / "venv-base" / "bin" / "python"), ["aiohttp", "selectolax", "orjson"]),
    }
    for label, (python, packages) in pythons.items():
        if Path(python).exists():
            versions = package_versions(python, packages)
            if versions is not None:
                info[label] = versions
    return info


# ------------------------------------------------------------------------------------ profiling


def profile(session: Session, contender: Contender, top: int, rate: int) -> None:
    """One run under py-spy; the functions with the most self time, for each process."""
    ensure_venv("venv-base", ["py-spy"])
    tmp = work_tmp(f"profile-{contender.name}-")
    run = Run(session.start_url, tmp / "items.jsonl", tmp / "stats.json", tmp, session.concurrency)
    argv, env_extra = contender.argv(run)
    raw = WORK / f"profile-{contender.name}-{session.stamp}.txt"
    svg = raw.with_suffix(".svg")
    spy = str(WORK / "venv-base" / "bin" / "py-spy")
    env = {**os.environ, **env_extra}
    for fmt, path in (("raw", raw), ("flamegraph", svg)):
        cmd = [
            spy,
            "record",
            "--subprocesses",
            "--native",
            "--rate",
            str(rate),
            "--format",
            fmt,
            "-o",
            str(path),
        ]
        for attempt in range(1, 4):  # py-spy 0.4 sometimes dies of SIGSEGV with --native --subprocesses
            log(f"profiling ({fmt}, attempt {attempt}): {shlex.join([*cmd, '--', *argv])}")
            path.unlink(missing_ok=True)
            proc = subprocess.Popen([*cmd, "--", *argv], cwd=tmp, env=env, start_new_session=True)
            try:
                rc = proc.wait(timeout=session.timeout)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the crawl, should py-spy have left it behind
            items, problems = validate(run.out, session.manifest, session.expected)
            verdict = "valid" if not problems else "INVALID: " + "; ".join(problems)
            log(f"  py-spy exit code {rc}; {items} items, {verdict}")
            if rc == 0 and path.exists():
                break
        else:
            raise SystemExit(f"py-spy failed three times; see {WORK / 'logs' / session.stamp}")
    shutil.rmtree(tmp, ignore_errors=True)
    report = self_time_report(raw, top)
    print(report)
    raw.with_suffix(".md").write_text(report + "\n")
    log(f"\nflame graph: {svg}\nraw stacks: {raw}")


# Native functions in which a thread waits rather than works: samples in them are not CPU time.
_WAITING = re.compile(
    r"^(epoll_p?wait|pthread_cond_(timed)?wait|(uv__)?sem_(timed)?wait|PyThread_acquire_lock_timed|"
    r"futex_wait|__futex_abstimed_wait\S*|select|poll|clock_nanosleep|nanosleep|do_futex_wait\S*) "
)


def _short(frame: str) -> str:
    return re.sub(r"\((?:[^()]*/)", "(", frame)  # file names without their folders


def self_time_report(raw: Path, top: int) -> str:
    """Per process: where the samples are, by innermost native frame and by innermost Python frame.

    Samples in which the thread waits (epoll, condition variables, semaphores: idle threads and
    the event loop's poll) are counted apart, so the percentages are of the busy samples.
    """
    native: dict[str, Counter[str]] = {}
    python: dict[str, Counter[str]] = {}
    busy: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # with --subprocesses, a child's stacks sit under its parent's "process PID:CMDLINE" frame
        at = max((i for i, f in enumerate(frames) if f.startswith("process ")), default=-1)
        command = re.sub(r"^process \d+:", "", frames[at]).strip('"') if at >= 0 else "?"
        key = "parser worker" if "crawlkit.parsing" in command else "main" if at <= 0 else command[:60]
        frames = frames[at + 1 :]
        if not frames:
            continue
        if any(_WAITING.match(f) for f in frames[-3:]):
            waiting[key] += count
            continue
        busy[key] += count
        native.setdefault(key, Counter())[_short(frames[-1])] += count
        py_frame = next(
            (f for f in reversed(frames) if re.search(r"\.py[x]?:\d+\)$|<frozen ", f)), frames[-1]
        )
        python.setdefault(key, Counter())[_short(py_frame)] += count
    out = []
    for key in sorted(busy, key=lambda k: -busy[k]):
        out.append(f"\n### {key}: {busy[key]} busy samples ({waiting[key]} more waiting, not counted)\n")
        for title, counter in (
            ("innermost frame, native included", native[key]),
            ("innermost Python frame", python[key]),
        ):
            out.append(f"| self % | samples | {title} |\n|---|---|---|")
            out.extend(
                f"| {100 * n / busy[key]:.1f} | {n} | `{frame}` |" for frame, n in counter.most_common(top)
            )
            out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------------ main


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C does, so that nginx and the current run are stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruptible(body: Callable[[list[str] | None], int], argv: list[str] | None, server: str) -> int:
    """``body(argv)``; on Ctrl-C, says the current run and ``server`` were stopped and returns 130."""
    try:
        return body(argv)
    except KeyboardInterrupt:
        log(f"interrupted: the current run and {server} were stopped")
        return 130


def run_rounds(
    rounds: int,
    names: list[str],
    pause: float,
    run_one: Callable[[str, int], dict[str, Any]],
    runs: list[dict[str, Any]],
    figures: Callable[[dict[str, Any]], str],
) -> None:
    """Every contender of ``names`` once a round (``run_one(name, round_no)``), ``pause`` s before
    each run; each run is added to ``runs`` and logged: wall and CPU time, ``figures(run)``, verdict."""
    for round_no in range(1, rounds + 1):
        for name in names:
            time.sleep(pause)
            r = run_one(name, round_no)
            runs.append(r)
            verdict = "ok" if r["valid"] else "INVALID: " + "; ".join(r["problems"])
            log(
                f"round {round_no} {name:16} {r['wall_s']:7.2f} s  cpu {r['cpu_s']:6.2f} s "
                f"{figures(r)}  {verdict}"
            )
            if not r["valid"]:
                log(f"  log: {r['log']}; output kept in {r['kept']}")
                for line in r["log_head"]:
                    log(f"  | {line}")


def add_session_options(ap: argparse.ArgumentParser, contenders: str, timeout: float) -> None:
    """The options of a session of interleaved runs: seed, rounds, contenders, concurrency, timeout, pause."""
    ap.add_argument("--seed", type=int, default=42, help="site seed (default 42)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    ap.add_argument("--contenders", default=contenders, help=f"comma-separated (default {contenders})")
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    ap.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds one run may take (default {timeout:g})"
    )
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between runs (default 1)")


def prepare_contenders(names: list[str]) -> list[str]:
    """The tools, the virtualenvs and compiled crawlkit sources the contenders ``names`` need; the
    names of those that can run (why the others cannot is logged)."""
    WORK.mkdir(exist_ok=True)
    ensure_tools()
    runnable = []
    for name in names:
        contender = CONTENDERS[name]
        why = contender.check()
        if why:
            log(f"skipping {name}: {why}")
            continue
        if contender.venv:
            ensure_venv(contender.venv)
        runnable.append(name)
    if any(name.startswith("crawlkit") for name in runnable):
        compile_crawlkit()
    return runnable


def save_results(out: Path, results: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The session's raw data, its summary ``rows`` with it, to ``out`` (also after an interruption)."""
    results["summary"] = rows
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False))


def publish(md: Path, title: str, command: str, table: str) -> None:
    """Print the session's table under its title and command, and keep the same text in ``md``."""
    text = f"{title}\n\nCommand: `{command}`\n\n{table}\n"
    print(f"\n{text}")
    md.write_text(text)


def main(argv: list[str] | None = None) -> int:
    return interruptible(_main, argv, "nginx")


def _main(argv: list[str] | None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=10_000, help="products in the site (default 10000)")
    add_session_options(ap, DEFAULT_CONTENDERS, timeout=600)
    ap.add_argument("--port", type=int, default=0, help="nginx port on 127.0.0.1 (default: a free one)")
    ap.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="serve the site with MS milliseconds of latency per answer (bench/delay_server.py, not nginx)",
    )
    ap.add_argument("--profile", metavar="NAME", help="run contender NAME once under py-spy instead")
    ap.add_argument("--top", type=int, default=15, help="functions listed per process by --profile")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second for --profile")
    ap.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="run each crawlkit contender also as NAME@LABEL, with the crawlkit of the checkout PATH "
        "(repeatable; e.g. a git worktree of an older commit)",
    )
    ap.add_argument("--list", action="store_true", help="list the contenders")
    args = ap.parse_args(argv)
    if args.list:
        for c in CONTENDERS.values():
            print(f"{c.name:16} {c.describe}")
        return 0
    names = [args.profile] if args.profile else [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONTENDERS]
    if unknown:
        ap.error(f"unknown contenders {unknown}; --list shows them")
    names = add_tree_contenders(names, args.tree)
    runnable = prepare_contenders(names)
    if not runnable:
        log("nothing to run")
        return 2
    site = ensure_site(args.n, args.seed)
    manifest, expected = load_expected(site)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logs = WORK / "logs" / stamp
    logs.mkdir(parents=True)
    port = args.port or free_port()
    command = "bench/run " + shlex.join(argv if argv is not None else sys.argv[1:])
    server = DelayServer(site, args.latency) if args.latency > 0 else Nginx(port, site)
    with sigterm_as_exit(), server as nginx:
        port = nginx.port
        base = f"http://127.0.0.1:{port}"
        check_serving(base, site)
        session = Session(
            stamp, logs, nginx, f"{base}/index.html", manifest, expected, args.concurrency, args.timeout
        )
        if args.profile:
            warm_page_cache(site)
            profile(session, CONTENDERS[args.profile], args.top, args.rate)
            return 0
        size, took = warm_page_cache(site)
        log(f"warm-up: read {size / 1e6:.0f} MB of the site in {took:.2f} s (not recorded)")
        results: dict[str, Any] = {
            "stamp": stamp,
            "command": command,
            "n": args.n,
            "seed": args.seed,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "latency_ms": args.latency,
            "site": {k: v for k, v in manifest.items() if k not in ("skus", "paths")},
            "contenders": {n: CONTENDERS[n].describe for n in runnable},
            "machine": machine(),
            "runs": [],
        }
        out = WORK / f"results-{stamp}.json"
        try:
            run_rounds(
                args.rounds,
                runnable,
                args.pause,
                lambda name, round_no: run_once(session, CONTENDERS[name], round_no),
                results["runs"],
                lambda r: (
                    f"(main {r['main_cpu_s_sampled']:.1f})  "
                    f"rss {r['main_peak_rss_mb']:5.0f}/{r['tree_peak_rss_mb']:5.0f} MB  "
                    f"cores {r['cores_given']:.2f}"
                ),
            )
        finally:
            rows = summarize(results["runs"], runnable, manifest["pages_total"])
            save_results(out, results, rows)
    title = (
        f"N = {args.n:,} products ({manifest['pages_total']:,} pages, "
        f"{manifest['bytes_gzip'] / 1e6:.0f} MB gzip / {manifest['bytes_html'] / 1e6:.0f} MB HTML), "
        f"{args.rounds} interleaved round(s), concurrency {args.concurrency}"
        + (f", {args.latency:g} ms latency per answer (bench/delay_server.py)" if args.latency > 0 else "")
        + "; "
        f"{machine_line(results['machine'])}"
    )
    publish(WORK / f"results-{stamp}.md", title, command, markdown(rows) + cores_line(results["runs"], rows))
    log(f"raw results: {out}\nlogs: {logs}")
    return 0 if all(r["valid"] for r in results["runs"]) else 1
