"""The ``crawlkit`` command end to end: ``crawlkit.cli.main()`` in-process, and the real executable.

Each test gets a clean project folder (``tmp_path``, made the working directory) with its own
``spiders/`` package, whose spiders subclass those of ``crawlspiders.cli_spiders``. Crawls run
against the real local test site, with real parser worker processes.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from crawlkit import __version__
from crawlkit.cli import main
from support.procs import CRAWLKIT_EXE, reap, subprocess_env, wait_for

SPIDERS = '''\
from crawlspiders.cli_spiders import PathPages, SlowPages


class Paths(PathPages):
    """Fetches the paths it is given."""

    name = "paths"


class Slow(SlowPages):
    name = "slow"
'''

OTHER_SPIDERS = """\
from crawlspiders.cli_spiders import PathPages


class Other(PathPages):
    name = "other"
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


class Project:
    """A temporary project folder, the working directory of the test, and a way to run the CLI."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self._capsys = capsys

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        importlib.invalidate_caches()
        return path

    def run(self, *argv: str) -> Result:
        self._capsys.readouterr()  # drop whatever came before
        code = main(list(argv))
        captured = self._capsys.readouterr()
        return Result(code, captured.out, captured.err)


def _forget_project_modules(root: Path) -> None:
    """Unload the ``spiders`` package and any module imported from the project folder."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if name == "spiders" or name.startswith("spiders.") or file.startswith(str(root)):
            del sys.modules[name]


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Project]:
    monkeypatch.chdir(tmp_path)
    # main() imports spider modules, sets logging up for the whole process and may install its own
    # sys.excepthook: undo all three.
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    _forget_project_modules(tmp_path)
    importlib.invalidate_caches()
    proj = Project(tmp_path, capsys)
    proj.write("spiders/__init__.py", "")
    proj.write("spiders/pages.py", SPIDERS)
    try:
        yield proj
    finally:
        _forget_project_modules(tmp_path)
        root_logger.handlers[:] = handlers
        root_logger.setLevel(level)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the output ends with a partial line"
    items = [orjson.loads(line) for line in data.splitlines()]
    assert all(isinstance(item, dict) for item in items)
    return items


def paths_args(site: Site, paths: str, *extra: str) -> list[str]:
    return ["crawl", "paths", "-a", f"base={site.base}", "-a", f"paths={paths}", *extra]


# -- list --------------------------------------------------------------------------------------


def test_list_shows_each_spider_with_its_module(project: Project) -> None:
    project.write("spiders/other.py", OTHER_SPIDERS)
    result = project.run("list")
    assert result.code == 0
    lines = result.out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["other", "spiders.other.Other"],
        ["paths", "spiders.pages.Paths"],
        ["slow", "spiders.pages.Slow"],
    ]
    assert lines[1].endswith("Fetches the paths it is given.")  # the first docstring line


def test_list_reports_a_broken_module_and_lists_the_others(project: Project) -> None:
    broken = project.write("spiders/broken.py", "import no_such_module_for_crawlkit_tests\n")
    result = project.run("list")
    assert result.code == 0
    assert [line.split()[0] for line in result.out.splitlines()] == ["paths", "slow"]
    assert f"cannot import {broken}" in result.err
    assert "No module named 'no_such_module_for_crawlkit_tests'" in result.err


def test_a_broken_module_does_not_stop_the_other_spiders(site: Site, project: Project) -> None:
    broken = project.write("spiders/broken.py", "raise RuntimeError('broken on purpose')\n")
    result = project.run(*paths_args(site, "/ok", "--frontier", "memory"))
    assert result.code == 0, result.err
    assert len(read_jsonl(project.root / "paths.jsonl")) == 1
    unknown = project.run("crawl", "nope")
    assert unknown.code == 2
    assert "spiders: paths, slow" in unknown.err
    assert f"could not import {broken}" in unknown.err and "broken on purpose" in unknown.err


def test_list_with_only_broken_modules_exits_2(project: Project) -> None:
    (project.root / "spiders" / "pages.py").unlink()
    project.write("spiders/broken.py", "raise RuntimeError('broken on purpose')\n")
    result = project.run("list")
    assert result.code == 2
    assert result.out == ""
    assert "broken on purpose" in result.err and "no spiders in" in result.err


def test_list_without_a_spiders_folder(project: Project) -> None:
    (project.root / "spiders" / "pages.py").unlink()
    (project.root / "spiders" / "__init__.py").unlink()
    (project.root / "spiders").rmdir()
    result = project.run("list")
    assert result.code == 0
    assert result.out == ""
    assert f"no spiders in {project.root / 'spiders'}" in result.err


def test_two_spiders_with_the_same_name_exit_2(project: Project) -> None:
    project.write("spiders/again.py", SPIDERS.replace("class Paths", "class PathsAgain"))
    result = project.run("list")
    assert result.code == 2
    assert "two spiders are named 'paths'" in result.err
    assert "spiders.again.PathsAgain" in result.err and "spiders.pages.Paths" in result.err


# -- crawl: success and failure ----------------------------------------------------------------


def test_crawl_writes_jsonl_and_a_summary(site: Site, project: Project) -> None:
    result = project.run(*paths_args(site, "/ok,/status/200,/ok"))
    assert result.code == 0, result.err
    items = read_jsonl(project.root / "paths.jsonl")  # NAME.jsonl by default
    assert sorted(item["url"] for item in items) == [site.url("/ok"), site.url("/status/200")]
    assert site.log.count("/ok") == 1  # the second /ok was a duplicate
    err = result.err
    assert "crawl summary" in err
    assert re.search(r"^  stopped because +finished$", err, re.M)
    assert re.search(r"^  elapsed +\d+\.\d\d s$", err, re.M)
    assert re.search(r"^  pages fetched +2 \(\d+\.\d pages/s, \d+\.\d MB\)$", err, re.M)
    assert re.search(r"^  items written +2$", err, re.M)
    assert re.search(r"^  duplicates skipped +1$", err, re.M)
    assert re.search(r"^  failures +0$", err, re.M)
    assert re.search(r"^  output +paths\.jsonl$", err, re.M)
    assert result.out == ""  # stdout stays clean


def test_a_failed_page_makes_exit_code_1(site: Site, project: Project) -> None:
    result = project.run(*paths_args(site, "/ok,/status/404", "-o", "out.jsonl"))
    assert result.code == 1, result.err
    assert [item["url"] for item in read_jsonl(project.root / "out.jsonl")] == [site.url("/ok")]
    assert re.search(r"^  failures +1 \(http_404: 1\)$", result.err, re.M)


def test_unknown_spider_exits_2_and_names_the_known_ones(site: Site, project: Project) -> None:
    result = project.run("crawl", "nope")
    assert result.code == 2
    assert "no spider named 'nope'" in result.err
    assert "paths, slow" in result.err
    assert len(site.log) == 0


# -- settings errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["-s", "concurency=4"], ["unknown setting 'concurency'", "did you mean 'concurrency'?"]),
        (["-s", "concurrency=abc"], ["setting 'concurrency'", "must be an integer", "'abc'"]),
        (["-s", "download_delay=soon"], ["setting 'download_delay'", "must be a number"]),
        (["--concurrency", "-1"], ["setting 'concurrency'", "at least 1", "-1"]),
        (["-s", "concurrency=0"], ["setting 'concurrency'", "at least 1"]),
        (["-s", "max_retries=-2"], ["setting 'max_retries'", "must not be negative"]),
        (["-s", "frontier=redis"], ["setting 'frontier'", "'redis'"]),
    ],
    ids=["unknown", "not-int", "not-float", "negative-option", "zero", "negative", "bad-choice"],
)
def test_a_bad_setting_exits_2_naming_it(
    site: Site, project: Project, options: list[str], expected: list[str]
) -> None:
    result = project.run(*paths_args(site, "/ok", *options))
    assert result.code == 2
    for text in expected:
        assert text in result.err
    assert "Traceback" not in result.err
    assert len(site.log) == 0 and not (project.root / "paths.jsonl").exists()


def test_a_bad_setting_from_the_environment_exits_2(
    site: Site, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRAWLKIT_CONCURRENCY", "abc")
    result = project.run(*paths_args(site, "/ok"))
    assert result.code == 2
    assert "setting 'concurrency' (from the environment) must be an integer, got 'abc'" in result.err
    assert len(site.log) == 0


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('concurrency = "many"', ["setting 'concurrency'", "pyproject.toml", "must be an integer"]),
        ("concurency = 4", ["unknown setting 'concurency'", "pyproject.toml", "did you mean 'concurrency'"]),
        ("shutdown_timeout = -1.0", ["setting 'shutdown_timeout'", "must not be negative"]),
        ("concurrency = ", ["pyproject.toml", "is not valid TOML"]),
    ],
    ids=["wrong-type", "unknown", "negative", "bad-toml"],
)
def test_a_bad_pyproject_value_exits_2(site: Site, project: Project, table: str, expected: list[str]) -> None:
    project.write("pyproject.toml", f'[project]\nname = "x"\n\n[tool.crawlkit]\n{table}\n')
    result = project.run(*paths_args(site, "/ok"))
    assert result.code == 2
    for text in expected:
        assert text in result.err
    assert "Traceback" not in result.err
    assert len(site.log) == 0


def test_pyproject_settings_apply(site: Site, project: Project) -> None:
    project.write("pyproject.toml", '[tool.crawlkit]\nfrontier = "memory"\nuser_agent = "from-pyproject"\n')
    result = project.run(*paths_args(site, "/ok"))
    assert result.code == 0, result.err
    assert [e.user_agent for e in site.log.entries("/ok")] == ["from-pyproject"]
    assert not (project.root / ".crawlkit").exists()  # frontier = "memory" came from pyproject


# -- the output file ---------------------------------------------------------------------------

OLD = b'{"old":true}\n'


@pytest.mark.parametrize("frontier", ["sqlite", "memory"])
def test_an_existing_output_is_refused(site: Site, project: Project, frontier: str) -> None:
    out = project.root / "out.jsonl"
    out.write_bytes(OLD)
    result = project.run(*paths_args(site, "/ok", "-o", "out.jsonl", "--frontier", frontier))
    assert result.code == 2
    assert "out.jsonl already exists" in result.err
    assert "--overwrite" in result.err and "--append" in result.err
    assert out.read_bytes() == OLD
    assert len(site.log) == 0


def test_an_empty_existing_output_is_fine(site: Site, project: Project) -> None:
    (project.root / "out.jsonl").touch()
    result = project.run(*paths_args(site, "/ok", "-o", "out.jsonl"))
    assert result.code == 0, result.err
    assert len(read_jsonl(project.root / "out.jsonl")) == 1


def test_overwrite_replaces_the_output(site: Site, project: Project) -> None:
    out = project.root / "out.jsonl"
    out.write_bytes(OLD * 3)
    result = project.run(*paths_args(site, "/ok", "-o", "out.jsonl", "--overwrite"))
    assert result.code == 0, result.err
    assert read_jsonl(out) == [{"url": site.url("/ok"), "status": 200, "tag": ""}]


def test_capital_o_replaces_the_output_as_scrapy_does(site: Site, project: Project) -> None:
    out = project.root / "out.jsonl"
    out.write_bytes(OLD * 3)
    result = project.run(*paths_args(site, "/ok", "-O", "out.jsonl"))
    assert result.code == 0, result.err
    assert read_jsonl(out) == [{"url": site.url("/ok"), "status": 200, "tag": ""}]
    # -o keeps refusing an existing non-empty output, and the refusal names -O.
    (project.root / "other.jsonl").write_bytes(OLD)
    result = project.run(*paths_args(site, "/ok", "-o", "other.jsonl", "--fresh"))
    assert result.code == 2 and "-O OUTPUT" in result.err


def test_capital_o_takes_no_second_output_or_append(project: Project) -> None:
    result = project.run("crawl", "paths", "-o", "a.jsonl", "-O", "b.jsonl")
    assert result.code == 2 and "give the output once" in result.err
    with pytest.raises(SystemExit) as exc:
        project.run("crawl", "paths", "-O", "a.jsonl", "--append")
    assert exc.value.code == 2


def test_append_adds_to_the_output(site: Site, project: Project) -> None:
    out = project.root / "out.jsonl"
    out.write_bytes(OLD)
    result = project.run(*paths_args(site, "/ok", "-o", "out.jsonl", "--append"))
    assert result.code == 0, result.err
    assert read_jsonl(out) == [{"old": True}, {"url": site.url("/ok"), "status": 200, "tag": ""}]


def test_fresh_does_not_overwrite_an_output_this_job_did_not_write(site: Site, project: Project) -> None:
    # No job directory exists yet, so --fresh discards nothing and this job never wrote
    # mine.jsonl: without --overwrite or --append, the file must be refused like any other.
    out = project.root / "mine.jsonl"
    out.write_bytes(OLD)
    result = project.run(*paths_args(site, "/ok", "-o", "mine.jsonl", "--fresh"))
    assert out.read_bytes() == OLD, "--fresh overwrote an output file that this job never wrote"
    assert result.code == 2
    assert "already exists" in result.err


def test_overwrite_and_append_are_exclusive(project: Project) -> None:
    with pytest.raises(SystemExit) as exc:
        project.run("crawl", "paths", "--overwrite", "--append")
    assert exc.value.code == 2


# -- runspider ---------------------------------------------------------------------------------


def test_runspider_runs_the_spider_of_a_file(site: Site, project: Project) -> None:
    path = project.write("elsewhere/my_file_spider.py", OTHER_SPIDERS)
    result = project.run(
        "runspider",
        str(path),
        "-a",
        f"base={site.base}",
        "-a",
        "paths=/ok",
        "-a",
        "tag=file",
        "-o",
        "items.jsonl",
    )
    assert result.code == 0, result.err
    assert read_jsonl(project.root / "items.jsonl") == [
        {"url": site.url("/ok"), "status": 200, "tag": "file"}
    ]
    assert (project.root / ".crawlkit" / "jobs" / "other" / "job.json").is_file()


def test_runspider_default_output_is_named_after_the_spider(site: Site, project: Project) -> None:
    project.write("one_spider.py", OTHER_SPIDERS)
    result = project.run("runspider", "one_spider.py", "-a", f"base={site.base}", "--frontier", "memory")
    assert result.code == 0, result.err
    assert len(read_jsonl(project.root / "other.jsonl")) == 1
    assert not (project.root / ".crawlkit").exists()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from crawlkit import Spider\n\nX = 1\n", "defines no Spider subclass"),
        (SPIDERS, "defines several spiders (Paths, Slow); keep one per file"),
        ("import no_such_module_for_crawlkit_tests\n", "cannot import"),
    ],
    ids=["none", "two", "broken"],
)
def test_runspider_of_a_bad_file_exits_2(site: Site, project: Project, source: str, expected: str) -> None:
    path = project.write("bad_spider_file.py", source)
    result = project.run("runspider", str(path), "-a", f"base={site.base}")
    assert result.code == 2
    assert str(path) in result.err and expected in result.err
    assert len(site.log) == 0


def test_runspider_of_a_missing_file_exits_2(project: Project) -> None:
    result = project.run("runspider", "no_such_file.py")
    assert result.code == 2
    assert "no such spider file" in result.err


# -- options -----------------------------------------------------------------------------------


def test_spider_arguments_become_attributes(site: Site, project: Project) -> None:
    result = project.run(
        *paths_args(site, "/ok,/status/201", "-a", "tag=hello world", "--frontier", "memory")
    )
    assert result.code == 0, result.err
    items = read_jsonl(project.root / "paths.jsonl")
    assert sorted((item["status"], item["tag"]) for item in items) == [
        (200, "hello world"),
        (201, "hello world"),
    ]


def test_concurrency_option_caps_requests_in_flight(site: Site, project: Project) -> None:
    argv = ["crawl", "slow", "-a", f"base={site.base}", "-a", "count=8", "-a", "delay=0.2"]
    result = project.run(*argv, "--concurrency", "2", "--frontier", "memory")
    assert result.code == 0, result.err
    assert site.log.count("/slow") == 8
    assert site.log.max_in_flight("/slow") == 2


@pytest.mark.parametrize(("level", "shown"), [(None, True), ("warning", False), ("INFO", True)])
def test_log_level_option(site: Site, project: Project, level: str | None, shown: bool) -> None:
    options = ["-s", "retry_backoff_base=0.05", "--frontier", "memory"]
    if level is not None:
        options += ["--log-level", level]
    result = project.run(*paths_args(site, "/flaky/log?fail=1", *options))
    assert result.code == 0, result.err
    assert site.log.count("/flaky/log") == 2  # one retry, logged at INFO
    assert ("INFO crawlkit.engine: retrying" in result.err) is shown
    assert "crawl summary" in result.err  # the summary is not a log line


def test_a_bad_log_level_is_a_usage_error(project: Project) -> None:
    with pytest.raises(SystemExit) as exc:
        project.run("crawl", "paths", "--log-level", "loud")
    assert exc.value.code == 2


# -- frontiers and job directories -------------------------------------------------------------


def test_memory_frontier_keeps_no_state(site: Site, project: Project) -> None:
    argv = paths_args(site, "/ok", "--frontier", "memory", "--overwrite")
    assert project.run(*argv).code == 0
    assert project.run(*argv).code == 0
    assert not (project.root / ".crawlkit").exists()
    assert site.log.count("/ok") == 2  # the second run crawled again


def test_durable_crawl_keeps_state_finishes_once_and_fresh_starts_over(site: Site, project: Project) -> None:
    argv = paths_args(site, "/ok,/status/200")
    first = project.run(*argv)
    assert first.code == 0, first.err
    job = project.root / ".crawlkit" / "jobs" / "paths"
    assert (job / "frontier.sqlite").is_file()
    info = orjson.loads((job / "job.json").read_bytes())
    assert info["spider"] == "paths" and info["output"] == str(project.root / "paths.jsonl")
    output = (project.root / "paths.jsonl").read_bytes()
    assert len(read_jsonl(project.root / "paths.jsonl")) == 2
    fetched = len(site.log)

    again = project.run(*argv)
    assert again.code == 0, again.err
    assert "already finished" in again.err
    assert re.search(r"^  stopped because +already finished$", again.err, re.M)
    assert len(site.log) == fetched  # nothing was fetched
    assert (project.root / "paths.jsonl").read_bytes() == output

    fresh = project.run(*argv, "--fresh")
    assert fresh.code == 0, fresh.err
    assert "--fresh: removed" in fresh.err
    assert str(Path(".crawlkit/jobs/paths/frontier.sqlite")) in fresh.err
    assert len(site.log) == 2 * fetched  # crawled again
    assert len(read_jsonl(project.root / "paths.jsonl")) == 2  # replaced, not appended


def test_a_second_crawl_on_a_busy_job_dir_is_refused(site: Site, project: Project) -> None:
    argv = ["crawl", "slow", "-a", f"base={site.base}", "-a", "count=20", "-a", "delay=0.5"]
    proc = subprocess.Popen(
        [str(CRAWLKIT_EXE), *argv, "--concurrency", "2"],
        cwd=project.root,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: site.log.in_flight("/slow") > 0 or proc.poll() is not None, 20, "the first crawl")
        assert proc.poll() is None, "the first crawl ended early"
        result = project.run(*argv)
        assert result.code == 2
        assert "another crawl" in result.err and f"pid {proc.pid}" in result.err
        assert "--job-dir" in result.err  # says what to do
        # --fresh must not discard the state of the crawl that holds the job directory.
        fresh = project.run(*argv, "--fresh")
        assert fresh.code == 2 and "another crawl" in fresh.err
        assert (project.root / ".crawlkit" / "jobs" / "slow" / "frontier.sqlite").is_file()
        assert (project.root / ".crawlkit" / "jobs" / "slow" / "job.json").is_file()
        assert site.log.max_in_flight("/slow") <= 2  # the refused crawls fetched nothing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 3, err
    finally:
        reap(proc)


def test_a_job_dir_of_another_spider_is_refused(site: Site, project: Project) -> None:
    assert project.run(*paths_args(site, "/ok", "--job-dir", "jobs/shared")).code == 0
    fetched = len(site.log)
    result = project.run(
        "crawl",
        "slow",
        "-a",
        f"base={site.base}",
        "-a",
        "count=2",
        "-a",
        "delay=0",
        "--job-dir",
        "jobs/shared",
    )
    assert result.code == 2
    assert "belongs to spider 'paths', not 'slow'" in result.err
    assert len(site.log) == fetched
    assert not (project.root / "slow.jsonl").exists()


def test_a_job_dir_of_another_output_is_refused(site: Site, project: Project) -> None:
    assert project.run(*paths_args(site, "/ok")).code == 0
    result = project.run(*paths_args(site, "/ok", "-o", "elsewhere.jsonl"))
    assert result.code == 2
    assert f"resume with -o {project.root / 'paths.jsonl'}" in result.err
    assert not (project.root / "elsewhere.jsonl").exists()


@pytest.mark.parametrize("with_info", [False, True], ids=["bare", "after-a-crawl"])
def test_a_corrupt_frontier_database_exits_2_and_says_what_to_do(
    site: Site, project: Project, with_info: bool
) -> None:
    job = project.root / "jobdir"
    if with_info:
        assert project.run(*paths_args(site, "/ok", "--job-dir", "jobdir")).code == 0
        for leftover in job.glob("frontier.sqlite-*"):
            leftover.unlink()
    job.mkdir(exist_ok=True)
    (job / "frontier.sqlite").write_bytes(b"this is not a database\x00\xff" * 200)
    fetched = len(site.log)
    result = project.run(*paths_args(site, "/ok", "--job-dir", "jobdir"))
    assert result.code == 2
    assert "frontier.sqlite" in result.err and "corrupt" in result.err
    assert "--fresh" in result.err  # what to do
    assert "Traceback" not in result.err
    assert len(site.log) == fetched


@pytest.mark.parametrize("keep_info", [True, False], ids=["job.json", "output-only"])
def test_an_empty_frontier_database_of_a_job_that_ran_is_refused_and_nothing_written(
    site: Site, project: Project, keep_info: bool
) -> None:
    # A failed restore leaves a 0-byte database: taken as a new job, it rewrote the output from 0.
    argv = paths_args(site, "/ok,/status/200", "--job-dir", "jobdir")
    assert project.run(*argv).code == 0
    job, out = project.root / "jobdir", project.root / "paths.jsonl"
    for leftover in job.glob("frontier.sqlite*"):
        leftover.unlink()
    (job / "frontier.sqlite").write_bytes(b"")
    if not keep_info:
        (job / "job.json").unlink()
    output = out.read_bytes()
    assert output
    fetched = len(site.log)
    for extra in ([], ["--overwrite"]):
        result = project.run(*argv, *extra)
        assert result.code == 2, result.err
        assert "frontier.sqlite" in result.err and "empty (0 bytes)" in result.err
        assert "--fresh" in result.err and "backup" in result.err  # how to recover
        assert "Traceback" not in result.err
        assert out.read_bytes() == output  # nothing written
        assert (job / "frontier.sqlite").stat().st_size == 0
        assert len(site.log) == fetched
    start_over = ["--fresh"] if keep_info else ["--fresh", "--overwrite"]
    assert " ".join(start_over) + " to start" in result.err
    fresh = project.run(*argv, *start_over)
    assert fresh.code == 0, fresh.err
    assert len(read_jsonl(out)) == 2


@contextlib.contextmanager
def made_read_only(path: Path) -> Iterator[None]:
    """The file made unwritable for the block: immutable (chattr +i) as root, mode 0444 otherwise."""
    if os.geteuid() == 0:  # root writes through permission bits
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
            pytest.skip("needs chattr +i (CAP_LINUX_IMMUTABLE) to make a file unwritable for root")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)


def test_a_read_only_frontier_database_is_not_called_corrupt(site: Site, project: Project) -> None:
    # The advice for a corrupt database, --fresh, would discard the committed state of this one.
    argv = paths_args(site, "/ok", "--job-dir", "jobdir")
    assert project.run(*argv).code == 0
    database, out = project.root / "jobdir" / "frontier.sqlite", project.root / "paths.jsonl"
    output, stored = out.read_bytes(), database.read_bytes()
    fetched = len(site.log)
    with made_read_only(database):
        result = project.run(*argv)
    assert result.code == 2, result.err
    assert "frontier.sqlite" in result.err and "cannot be written" in result.err
    assert "Operation not permitted (EPERM)" in result.err or "Permission denied (EACCES)" in result.err
    assert "corrupt" not in result.err.replace("not corrupt", "")
    assert "--fresh" not in result.err
    assert "Traceback" not in result.err
    assert len(site.log) == fetched
    assert out.read_bytes() == output and database.read_bytes() == stored


@pytest.mark.parametrize(
    ("link", "extra"),
    [(False, []), (True, []), (False, ["--overwrite", "--frontier", "memory"])],
    ids=["folder", "link-to-folder", "overwrite-memory"],
)
def test_a_folder_as_output_is_refused_before_any_request(
    site: Site, project: Project, link: bool, extra: list[str]
) -> None:
    (project.root / "outdir").mkdir()
    if link:
        (project.root / "outlink").symlink_to(project.root / "outdir")
    name = "outlink" if link else "outdir"
    result = project.run(*paths_args(site, "/ok", "-o", name, *extra))
    assert result.code == 2, result.err  # was 5, after fetching
    assert "Traceback" not in result.err
    assert f"output {name} is a folder" in result.err and "items.jsonl" in result.err
    assert len(site.log) == 0
    assert list((project.root / "outdir").iterdir()) == []


@pytest.mark.parametrize("extra", [[], ["--overwrite"]], ids=["default", "overwrite"])
def test_dev_null_as_output_is_a_stream(site: Site, project: Project, extra: list[str]) -> None:
    result = project.run(*paths_args(site, "/ok,/status/200", "-o", "/dev/null", *extra))
    assert result.code == 0, result.err  # --overwrite failed at fsync; without, "not empty"
    assert "not empty" not in result.err
    assert "/dev/null is a device or a pipe" in result.err and "not exactly once" in result.err
    assert re.search(r"items written +2$", result.err, re.M)


# -- the real executable -----------------------------------------------------------------------


def test_the_crawlkit_executable_crawls(site: Site, project: Project) -> None:
    assert CRAWLKIT_EXE.is_file(), f"{CRAWLKIT_EXE} is not installed"
    proc = subprocess.run(
        [str(CRAWLKIT_EXE), *paths_args(site, "/ok,/status/404", "-o", "out/items.jsonl")],
        cwd=project.root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "crawl summary" in proc.stderr and "http_404: 1" in proc.stderr
    assert read_jsonl(project.root / "out" / "items.jsonl") == [
        {"url": site.url("/ok"), "status": 200, "tag": ""}
    ]
    assert (project.root / ".crawlkit" / "jobs" / "paths" / "job.json").is_file()


def test_dash_output_writes_jsonl_to_stdout(site: Site, project: Project) -> None:
    def run() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(CRAWLKIT_EXE), *paths_args(site, "/ok,/graph/1", "-o", "-")],
            cwd=project.root,
            env=subprocess_env(),
            capture_output=True,  # stdout is a pipe
            timeout=60,
            check=False,
        )

    proc = run()
    assert proc.returncode == 0, proc.stderr
    # Only the items are on stdout; the log and the summary are on stderr.
    items = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(item["url"] for item in items) == [site.url("/graph/1"), site.url("/ok")]
    err = proc.stderr.decode()
    assert "crawl summary" in err and "not exactly once" in err
    assert not (project.root / "-").exists()
    # The job recorded the output as given, so the same command finds its job again.
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert "already finished" in proc.stderr.decode() and proc.stdout == b""


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        (["list"], 0, "spiders.pages.Paths"),
        (["--version"], 0, f"crawlkit {__version__}"),
        ([], 2, "usage: crawlkit"),
        (["crawl"], 2, "the following arguments are required: name"),
        (["crawl", "paths", "-s", "novalue"], 2, "expected KEY=VALUE"),
    ],
    ids=["list", "version", "no-command", "no-name", "bad-set"],
)
def test_python_dash_m_crawlkit(project: Project, argv: list[str], code: int, expected: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crawlkit", *argv],
        cwd=project.root,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == code, proc.stderr
    assert expected in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
