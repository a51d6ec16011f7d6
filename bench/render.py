#!/usr/bin/env python3
"""What a rendered page costs: headless Chromium against a plain aiohttp fetch of the same page.

A local shop (aiohttp on 127.0.0.1, in this process) serves N product pages whose title and price
are put in by script from a JSON API; each page also asks for a stylesheet, a 512 KiB image and a
web font. Each contender runs in a child process of its own, so its CPU (with its children's:
Playwright's driver, Chromium) and its memory are its own:

- ``aiohttp``: the N pages fetched over one session, 8 at a time (the HTML only: no data);
- ``render-C``: the N pages rendered by ``BrowserFetcher`` at browser_concurrency C, each waiting
  for its data (``wait_for="h1.ready"``), images and fonts blocked (the default).

Peak memory is the process tree's: the child's RSS plus the browser's PSS (its processes share
most of their pages), sampled every 0.2 s. Needs Playwright and a Chromium (see README).

    .venv/bin/python bench/render.py --n 200 --concurrency 2,4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time

from aiohttp import web

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>p</title>
<link rel="stylesheet" href="/static/style.css">
<style>@font-face { font-family: S; src: url(/static/font.woff2); } body { font-family: S; }</style>
</head><body><img src="/static/big.jpg" width="800" height="600" alt=""><h1></h1><p class="price"></p>
<script>fetch("/api/%d").then((r) => r.json()).then((p) => {
  document.querySelector("h1").textContent = p.name; document.querySelector("h1").className = "ready";
  document.querySelector(".price").textContent = p.price; });</script></body></html>"""


def serve(ready: threading.Event, port: list[int], stop: threading.Event) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE % int(request.match_info["id"]), content_type="text/html")

    async def api(request: web.Request) -> web.Response:
        pid = int(request.match_info["id"])
        return web.json_response({"name": f"Product {pid}", "price": f"{pid}.99"})

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "style.css":
            return web.Response(text="h1 { color: #333 }", content_type="text/css")
        return web.Response(body=b"\0" * (512 * 1024), content_type="image/jpeg")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/p/{id}", page)
        app.router.add_get("/api/{id}", api)
        app.router.add_get("/static/{name}", static)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port.append(int(runner.addresses[0][1]))
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    asyncio.run(main())


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


async def child(mode: str, base: str, n: int) -> dict[str, float]:
    urls = [f"{base}/p/{i}" for i in range(n)]
    peak = 0
    memory = lambda: rss(os.getpid())  # noqa: E731 - replaced below when a browser runs

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, memory())
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    if mode == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession() as session:
            gate = asyncio.Semaphore(8)

            async def get(url: str) -> None:
                async with gate, session.get(url) as r:
                    await r.read()

            started = time.perf_counter()
            await asyncio.gather(*(get(u) for u in urls))
    else:
        from crawlkit.fetch import BrowserConfig, BrowserFetcher, RenderPlan

        fetcher = BrowserFetcher(BrowserConfig(concurrency=int(mode.split("-")[1]), max_memory_mb=0))
        memory = lambda: rss(os.getpid()) + fetcher.memory_bytes()  # noqa: E731
        await fetcher.start()
        plan = RenderPlan.parse(wait_for="h1.ready")
        await fetcher.render(urls[0], plan)  # warm: the browser and its first context
        started = time.perf_counter()
        pages = await asyncio.gather(*(fetcher.render(u, plan) for u in urls))
        assert all(b"Product" in p.body for p in pages)
    elapsed = time.perf_counter() - started
    sampler.cancel()
    if mode != "aiohttp":
        await fetcher.close()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    return {"pages_per_s": n / elapsed, "seconds": elapsed, "cpu_s": cpu, "peak_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--concurrency", default="2,4")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child[0], args.child[1], args.n))))
        return
    ready, stop, port = threading.Event(), threading.Event(), []  # type: ignore[var-annotated]
    server = threading.Thread(target=serve, args=(ready, port, stop), daemon=True)
    server.start()
    ready.wait(10)
    base = f"http://127.0.0.1:{port[0]}"
    modes = ["aiohttp", *(f"render-{c}" for c in args.concurrency.split(","))]
    print(f"{args.n} product pages; cpu is the contender's process tree (client side only)")
    print("| contender | pages/s | cpu ms/page | peak memory (MiB) |")
    print("|---|---:|---:|---:|")
    try:
        for mode in modes:
            out = subprocess.run(
                [sys.executable, __file__, "--n", str(args.n), "--child", mode, base],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            cpu_ms = 1000 * r["cpu_s"] / args.n
            print(f"| {mode} | {r['pages_per_s']:.1f} | {cpu_ms:.1f} | {r['peak_mib']:.0f} |", flush=True)
    finally:
        stop.set()
        server.join(10)


if __name__ == "__main__":
    main()
