"""``crawlkit new``, ``fetch``, ``parse``, ``shell`` and ``--stats-file`` against the real test site.

In-process tests call ``crawlkit.cli.main()`` with the working directory set to a fresh project
folder; the shell and the graceful-stop test run the real command in a subprocess.
"""

from __future__ import annotations

import importlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from conftest import Site
from crawlkit.cli import main
from support.misbehaving import page, serve
from support.procs import CRAWLKIT_EXE, bare_env, reaped, subprocess_env
from support.testsite import charset_text, graph_path, reachable

PLAIN_SPIDERS = """\
from crawlspiders.plain_spiders import GraphItems, WrongCallback


class Graph(GraphItems):
    name = "graph"


class Wrong(WrongCallback):
    name = "wrong"


class AllLinks(GraphItems):
    name = "all_links"

    def parse(self, response):
        yield from response.follow_all(css="a")
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty project folder, made the working directory."""
    monkeypatch.chdir(tmp_path)
    # Each test's spiders package is new: forget the modules of the previous one.
    for name in [m for m in sys.modules if m == "spiders" or m.startswith("spiders.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()
    yield tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- new ----------------------------------------------------------------------------------------


def test_new_writes_a_spider_that_crawls_the_site(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = site.url(graph_path(0, size=30, fanout=3, seed=0))
    code, _, err = run(capsys, "new", "graph_site", start)
    assert code == 0, err
    source = (project / "spiders" / "graph_site.py").read_text()
    assert "name = 'graph_site'" in source
    assert "allowed_domains = ['127.0.0.1']" in source
    assert f"start_urls = [{start!r}]" in source
    assert "class GraphSiteSpider(Spider):" in source
    code, _, err = run(
        capsys, "crawl", "graph_site", "-o", "out.jsonl", "--frontier", "memory", "--progress", "off",
        "-s", "parse_workers=1",
    )  # fmt: skip
    assert code == 0, err
    items = [orjson.loads(line) for line in (project / "out.jsonl").read_bytes().splitlines()]
    # One item per page of the site, each with its <title>; offsite and mailto: links not followed.
    # (The start URL is not deduplicated, as in Scrapy: a link back to it fetches it once more.)
    assert {int(i["title"].rsplit(" ", 1)[1]) for i in items} == reachable(30, 3, 0)
    assert len(items) <= 31
    assert "links not followed  offsite: 3" in err


def test_new_refuses_to_overwrite(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "new", "shop", "https://shop.example/")[0] == 0
    before = (project / "spiders" / "shop.py").read_text()
    code, _, err = run(capsys, "new", "shop", "https://other.example/")
    assert code == 2
    assert "spiders/shop.py already exists" in err
    assert (project / "spiders" / "shop.py").read_text() == before


@pytest.mark.parametrize(
    "url",
    [
        'https://shop.example/"""\nimport pathlib; pathlib.Path("INJECTED").write_text("x")\n"""',
        'https://shop.example/"""+open("INJECTED","w").write("x")+"""',
        "https://shop.example/\\\nopen('INJECTED','w')",
        "https://shop.example/?q='+open('INJECTED','w').write('x')+'",
    ],
)
def test_new_never_writes_a_url_as_code(project: Path, url: str) -> None:
    env = subprocess_env()
    subprocess.run([str(CRAWLKIT_EXE), "new", "shop", url], cwd=project, env=env, timeout=60, check=False)
    listed = subprocess.run(
        [str(CRAWLKIT_EXE), "list"], cwd=project, env=env, timeout=60, capture_output=True, text=True
    )
    assert not (project / "INJECTED").exists()
    spider = project / "spiders" / "shop.py"
    if spider.exists():  # written: then as a spider that starts at that very URL
        assert listed.returncode == 0 and "shop" in listed.stdout, listed.stderr
        assert f"start_urls = [{url!r}]" in spider.read_text()


@pytest.mark.parametrize(
    ("name", "url", "message"),
    [
        ("my-shop", "https://shop.example/", "must be a Python identifier"),
        ("class", "https://shop.example/", "must be a Python identifier"),
        ("2shop", "https://shop.example/", "must be a Python identifier"),
        ("shop", "shop.example", "must be an absolute http:// or https:// URL"),
        ("shop", "ftp://shop.example/", "must be an absolute http:// or https:// URL"),
        ("shop", 'https://shop.example/"x', "quotes, spaces and backslashes percent-encoded"),
        ("shop", "https://shop.example/a b", "quotes, spaces and backslashes percent-encoded"),
        ("shop", "https://shop.example:port/", "must be an absolute http:// or https:// URL"),
    ],
)
def test_new_validates_its_arguments(
    project: Path, capsys: pytest.CaptureFixture[str], name: str, url: str, message: str
) -> None:
    code, _, err = run(capsys, "new", name, url)
    assert code == 2
    assert message in err
    assert not (project / "spiders").exists() or not list((project / "spiders").iterdir())


# -- fetch --------------------------------------------------------------------------------------


def test_fetch_prints_the_decoded_text_alone_and_the_head_on_stderr(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # windows-1252 bytes, declared only in a <meta> tag: decoded as a crawl would decode them.
    url = site.url("/charset/windows-1252?via=meta")
    code, out, err = run(capsys, "fetch", url)
    assert code == 0, err
    # stdout is the page alone (`crawlkit fetch URL > page.html` keeps it as it is) ...
    assert out.lstrip().lower().startswith(("<!doctype", "<html")), out[:200]
    assert charset_text("windows-1252") in out
    assert "HTTP 200" not in out and "Content-Type:" not in out
    # ... and the status line, the headers and how it was decoded go to stderr.
    assert err.splitlines()[0] == f"HTTP 200 OK  {url}"
    assert "Content-Type: text/html" in err
    assert "decoded as cp1252" in err


def test_fetch_inflates_compressed_bodies_and_shows_errors(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "fetch", site.url("/encoded/gzip"))
    assert code == 0
    assert "Content-Encoding: gzip" in err and "<html" in out.lower()
    code, out, _ = run(capsys, "fetch", "--headers", site.url("/status/404"))
    assert code == 0
    assert out.startswith("HTTP 404 Not Found") and "\n\n" not in out


def test_fetch_headers_masks_credentials(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def login(request: web.Request) -> web.Response:
        response = page("in")
        response.set_cookie("sid", "SECRET-1")
        response.headers["X-Auth-Token"] = "SECRET-2"
        response.headers["X-Tenant"] = "SECRET-3"
        return response

    with serve([web.get("/login", login)]) as server:
        code, out, _ = run(
            capsys, "fetch", "--headers", "-s", "redact_headers=X-Tenant", server.url("/login")
        )
    assert code == 0
    assert "Set-Cookie: ***" in out and "X-Auth-Token: ***" in out and "X-Tenant: ***" in out
    assert "SECRET" not in out


def test_fetch_of_an_unreachable_url_says_so(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "fetch", "-s", "max_retries=0", "http://127.0.0.1:9/")
    assert code == 1
    assert "cannot fetch http://127.0.0.1:9/: cannot connect" in err


# -- parse --------------------------------------------------------------------------------------


def parse_report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(capsys, "parse", *argv)
    return code, orjson.loads(out), err


def test_parse_prints_the_items_and_requests_of_one_callback(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "spiders").mkdir()
    (project / "spiders" / "graph.py").write_text(PLAIN_SPIDERS)
    url = site.url(graph_path(7, size=30, fanout=3, seed=0))
    code, report, err = parse_report(capsys, url, "--spider", "graph", "-a", f"base={site.base}")
    assert code == 0, err
    assert report["items"] == [
        {"n": 7, "title": "Page 7", "url": url, "tags": [], "note": 'a "quoted", comma\nand a newline'}
    ]
    assert report["requests"], "the page's links"
    assert {r["callback"] for r in report["requests"]} == {"parse"}
    assert all(r["url"].startswith(site.url("/graph/")) for r in report["requests"])
    assert report["filtered"] == {}
    assert report["error"] is None
    assert len(site.log.entries("/graph")) == 1  # one page fetched, nothing followed
    # Requests a crawl would drop are counted by reason, as the crawl would count them.
    code, report, err = parse_report(capsys, url, "--spider", "all_links")
    assert code == 0, err
    assert report["items"] == []
    assert report["filtered"] == {"offsite": 1}


def test_parse_reports_a_callback_that_does_not_exist(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "spiders").mkdir()
    (project / "spiders" / "graph.py").write_text(PLAIN_SPIDERS)
    url = site.url("/ok")
    code, report, _ = parse_report(capsys, url, "--spider", "graph", "--callback", "parse_page")
    assert code == 1
    assert "has no callback method 'parse_page'" in report["error"]
    assert "its callbacks: page, parse" in report["error"]
    # A request naming a missing callback is caught when it is yielded, with what exists.
    code, report, err = parse_report(capsys, url, "--spider", "wrong")
    assert code == 1
    assert report["items"] == [{"n": 0}]  # what came before the mistake is kept
    assert "no callback method 'parse_itme'; did you mean 'parse_item'?" in report["error"]
    assert "Wrong.parse raised SpiderError" in report["error"]
    assert "Traceback" in err


def test_parse_of_a_failed_page_says_a_crawl_would_not_parse_it(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "spiders").mkdir()
    (project / "spiders" / "graph.py").write_text(PLAIN_SPIDERS)
    code, report, _ = parse_report(capsys, site.url("/status/404"), "--spider", "graph")
    assert code == 1
    assert report["status"] == 404 and "handle_httpstatus_list" in report["error"]


# -- shell --------------------------------------------------------------------------------------


def test_shell_has_the_response_ready(site: Site, tmp_path: Path) -> None:
    script = (
        "print('h1:', response.css_first('h1').text())\n"
        f"page = fetch({site.url(graph_path(3, size=30, fanout=3, seed=0))!r})\n"
        "print('n:', response.css_first('span.n').text(), page is response)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "crawlkit", "shell", site.url("/ok")],
        input=script,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "h1: ok" in proc.stdout
    assert "n: 3 True" in proc.stdout
    assert "crawlkit shell: 200" in proc.stderr  # the banner


# -- stats file ---------------------------------------------------------------------------------


def test_stats_file_holds_the_summary_figures(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "spiders").mkdir()
    (project / "spiders" / "graph.py").write_text(PLAIN_SPIDERS)
    code, _, err = run(
        capsys, "crawl", "graph", "-a", f"base={site.base}", "-a", "size=20", "-o", "out.csv",
        "--frontier", "memory", "--stats-file", "stats/run.json", "--progress", "off",
    )  # fmt: skip
    assert code == 0, err
    stats = orjson.loads((project / "stats" / "run.json").read_bytes())
    assert stats["stop_reason"] == "finished"
    assert stats["pages"] == stats["items"] == 20
    assert stats["failures"] == {} and stats["statuses"] == {"200": 20}
    assert stats["output"] == "out.csv"
    assert f"items written       {stats['items']}" in err


SLOW_SPIDER = """
from crawlspiders.cli_spiders import SlowPages


class Slow(SlowPages):
    name = "slow"
"""


@pytest.mark.slow
def test_stats_file_is_written_after_a_graceful_stop(site: Site, tmp_path: Path) -> None:
    spider = tmp_path / "slow_spider.py"
    spider.write_text(SLOW_SPIDER)
    stats_file = tmp_path / "stats.json"
    cmd = [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", "out.jsonl",
        "-a", f"base={site.base}", "-a", "count=60", "-a", "delay=0.2", "--concurrency", "4",
        "--stats-file", str(stats_file), "--progress", "off", "-s", "commit_interval=0.2",
    ]  # fmt: skip
    with reaped(subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, env=bare_env())) as proc:
        deadline = time.monotonic() + 30
        while len(site.log.entries("/slow")) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    stats = orjson.loads(stats_file.read_bytes())
    assert stats["stop_reason"] == "SIGINT"
    assert 0 < stats["items"] < 60
    assert stats["items"] == len((tmp_path / "out.jsonl").read_bytes().splitlines())


def test_fetch_of_a_binary_file_says_what_it_is(
    site: Site, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "fetch", site.url("/binary?type=image/png"))
    assert code == 0
    assert out == ""
    assert re.search(r"\d+ bytes of image/png: not text\n$", err), err


def test_output_into_a_closed_pipe_ends_quietly(site: Site) -> None:
    # `crawlkit fetch URL | true`: the reader leaves early; no traceback may follow.
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawlkit", "fetch", site.url("/big?size=2000000")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    # The reader is gone before the page comes (the command must first start and fetch it): a
    # reader that took part of it could leave the whole write in the pipe's buffer, or not.
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 1
