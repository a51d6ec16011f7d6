"""The JSON API of the spiders and jobs, the live event stream, and the job's charts and report.

::

    GET  /api/spiders                  the project's spiders
    GET  /api/jobs                     every job, running or not
    POST /api/jobs                     {"spider": NAME, "job": NAME?, "args": {...}, "settings": {...}}
    GET  /api/jobs/NAME                status, figures, output path
    POST /api/jobs/NAME/stop           a graceful stop (SIGTERM)
    POST /api/jobs/NAME/resume         start it again with the command it was started with
    GET  /api/jobs/NAME/events         Server-Sent Events: an "update" whenever its figures change
    GET  /api/jobs/NAME/items          ?offset=BYTES&limit=N a page of the output; ?tail=N the last N
    GET  /api/jobs/NAME/log            ?tail=N the log's last lines, and its warnings and errors
    GET  /api/jobs/NAME/charts         the report's charts, as a fragment of HTML
    GET  /jobs/NAME/report             the report, as a page
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from ..core import charts_html, load_series, render_report
from ..settings import Settings
from ..spider import discover_spiders
from ._jobs import JobBook, JobError, LaunchSpec

__all__ = ["BOOK", "SETTINGS", "SPIDERS_DIR", "add_api_routes", "json_response"]

BOOK = web.AppKey("book", JobBook)
SETTINGS = web.AppKey("settings", Settings)
SPIDERS_DIR = web.AppKey("spiders_dir", Path)

_EVENT_INTERVAL = 1.0
_HEARTBEAT = 15.0
_MAX_PAGE = 1000
_MAX_BYTES = 4 * 1024 * 1024


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers=headers
    )


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise JobError(f"{name} must be an integer") from None
    return min(max(value, lo), hi)


def _spiders(request: web.Request) -> dict[str, Any]:
    found = discover_spiders(request.app[SPIDERS_DIR])
    spiders = [
        {
            "name": name,
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "doc": ((cls.__doc__ or "").strip().splitlines() or [""])[0],
        }
        for name, cls in sorted(found.spiders.items())
    ]
    return {"spiders": spiders, "broken": sorted(str(path) for path in found.broken)}


async def spiders(request: web.Request) -> web.Response:
    return json_response(await asyncio.to_thread(_spiders, request))


async def jobs(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    listed = []
    for name in book.names():
        with contextlib.suppress(JobError):
            described = book.describe(name)
            described.pop("stats")
            listed.append(described)
    return json_response({"jobs": listed})


async def start_job(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise JobError(f"not valid JSON: {exc}") from None
    names = {s["name"] for s in (await asyncio.to_thread(_spiders, request))["spiders"]}
    book = request.app[BOOK]
    spec = LaunchSpec.parse(body, names, book.project)
    return json_response(book.start(spec, request.app[SETTINGS]), status=201)


async def job(request: web.Request) -> web.Response:
    return json_response(request.app[BOOK].describe(request.match_info["name"]))


async def stop_job(request: web.Request) -> web.Response:
    return json_response(request.app[BOOK].stop(request.match_info["name"]))


async def resume_job(request: web.Request) -> web.Response:
    return json_response(request.app[BOOK].resume(request.match_info["name"]), status=201)


def _read_items(path: Path, offset: int, limit: int) -> tuple[list[Any], int]:
    """Up to ``limit`` whole lines from byte ``offset``; a line still being written is left."""
    with open(path, "rb") as out:
        out.seek(offset)
        data = out.read(_MAX_BYTES)
    items: list[Any] = []
    pos = 0
    while len(items) < limit:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        with contextlib.suppress(orjson.JSONDecodeError):
            items.append(orjson.loads(data[pos:end]))
        pos = end + 1
    return items, offset + pos


def _tail_items(path: Path, count: int) -> tuple[list[Any], int]:
    size = path.stat().st_size
    start = max(0, size - _MAX_BYTES)
    with open(path, "rb") as out:
        out.seek(start)
        data = out.read()
    lines = data.split(b"\n")
    complete = lines[:-1] if start == 0 else lines[1:-1]  # a partial first and last line are left
    items = []
    for line in complete[-count:]:
        with contextlib.suppress(orjson.JSONDecodeError):
            items.append(orjson.loads(line))
    return items, start + len(data) - len(lines[-1])


async def items(request: web.Request) -> web.Response:
    path = request.app[BOOK].output_path(request.match_info["name"])
    if not path.exists():
        return json_response({"items": [], "offset": 0, "next_offset": 0})
    if "tail" in request.query:
        found, end = await asyncio.to_thread(_tail_items, path, _int(request, "tail", 20, 1, _MAX_PAGE))
        return json_response({"items": found, "next_offset": end})
    offset = _int(request, "offset", 0, 0, 1 << 62)
    limit = _int(request, "limit", 100, 1, _MAX_PAGE)
    found, end = await asyncio.to_thread(_read_items, path, offset, limit)
    return json_response({"items": found, "offset": offset, "next_offset": end})


async def output(request: web.Request) -> web.StreamResponse:
    """The job's output file, to download: what is on disk now, the last line perhaps partial
    while the crawl runs (the items API reads whole lines only)."""
    path = request.app[BOOK].output_path(request.match_info["name"])
    if not path.is_file():
        raise JobError(f"job {request.match_info['name']!r} has written no output yet", 404)
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "application/x-ndjson",
            "Content-Disposition": f'attachment; filename="{path.name}"',
        },
    )


async def log(request: web.Request) -> web.Response:
    lines = request.app[BOOK].log_tail(request.match_info["name"], _int(request, "tail", 50, 1, 1000))
    errors = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
    return json_response({"lines": lines, "errors": errors})


async def charts(request: web.Request) -> web.Response:
    folder = request.app[BOOK].folder(request.match_info["name"])
    data = await asyncio.to_thread(load_series, folder)
    return web.Response(text=charts_html(data), content_type="text/html")


async def report(request: web.Request) -> web.Response:
    folder = request.app[BOOK].folder(request.match_info["name"])
    data = await asyncio.to_thread(load_series, folder)
    if not data.runs and not data.stats:
        raise JobError(f"job {folder.name!r} has recorded nothing yet", 404)
    return web.Response(text=render_report(data), content_type="text/html")


async def events(request: web.Request) -> web.StreamResponse:
    """The job's state as Server-Sent Events: one ``update`` per change, a comment as heartbeat."""
    book = request.app[BOOK]
    name = request.match_info["name"]
    book.describe(name)  # a 404 before the stream starts
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    last: bytes = b""
    quiet = 0.0
    while True:
        described = book.describe(name)
        described.pop("stats")
        payload = orjson.dumps(described)
        if payload != last:
            await response.write(b"event: update\ndata: " + payload + b"\n\n")
            last, quiet = payload, 0.0
        elif quiet >= _HEARTBEAT:
            await response.write(b": still here\n\n")  # keeps proxies from closing an idle stream
            quiet = 0.0
        await asyncio.sleep(_EVENT_INTERVAL)
        quiet += _EVENT_INTERVAL


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/api/spiders", spiders)
    app.router.add_get("/api/jobs", jobs)
    app.router.add_post("/api/jobs", start_job)
    app.router.add_get("/api/jobs/{name}", job)
    app.router.add_post("/api/jobs/{name}/stop", stop_job)
    app.router.add_post("/api/jobs/{name}/resume", resume_job)
    app.router.add_get("/api/jobs/{name}/events", events)
    app.router.add_get("/api/jobs/{name}/items", items)
    app.router.add_get("/api/jobs/{name}/output", output)
    app.router.add_get("/api/jobs/{name}/log", log)
    app.router.add_get("/api/jobs/{name}/charts", charts)
    app.router.add_get("/jobs/{name}/report", report)
