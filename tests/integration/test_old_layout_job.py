"""A job directory made before the regrouping into one package per stage resumes with today's code.

``tests/fixtures/old_layout_job`` was made by crawlkit at commit 1986927 (see its README): a durable
crawl stopped after 8 pages, whose pending requests are pickled naming
``crawlkit.http._rebuild_request``. Resumed now, every remaining page is fetched once and each item
is written exactly once.
"""

from __future__ import annotations

import gzip
import shutil
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from crawlkit import crawl
from support.old_layout_job import HOST, PAGES, PORT, OldLayoutSpider, make_app
from support.serverthread import ServerThread

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "old_layout_job"


class _OldJobSite(ServerThread):
    """The fixture's site on its fixed address; ``paths`` is every path requested, in order."""

    def __init__(self) -> None:
        super().__init__(HOST, what="the old-layout job's site", thread_name="old-layout-site", port=PORT)
        self.paths: list[str] = []

    def make_app(self) -> web.Application:
        app = make_app()

        @web.middleware
        async def record(request: web.Request, handler: web.RequestHandler) -> web.StreamResponse:
            self.paths.append(request.path)
            return await handler(request)

        app.middlewares.append(record)
        return app


@pytest.fixture
def old_job_site() -> Iterator[_OldJobSite]:
    # The fixture's pending requests name this address, so no other port will do.
    with socket.socket() as probe:
        try:
            probe.bind((HOST, PORT))
        except OSError as exc:
            pytest.skip(f"the old job's site needs {HOST}:{PORT}, which cannot be bound here: {exc}")
    site = _OldJobSite()
    site.start()
    try:
        yield site
    finally:
        site.stop()


def _copy_job(tmp_path: Path) -> tuple[Path, Path]:
    """The fixture in ``tmp_path``: its job directory and its output, the job pointing at it."""
    job = tmp_path / "job"
    job.mkdir(mode=0o700)
    output = tmp_path / "items.jsonl"
    shutil.copyfile(FIXTURE / "items.jsonl", output)
    (job / "frontier.sqlite").write_bytes(
        gzip.decompress((FIXTURE / "job" / "frontier.sqlite.gz").read_bytes())
    )
    info = orjson.loads((FIXTURE / "job" / "job.json").read_bytes())
    info["output"] = str(output.resolve())  # the job records where it writes: now here
    (job / "job.json").write_bytes(orjson.dumps(info))
    return job, output


def _numbers(output: Path) -> list[int]:
    return [orjson.loads(line)["n"] for line in output.read_bytes().splitlines()]


def test_a_job_made_before_the_regrouping_resumes(old_job_site: _OldJobSite, tmp_path: Path) -> None:
    job, output = _copy_job(tmp_path)
    before = _numbers(output)
    assert 0 < len(before) < PAGES  # the fixture stopped part way

    settings = {"job_dir": str(job), "parse_workers": 1, "obey_robots": False, "progress": "off"}
    stats = crawl(OldLayoutSpider, output, settings=settings, handle_signals=False)

    assert stats.ok and stats.stop_reason == "finished"
    remaining = {f"/p/{n}" for n in range(PAGES)} - {f"/p/{n}" for n in before}
    assert Counter(old_job_site.paths) == Counter(remaining)  # each pending page once, "/" not again
    assert sorted(_numbers(output)) == list(range(PAGES))  # every item, each exactly once
    assert _numbers(output)[: len(before)] == before  # what the old crawl wrote is kept as it was
