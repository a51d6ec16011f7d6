"""User mistakes are reported with what is wrong and where: real crawls, real worker processes."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import Site
from crawlkit import ParseError, Request, Response, Spider, crawl
from crawlkit.cli import main
from crawlkit.testing import run_callback
from crawlspiders.plain_spiders import BuggyCallbacks, WrongCallback, WrongSelector
from support.procs import CRAWLKIT_EXE, subprocess_env

SETTINGS: dict[str, Any] = {"frontier": "memory", "parse_workers": 1, "progress": "off"}


def test_a_request_naming_a_missing_callback_fails_its_page_with_the_callbacks_that_exist(
    site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = crawl(WrongCallback, tmp_out, settings=SETTINGS, handle_signals=False, base=site.base, size="5")
    assert stats.failures == {"callback_error": 1}
    assert stats.items == 1  # the item yielded before the bad request is kept
    assert site.log.count("/ok") == 0  # the request was never queued
    err = caplog.text
    assert "WrongCallback.parse raised SpiderError: spider WrongCallback has no callback method " in err
    assert "'parse_itme'; did you mean 'parse_item'? (its callbacks: page, parse, parse_item)" in err


def test_an_xpath_given_to_css_says_so(site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture) -> None:
    stats = crawl(WrongSelector, tmp_out, settings=SETTINGS, handle_signals=False, base=site.base, size="5")
    assert stats.failures == {"callback_error": 1}
    err = caplog.text
    assert "invalid CSS selector '//h1'" in err and "looks like XPath" in err
    assert "/graph/0" in err  # the page it happened on


def test_a_selector_of_the_wrong_type_says_so() -> None:
    class NumberSelector(Spider):
        def parse(self, response: Response) -> Any:
            yield {"x": response.css(42)}

    with pytest.raises(ParseError, match=r"response.css\(\) takes a CSS selector string, got int 42"):
        run_callback(NumberSelector, "<p></p>")


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: connecting is refused


class Unreachable(Spider):
    url = ""

    def start_requests(self) -> Any:
        yield Request(self.url)


def test_an_unreachable_start_url_is_named_in_the_summary(tmp_out: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}/"
    settings = {**SETTINGS, "parse_workers": 0, "max_retries": 0}
    stats = crawl(Unreachable, tmp_out, settings=settings, handle_signals=False, url=url)
    summary = stats.summary()
    assert re.search(r"start URLs failed +1 \(no page could be fetched: check the URLs", summary)
    assert f"{url}  connect: cannot connect" in summary
    assert stats.as_dict()["start_failures"][url].startswith("connect: cannot connect")


class Missing(Spider):
    base = ""

    def start_requests(self) -> Any:
        yield Request(self.base + "/status/404")
        yield Request(self.base + "/ok")

    def parse(self, response: Response) -> Any:
        yield {"url": response.url}


def test_a_start_url_answering_404_is_named_too(site: Site, tmp_out: Path) -> None:
    settings = {**SETTINGS, "parse_workers": 0}
    stats = crawl(Missing, tmp_out, settings=settings, handle_signals=False, base=site.base)
    assert stats.start_failures == {site.url("/status/404"): "http_404: HTTP 404"}
    assert re.search(r"start URLs failed +1\n", stats.summary())  # a page was fetched


def test_a_setting_of_the_wrong_type_names_the_setting_and_where_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spider = tmp_path / "one_spider.py"
    spider.write_text(
        "from crawlkit import Spider\n\n\nclass One(Spider):\n    custom_settings = {'concurrency': '8'}\n"
    )
    assert main(["runspider", str(spider), "-s", "max_items_per_file=many"]) == 2
    err = capsys.readouterr().err
    assert "setting 'concurrency' (from the spider's custom_settings) must be an integer, got '8'" in err
    other = tmp_path / "other_spider.py"
    other.write_text("from crawlkit import Spider\n\n\nclass Other(Spider):\n    pass\n")
    assert main(["runspider", str(other), "-s", "max_items_per_file=many"]) == 2
    err = capsys.readouterr().err
    assert "setting 'max_items_per_file' (from the command line) must be an integer, got 'many'" in err


FAILING_SPIDER = """
from crawlkit import Spider


class Failing(Spider):
    name = "failing"
    start_urls = []

    def parse(self, response):
        yield {"price": object()}  # not JSON: logged by the parser worker
"""


def test_parser_workers_log_in_the_main_process_format(site: Site, tmp_path: Path) -> None:
    spider = tmp_path / "failing.py"
    # /ok's item fails in the parser worker; the 404 is logged by the main process.
    spider.write_text(FAILING_SPIDER.replace("[]", repr([site.url("/ok"), site.url("/status/404")])))
    proc = subprocess.run(
        [str(CRAWLKIT_EXE), "runspider", str(spider), "-o", "out.jsonl", "--frontier", "memory"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    logged = [
        line for line in proc.stderr.splitlines() if re.match(r"^\S+ (DEBUG|INFO|WARNING|ERROR) ", line)
    ]
    assert any("[worker " in line for line in logged), proc.stderr  # the callback's error, logged there
    assert any("crawlkit.engine" in line for line in logged), proc.stderr
    for line in logged:
        assert re.match(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) crawlkit\.", line), line


def test_one_bug_on_many_pages_shows_its_first_tracebacks_then_a_line_a_page(
    site: Site, tmp_out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = crawl(BuggyCallbacks, tmp_out, settings=SETTINGS, handle_signals=False, base=site.base, size="40")
    assert stats.pages == 40 and stats.failures == {"callback_error": 40}
    kinds = {"BuggyCallbacks.parse raised LookupError": 4, "BuggyCallbacks.parse raised ValueError": 36}
    assert dict(stats.callback_errors) == kinds
    errors = [r.getMessage() for r in caplog.records if r.name == "crawlkit.engine"]
    assert len(errors) == 40
    for kind in kinds:
        mine = [e for e in errors if f"{kind}:" in e]
        assert sum("Traceback (most recent call last)" in e for e in mine) == 3  # the first 3, in full
        assert all("Traceback" not in e and "\n" not in e for e in mine[3:])
        assert sum("further tracebacks of this error are shortened" in e for e in mine) == 1
        assert all(e.startswith(site.base + "/graph/") for e in mine[3:])  # the URL, then the message
    assert "second line of the message" not in "\n".join(e for e in errors if "Traceback" not in e)
    summary = stats.summary()
    assert re.search(r"failures +40 \(callback_error: 40\)", summary)
    kinds_shown = r"callbacks raised +36  BuggyCallbacks.parse raised ValueError\n +4  BuggyCallbacks.parse"
    assert re.search(kinds_shown, summary)
