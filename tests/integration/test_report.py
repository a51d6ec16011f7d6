"""The crawl report: the time series a crawl records in its job, and the HTML made from it.

Real crawls against the local test site, in-process (``crawl()``) and with the ``crawlkit``
command; the report is read back as the HTML file it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from conftest import Site
from crawlkit import crawl
from crawlkit.cli import main
from crawlkit.core import load_series
from crawlspiders.cli_spiders import PathPages, SlowPages


def test_a_durable_crawl_records_its_series_and_writes_its_report(site: Site, tmp_path: Path) -> None:
    job = tmp_path / "job"
    settings = {"job_dir": str(job), "parse_workers": 1, "concurrency": 2, "series_interval": 0.1}
    crawl(
        SlowPages,
        tmp_path / "out.jsonl",
        settings=settings,
        handle_signals=False,
        base=site.base,
        count="12",
        delay="0.1",
    )
    lines = [orjson.loads(line) for line in (job / "series.jsonl").read_bytes().splitlines()]
    assert "run" in lines[0] and lines[0]["run"]["settings"]["series_interval"] == 0.1
    points = lines[1:]
    assert len(points) >= 3  # every 0.1 s over a crawl of about 0.6 s, and the last at the end
    assert [p["pages"] for p in points] == sorted(p["pages"] for p in points)
    assert points[-1]["pages"] == 12 and points[-1]["items"] == 12
    assert all(p["in_flight"] <= 2 for p in points)
    stats = orjson.loads((job / "stats.json").read_bytes())
    assert stats["running"] is False and stats["items"] == 12
    html = (job / "report.html").read_text()
    assert html.startswith("<!doctype html>")
    # Readable offline: nothing to load, nothing to run.
    assert not re.search(r"<script|<link|<img|src=|@import|url\(", html)
    for title in ("pages / s", "items / s", "queue", "in flight", "errors (total)"):
        assert f"{title} " in html
    assert html.count("<polyline") >= 5
    assert re.search(r"<th>200</th><td>12</td>", html)


def test_failures_are_reported_with_example_urls(site: Site, tmp_path: Path) -> None:
    job = tmp_path / "job"
    report = tmp_path / "elsewhere" / "report.html"
    settings = {"job_dir": str(job), "parse_workers": 1, "retry_times": 0, "report": str(report)}
    paths = "/ok,/status/404,/status/410"
    crawl(
        PathPages,
        tmp_path / "out.jsonl",
        settings=settings,
        handle_signals=False,
        base=site.base,
        paths=paths,
    )
    html = report.read_text()
    assert (job / "report.html").read_text() == html
    assert "http_404" in html and site.url("/status/404") in html
    assert "http_410" in html and site.url("/status/410") in html


def test_a_memory_crawl_writes_a_report_only_when_asked(site: Site, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    settings = {"frontier": "memory", "parse_workers": 1, "report": str(report)}
    crawl(
        PathPages,
        tmp_path / "out.jsonl",
        settings=settings,
        handle_signals=False,
        base=site.base,
        paths="/ok",
    )
    html = report.read_text()
    assert "<th>200</th><td>1</td>" in html
    assert not (tmp_path / ".crawlkit").exists()


def test_a_resumed_job_reports_every_run_and_crawlkit_report_remakes_it(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    job = tmp_path / ".crawlkit" / "jobs" / "slowpages"
    first = {"parse_workers": 1, "concurrency": 1, "close_after_items": 3}
    args = {"base": site.base, "count": "8", "delay": "0.01"}
    crawl(SlowPages, "a.jsonl", settings=first, handle_signals=False, **args)
    crawl(SlowPages, "a.jsonl", settings={"parse_workers": 1}, handle_signals=False, **args)
    data = load_series(job)
    assert [r["index"] for r in data.runs] == [0, 1]
    assert {p["run"] for p in data.points} == {0, 1}
    assert data.stats["job"]["items"] == 8  # the whole job's figures, both runs
    (job / "report.html").unlink()
    assert main(["report", "slowpages", "-o", "again.html"]) == 0
    html = (tmp_path / "again.html").read_text()
    assert "Crawl report: slowpages" in html
    assert "<div>items<b>8</b></div>" in html and "<div>runs<b>2</b></div>" in html
    assert main(["report", "nosuchjob"]) == 2
    assert "no job 'nosuchjob'" in capsys.readouterr().err
