#!/usr/bin/env python3
"""What the address guard costs a rendered page of the fetch API (``crawlkit serve``).

A local shop (aiohttp on 127.0.0.2, in this process) serves N product pages whose title and price
are put in by script from a JSON API; each also asks for a stylesheet, an image and a web font
(the last two blocked by default). Two contenders, interleaved round by round, each in a child
process of its own that runs the serve application and asks it for the N pages
(``/api/fetch?render=1&wait_for=h1.ready``, 2 at a time, over HTTP):

- ``open``: ``--allow-private``: no check, the browser connects directly;
- ``guarded``: every request of the page checked (request routing) and every connection made by
  the vetted forwarder; the guard takes 127.0.0.2 as public (``NetGuard(public=...)``).

CPU is the child's whole process tree (the server, Playwright's driver, Chromium), start-up
included; the same start-up for both.

    .venv/bin/python bench/fetch_guard.py --n 100 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from aiohttp import web

HOST = "127.0.0.2"
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
        if request.match_info["name"] == "style.css":
            return web.Response(text="h1 { color: #333 }", content_type="text/css")
        return web.Response(body=b"\0" * (64 * 1024), content_type="image/jpeg")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/p/{id}", page)
        app.router.add_get("/api/{id}", api)
        app.router.add_get("/static/{name}", static)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, HOST, 0).start()
        port.append(int(runner.addresses[0][1]))
        ready.set()
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()

    asyncio.run(main())


async def child(mode: str, base: str, n: int) -> dict[str, float]:
    import aiohttp

    from crawlkit.serve import NetGuard, ServeConfig, make_app

    guarded = mode == "guarded"
    guard = NetGuard(allow_private=not guarded, public=[ipaddress.ip_network(f"{HOST}/32")])
    project = Path(tempfile.mkdtemp(prefix="fetch-guard-"))
    app = make_app(ServeConfig(project=project, allow_private=not guarded), net_guard=guard)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    api = f"http://127.0.0.1:{runner.addresses[0][1]}/api/fetch"
    gate = asyncio.Semaphore(2)
    async with aiohttp.ClientSession() as session:

        async def get(i: int) -> None:
            params = {"url": f"{base}/p/{i}", "render": "1", "wait_for": "h1.ready", "timeout": "60"}
            async with gate, session.get(api, params=params) as answer:
                data = await answer.json()
                assert answer.status == 200 and f"Product {i}" in data["body"], data

        await get(0)  # warm: the browser starts
        started = time.perf_counter()
        await asyncio.gather(*(get(i) for i in range(1, n + 1)))
        elapsed = time.perf_counter() - started
    await runner.cleanup()  # the browser closes: its CPU is counted below
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return {"seconds": elapsed, "cpu_s": sum(u.ru_utime + u.ru_stime for u in usage)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "BASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child[0], args.child[1], args.n))))
        return
    ready, stop, port = threading.Event(), threading.Event(), []  # type: ignore[var-annotated]
    server = threading.Thread(target=serve, args=(ready, port, stop), daemon=True)
    server.start()
    ready.wait(10)
    base = f"http://{HOST}:{port[0]}"
    print(f"{args.n} rendered pages per run, 2 at a time; cpu: the child's process tree, start-up included")
    print("| round | contender | pages/s | cpu ms/page |")
    print("|---:|---|---:|---:|")
    try:
        for round_ in range(1, args.rounds + 1):
            for mode in ("open", "guarded"):
                done = subprocess.run(
                    [sys.executable, __file__, "--n", str(args.n), "--child", mode, base],
                    capture_output=True,
                    text=True,
                )
                if done.returncode != 0:
                    sys.exit(f"{mode} failed:\n{done.stderr[-3000:]}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                rate, cpu_ms = args.n / r["seconds"], 1000 * r["cpu_s"] / (args.n + 1)
                print(f"| {round_} | {mode} | {rate:.1f} | {cpu_ms:.0f} |", flush=True)
    finally:
        stop.set()
        server.join(10)


if __name__ == "__main__":
    main()
