"""How a shared (Redis) crawl scales: one worker process against two, on one Redis, same site.

Standalone: it starts its own redis-server (a free port of 127.0.0.1, no persistence) and its own
site (a generated link graph served by aiohttp on 127.0.0.1, with an optional per-page latency),
then crawls the site with ``crawlkit runspider ... --frontier redis://... --workers N`` for N = 1
and N = 2, checks the merged export (every page exactly once), and prints pages/s and the ratio.
It also measures what Redis spends: CPU and script time per page, and memory per URL (the seen
set as the frontier stores it, a plain SET of 16-byte fingerprints for comparison, and a pending
request).

    python bench/redis_scale.py [--pages 4000] [--latency 0.05] [--concurrency 16] [--memory-urls 1000000]
    python bench/redis_scale.py --redis-rtt 1 --latency 0.02 --concurrency 64 --memory-urls 0

``--sessions`` turns sessions on (``-s sessions=on``: no proxy, each session a cookie jar and a
header profile), so that the workers share one pool of sessions in Redis and sync it; the figures
then include what that costs. CPU per page is the crawl's process tree's (every worker and its
parser processes: user + system, from ``wait4``).

``--redis-rtt MS`` puts Redis MS milliseconds of round trip away from the workers, as on another
machine: they reach it through a local TCP proxy (this script, 127.0.0.1) that holds every chunk
half that long in each direction.

Needs redis-server on PATH (Debian: apt-get install redis-server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
FANOUT = 8

SPIDER = """
from crawlkit import Request, Spider


class Graph(Spider):
    name = "graph"
    base = ""

    def start_requests(self):
        yield Request(f"{self.base}/p/0")

    def parse(self, response):
        yield {"n": int(response.css_first("h1").text()), "url": response.url}
        yield from response.follow_all(css="a")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the site -----------------------------------------------------------------------------------------


def page(n: int, pages: int) -> bytes:
    """Page n links to its children in a FANOUT-ary tree (every page reachable) and 4 random pages."""
    rng = random.Random(n)
    links = [m for m in range(n * FANOUT + 1, n * FANOUT + FANOUT + 1) if m < pages]
    links += [rng.randrange(pages) for _ in range(4)]
    anchors = "".join(f'<li><a href="/p/{m}">page {m}</a></li>' for m in links)
    filler = "<p>" + "lorem ipsum dolor sit amet " * 40 + "</p>"
    body = f"<h1>{n}</h1><ul>{anchors}</ul>{filler}"
    return f"<html><head><title>{n}</title></head><body>{body}</body></html>".encode()


def serve(port: int, pages: int, latency: float) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if latency:
            await asyncio.sleep(latency)
        return web.Response(body=page(n, pages), content_type="text/html")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n")

    app = web.Application()
    app.router.add_get("/p/{n}", handle)
    app.router.add_get("/robots.txt", robots)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# -- a round trip to Redis ------------------------------------------------------------------------------


async def _delayed_copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer, each chunk ``delay`` seconds after it came, in order."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await chunks.get()
            if not data:
                writer.close()
                return
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(1 << 16):
            chunks.put_nowait((loop.time() + delay, data))
    finally:
        chunks.put_nowait((0.0, b""))
        await sender


def proxy(port: int, target: int, rtt_ms: float) -> None:
    """Serve 127.0.0.1:port as 127.0.0.1:target, half of ``rtt_ms`` added each way."""
    delay = rtt_ms / 2000

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(
            _delayed_copy(client_reader, server_writer, delay),
            _delayed_copy(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- Redis ----------------------------------------------------------------------------------------------


class RedisProcess:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.crawl_url = self.url  # what the workers use: through the proxy with --redis-rtt
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server is not on PATH (Debian: apt-get install redis-server)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)

    def info(self, section: str) -> dict[str, Any]:
        return dict(self.client.info(section))

    def cpu(self) -> float:
        info = self.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def used_memory(self) -> int:
        return int(self.info("memory")["used_memory"])

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


# -- the crawls -------------------------------------------------------------------------------------------


def crawl(r: RedisProcess, workers: int, args: argparse.Namespace, base: str, work: Path) -> dict[str, float]:
    job = f"bench-{workers}"
    spider = work / "spider.py"
    spider.write_text(SPIDER)
    parts = work / f"parts-{workers}"
    r.client.config_resetstat()
    cpu0 = r.cpu()
    cmd = [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", str(parts), "-a", f"base={base}",
        "--frontier", r.crawl_url, "-s", f"job_name={job}", "--workers", str(workers), "--fresh",
        "--concurrency", str(args.concurrency), "-s", "concurrency_per_host=1000",
        "-s", f"parse_workers={args.parse_workers}", "-s", "progress=off", "--log-level", "WARNING",
        *(["-s", "sessions=on"] if args.sessions else []),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    crawl_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"the crawl with {workers} workers failed:\n{done.stderr}")
    redis_cpu = r.cpu() - cpu0
    stats = r.info("commandstats").get("cmdstat_evalsha", {})
    merged = work / f"all-{workers}.jsonl"
    subprocess.run(
        [sys.executable, "-m", "crawlkit", "export", job, "-o", str(merged), "--frontier", r.url],
        check=True,
        capture_output=True,
    )
    lines = merged.read_bytes().splitlines()
    if len(lines) != args.pages or len(set(lines)) != args.pages:
        sys.exit(f"{workers} workers: {len(lines)} items, {len(set(lines))} distinct; expected {args.pages}")
    calls = int(stats.get("calls", 0))
    return {
        "wall": wall,
        "pages_per_s": args.pages / wall,
        "crawl_cpu_ms_per_page": 1000 * crawl_cpu / args.pages,
        "redis_cpu_ms_per_page": 1000 * redis_cpu / args.pages,
        "scripts_per_page": calls / args.pages,
        "script_us": float(stats.get("usec_per_call", 0.0)),
    }


# -- memory per URL -----------------------------------------------------------------------------------------


def fingerprints(n: int) -> list[bytes]:
    rng = random.Random(1)
    return [rng.randbytes(16) for _ in range(n)]


def memory_per_url(r: RedisProcess, n: int) -> dict[str, float]:
    """Bytes per URL: the seen set by entries per shard, a plain SET, and a pending request.

    A shard of the frontier's seen set is a hash; Redis keeps it as a compact listpack up to
    ``hash-max-listpack-entries`` fields (512 unless the config says otherwise) and as a hash
    table beyond. Bytes per URL depend only on the fill of the shards: URLs / shards.
    """
    out: dict[str, float] = {}
    limit = int(r.client.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"])
    out["listpack_limit"] = limit
    rng = random.Random(2)
    shards = 1024
    for fill in (8, 30, 60, 120, 250, limit, limit + 1):
        r.client.flushall()
        before = r.used_memory()
        pipe = r.client.pipeline(transaction=False)
        for shard in range(shards):
            for _ in range(fill):
                pipe.hsetnx(f"crawlkit:{{m}}:seen:{shard:x}", rng.randbytes(14), "")
            if shard % 64 == 63:
                pipe.execute()
        pipe.execute()
        out[f"fill_{fill}"] = (r.used_memory() - before) / (shards * fill)
    r.client.flushall()
    before = r.used_memory()
    pipe = r.client.pipeline(transaction=False)
    for i, fp in enumerate(fingerprints(n)):
        pipe.sadd("crawlkit:{m}:seenset", fp)
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    out["seen_plain_set"] = (r.used_memory() - before) / n
    sample = r.client.memory_usage("crawlkit:{m}:seenset") or 0
    out["seen_plain_set_memory_usage"] = sample / n
    r.client.flushall()
    out.update(asyncio.run(_pending_memory(r, min(n, 200_000))))
    r.client.flushall()
    return out


async def _pending_memory(r: RedisProcess, n: int) -> dict[str, float]:
    from crawlkit.frontier import HostLimits
    from crawlkit.frontier.redis import RedisFrontier
    from crawlkit.http import Request

    frontier = RedisFrontier(
        r.url, "mem", "w1", lambda host: HostLimits(4), spider_name="m", seen_shards=1 << 16
    )
    await frontier.open()
    requests = [
        Request(f"https://www.host{i % 1000}.example/section/{i // 1000}/item?id={i}&ref=listing")
        for i in range(n)
    ]
    before = r.used_memory()
    for i in range(0, n, 1000):
        await frontier.push(requests[i : i + 1000])
    pending = (r.used_memory() - before) / n
    await frontier.close()
    return {"pending_request": pending, "pending_hosts": 1000}


def this_script(*args: object) -> subprocess.Popen[bytes]:
    """This script in a process of its own (the site, the proxy), with ``args``."""
    return subprocess.Popen([sys.executable, __file__, *map(str, args)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the site takes per page")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight per worker process")
    parser.add_argument("--parse-workers", type=int, default=1, help="parser processes per worker")
    parser.add_argument("--memory-urls", type=int, default=1_000_000, help="0: skip the memory figures")
    parser.add_argument("--no-crawl", action="store_true", help="the memory figures only")
    parser.add_argument("--sessions", action="store_true", help="sessions on: one shared pool")
    parser.add_argument(
        "--redis-rtt", type=float, default=0.0, metavar="MS", help="milliseconds of round trip to Redis"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--proxy", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.pages, args.latency)
        return 0
    if args.proxy:
        proxy(args.proxy[0], args.proxy[1], args.redis_rtt)
        return 0
    version = subprocess.getoutput("redis-server --version").split()[2]
    print(f"machine: {os.cpu_count()} CPUs; redis-server {version}")
    with tempfile.TemporaryDirectory(prefix="crawlkit-redis-bench-") as tmp:
        work = Path(tmp)
        r = RedisProcess(work)
        port = free_port()
        site = this_script("--serve", port, "--pages", args.pages, "--latency", args.latency)
        base = f"http://127.0.0.1:{port}"
        relay = None
        if args.redis_rtt > 0:
            relay_port = free_port()
            relay = this_script("--proxy", relay_port, r.port, "--redis-rtt", args.redis_rtt)
            r.crawl_url = f"redis://127.0.0.1:{relay_port}/0"
        try:
            time.sleep(1.0)
            if not args.no_crawl:
                print(
                    f"site: {args.pages} pages, {args.latency * 1000:.0f} ms per page; "
                    f"each worker: concurrency {args.concurrency}, {args.parse_workers} parser process(es)"
                    + (f"; Redis {args.redis_rtt:g} ms of round trip away" if relay else "")
                    + ("; sessions on" if args.sessions else "")
                )
            results = {} if args.no_crawl else {n: crawl(r, n, args, base, work) for n in (1, 2)}
            for n, res in results.items():
                print(
                    f"{n} worker(s): {res['wall']:.2f} s, {res['pages_per_s']:.0f} pages/s, "
                    f"crawl CPU {res['crawl_cpu_ms_per_page']:.3f} ms/page; Redis: "
                    f"{res['redis_cpu_ms_per_page']:.3f} ms CPU/page, "
                    f"{res['scripts_per_page']:.2f} scripts/page, {res['script_us']:.0f} us/script"
                )
            if results:
                ratio = results[2]["pages_per_s"] / results[1]["pages_per_s"]
                print(f"two workers / one worker: {ratio:.2f}x")
            if args.memory_urls:
                mem = memory_per_url(r, args.memory_urls)
                limit = int(mem["listpack_limit"])
                print(f"seen set, bytes per URL by URLs per shard (hash-max-listpack-entries {limit}):")
                fills = [k for k in mem if k.startswith("fill_")]
                print("  " + ", ".join(f"{k[5:]}: {mem[k]:.1f} B" for k in fills))
                plain, usage = mem["seen_plain_set"], mem["seen_plain_set_memory_usage"]
                print(
                    f"seen set as one plain SET of {args.memory_urls:,} 16-byte members: "
                    f"{plain:.1f} B (MEMORY USAGE: {usage:.1f} B)"
                )
                pending = mem["pending_request"]
                print(f"a pending request (queue entry, pickled request, seen entry): {pending:.0f} B")
        finally:
            for helper in (site, relay):
                if helper is not None:
                    helper.terminate()
                    helper.wait(10)
            r.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
