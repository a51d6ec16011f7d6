"""A durable job remembers every output option, and says what to do when a run asks for others.

Resuming cuts the output back to the committed byte offset, which describes one file or one series
of parts in one format: a run with other output options must be refused before any request, with
the two ways out (the original option, or ``--fresh``), not fail later as if the disk were full.
"""

from __future__ import annotations

import re

import orjson
import pytest
from test_cli import Project, paths_args, project

from conftest import Site

__all__ = ["project"]  # the fixture, shared with test_cli


@pytest.mark.parametrize(
    ("first", "second", "was", "now"),
    [
        (["--max-items-per-file", "1"], [], "--max-items-per-file 1", "no --max-items-per-file"),
        ([], ["--max-items-per-file", "1"], "no --max-items-per-file", "--max-items-per-file 1"),
        ([], ["--format", "csv"], "--format jsonl", "--format csv"),
        ([], ["--gzip"], "no --gzip", "--gzip"),
        (["-s", "csv_fields=url"], [], "-s csv_fields=url", "no csv_fields setting"),
    ],
    ids=["split-then-not", "not-then-split", "format", "gzip", "csv-fields"],
)
def test_other_output_options_are_refused_before_any_request(
    site: Site, project: Project, first: list[str], second: list[str], was: str, now: str
) -> None:
    argv = paths_args(site, "/ok,/status/200", "-o", "out.jsonl")
    assert project.run(*argv, *first).code == 0
    job = project.root / ".crawlkit" / "jobs" / "paths"
    info = (job / "job.json").read_bytes()
    fetched = len(site.log)

    refused = project.run(*argv, *second)
    assert refused.code == 2, refused.err
    assert f"was started with {was}, but this crawl has {now}" in refused.err
    assert f"resume it with {was}, or add --fresh to start over" in refused.err
    assert len(site.log) == fetched  # refused before the first request
    assert (job / "job.json").read_bytes() == info
    assert "crawl summary" not in refused.err

    # The original options resume the job (finished already: nothing to do).
    again = project.run(*argv, *first)
    assert again.code == 0, again.err
    assert re.search(r"^  stopped because +already finished$", again.err, re.M)

    # --fresh starts over with the new options, and records them.
    fresh = project.run(*argv, *second, "--fresh")
    assert fresh.code == 0, fresh.err
    assert len(site.log) > fetched
    options = orjson.loads((job / "job.json").read_bytes())["output_options"]
    assert options != orjson.loads(info)["output_options"]


def test_a_finished_job_says_how_to_start_over_whatever_the_log_level(site: Site, project: Project) -> None:
    argv = paths_args(site, "/ok", "--log-level", "WARNING")
    assert project.run(*argv).code == 0
    again = project.run(*argv)
    assert again.code == 0, again.err
    assert "already finished, so nothing was fetched; add --fresh to start it over" in again.err


def test_a_refused_fresh_crawl_keeps_the_saved_state(site: Site, project: Project) -> None:
    assert project.run(*paths_args(site, "/ok")).code == 0
    job = project.root / ".crawlkit" / "jobs" / "paths"
    before = {p.name: p.read_bytes() for p in job.iterdir() if p.name != "lock"}
    (project.root / "theirs.jsonl").write_bytes(b'{"not": "ours"}\n')

    # --fresh with an output this job never wrote: refused (exit 2) before anything is removed.
    refused = project.run(*paths_args(site, "/ok", "-o", "theirs.jsonl", "--fresh"))
    assert refused.code == 2, refused.err
    assert "already exists" in refused.err
    assert "--fresh: removed" not in refused.err
    assert {p.name: p.read_bytes() for p in job.iterdir() if p.name != "lock"} == before


def test_a_resumed_crawl_reports_and_exits_for_the_whole_job(site: Site, project: Project) -> None:
    # The first run meets the failure and stops after one page; the second run fetches the rest
    # without a failure, but the crawl as a whole had one: exit code 1, and the summary says so.
    argv = paths_args(site, "/status/404,/ok,/status/200", "--concurrency", "1")
    first = project.run(*argv, "-s", "close_after_pages=1")
    assert "http_404: 1" in first.err, first.err
    second = project.run(*argv)
    assert second.code == 1, second.err
    assert re.search(r"^  failures +0$", second.err, re.M)  # this run's row
    assert re.search(r"^  whole crawl +2 runs, ", second.err, re.M)
    assert re.search(r"^ +failures 1 \(http_404: 1\)$", second.err, re.M)
    assert re.search(r"^ +pages fetched 3, items written 2, requests queued 3$", second.err, re.M), second.err
