"""The benchmark site served with a fixed latency, for ``bench/run --latency MS``.

On loopback nginx answers in a fraction of a millisecond, so the crawl is bound by CPU and the
order in which requests are made hardly matters. A real site takes tens of milliseconds to
answer: then a crawl is bound by how well it keeps its slots busy, and a pagination chain that
waits behind the items it found sets the pace. This server answers every request after
``--latency`` milliseconds (an ``asyncio.sleep``, so any number of requests wait at once), with
the site's files as nginx serves them: ``text/html``, the ``.gz`` file when the client accepts
gzip.

    python bench/delay_server.py SITE_DIR --latency 50      # prints "PORT <n>"; stops when stdin closes

It runs under crawlkit's Python (aiohttp) and listens on 127.0.0.1 only. ``DelayServer`` is the
context manager ``bench/run`` uses; it gives the same figures as its nginx (the server's CPU, its
errors).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"


def serve(site: Path, latency: float) -> int:
    import asyncio

    from aiohttp import web

    root = site.resolve()
    plain_headers = {"Content-Type": "text/html", "Vary": "Accept-Encoding"}
    gzip_headers = {**plain_headers, "Content-Encoding": "gzip"}

    async def handle(request: web.Request) -> web.Response:
        await asyncio.sleep(latency)
        path = (root / request.path.lstrip("/")).resolve()
        if root not in path.parents or path.suffix != ".html" or not path.is_file():
            return web.Response(status=404, text="not found\n")
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            packed = path.with_name(path.name + ".gz")
            if packed.is_file():
                return web.Response(body=packed.read_bytes(), headers=gzip_headers)
        return web.Response(body=path.read_bytes(), headers=plain_headers)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        app_runner = web.AppRunner(app, access_log=None)
        await app_runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(app_runner, sock, backlog=1024).start()
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)  # till closed
        await app_runner.cleanup()

    asyncio.run(main())
    return 0


class DelayServer:
    """The server subprocess; a context manager that always stops it. Quacks like runner.Nginx."""

    def __init__(self, python: str, site: Path, latency_ms: float) -> None:
        self.python = python
        self.site = site
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.error_log = WORK / "delay-server.log"

    def __enter__(self) -> DelayServer:
        WORK.mkdir(exist_ok=True)
        argv = [self.python, str(Path(__file__).resolve()), str(self.site), "--latency", str(self.latency_ms)]
        with open(self.error_log, "wb") as stderr:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # Ctrl-C reaches bench/run only, which then stops this
            )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "PORT":
            self.__exit__()
            raise SystemExit(f"the delay server did not start; see {self.error_log}")
        self.port = int(line[1])
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None:
            return
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
        self.proc = None

    @property
    def worker(self) -> int | None:
        """The process whose CPU is the server's (as nginx's worker is)."""
        return self.proc.pid if self.proc is not None else None

    def error_log_size(self) -> int:
        return self.error_log.stat().st_size if self.error_log.exists() else 0

    def errors_since(self, offset: int) -> list[str]:
        if not self.error_log.exists():
            return []
        with open(self.error_log, errors="replace") as f:
            f.seek(offset)
            return [line.strip() for line in f if line.strip()]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site", type=Path, help="a site generated by bench/site.py")
    ap.add_argument("--latency", type=float, required=True, help="milliseconds before each answer")
    args = ap.parse_args()
    sys.exit(serve(args.site, args.latency / 1000))
