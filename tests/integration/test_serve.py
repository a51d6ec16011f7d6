"""``crawlkit serve``: the JSON API and its guards, against a real server and real crawls.

The server runs as a real ``crawlkit serve`` subprocess in a temporary project folder; the crawls
it starts are ordinary ``crawlkit crawl`` processes against the local test site.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from conftest import Site
from crawlkit.cli import main
from support.serveproc import Server, make_project, serving

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def server(project: Path) -> Iterator[Server]:
    with serving(project, "--allow-private") as running:
        yield running


def test_binding_another_address_without_a_token_exits_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to serve on 0.0.0.0 without a token" in capsys.readouterr().err


def test_with_a_token_every_call_and_page_needs_it(project: Path) -> None:
    (project / "token").write_text(TOKEN + "\n")
    with serving(project, "--token-file", "token") as srv:
        for path in ("/", "/api/jobs", "/api/spiders", "/api/fetch?url=http://example.com/"):
            status, _, _ = srv.call(path)
            assert status == 401, path
        assert srv.call("/api/jobs", headers={"Authorization": "Bearer wrong"})[0] == 401
        status, data, _ = srv.call("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and data == {"jobs": []}
        status, page, headers = srv.call(f"/?token={TOKEN}")
        assert status == 200 and "<title>crawlkit</title>" in page
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        value = cookie.split(";")[0]
        assert srv.call("/api/spiders", headers={"Cookie": value})[0] == 200


def test_without_a_token_only_a_loopback_host_header_is_answered(server: Server) -> None:
    host, port = server.base.removeprefix("http://").split(":")
    for name, expected in (("evil.example", 403), ("localhost", 200), ("127.0.0.1", 200)):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/api/jobs", headers={"Host": f"{name}:{port}"})
        assert conn.getresponse().status == expected, name
        conn.close()


def test_a_post_must_be_json_from_the_dashboard_itself(server: Server) -> None:
    status, data, _ = server.call(
        "/api/jobs", method="POST", body={"spider": "paths"}, headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    status, data, _ = server.call(
        "/api/jobs", method="POST", body={"spider": "paths"}, headers={"Origin": "http://evil.example"}
    )
    assert status == 403 and "evil.example" in data["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"spider": "nope"}, "no spider named 'nope'"),
        (
            {"spider": "paths", "settings": {"pipelines": ["os:system"]}},
            "cannot be set from the API: pipelines",
        ),
        ({"spider": "paths", "settings": {"middlewares": ["x:Y"]}}, "middlewares"),
        ({"spider": "paths", "settings": {"extensions": ["x:Y"]}}, "extensions"),
        ({"spider": "paths", "settings": {"job_dir": "/tmp/x"}}, "job_dir"),
        ({"spider": "paths", "settings": {"output_format": "csv"}}, "output_format"),
        ({"spider": "paths", "settings": {"no_such_setting": 1}}, "no_such_setting"),
        ({"spider": "paths", "settings": {"concurrency": 0}}, "concurrency"),
        ({"spider": "paths", "job": "../escape"}, "job must be a name"),
        ({"spider": "paths", "args": {"__class__": "x"}}, "spider argument '__class__'"),
        ({"spider": "paths", "code": "print(1)"}, "unknown fields: code"),
    ],
)
def test_a_job_is_checked_as_the_command_line_would(
    server: Server, body: dict[str, object], message: str
) -> None:
    status, data, _ = server.call("/api/jobs", method="POST", body=body)
    assert status == 400 and message in data["error"], data
    assert not (server.project / ".crawlkit" / "serve").exists()  # nothing was started


def test_start_watch_stop_resume_and_page_through_a_crawl(site: Site, server: Server) -> None:
    status, data, _ = server.call("/api/spiders")
    assert [s["name"] for s in data["spiders"]] == ["paths", "slow"]
    body = {
        "spider": "slow",
        "job": "slowjob",
        "args": {"base": site.base, "count": 40, "delay": "0.15"},
        "settings": {"concurrency": 2, "series_interval": 0.2, "commit_interval": 0.2},
    }
    status, started, _ = server.call("/api/jobs", method="POST", body=body)
    assert status == 201, started
    assert started["output"].endswith(".crawlkit/output/slowjob.jsonl")
    job = server.wait_for("slowjob", "some items", lambda j: (j["figures"]["items"] or 0) >= 4)
    assert job["status"] == "running" and job["spider"] == "slow"
    assert server.call("/api/jobs", method="POST", body=body)[0] == 409  # running already

    events = _first_event(server, "slowjob")
    assert events["name"] == "slowjob" and events["status"] == "running"

    assert server.call("/api/jobs/slowjob/stop", method="POST", body={})[0] == 200
    stopped = server.wait_for("slowjob", "the stop", lambda j: j["status"] == "stopped")
    assert stopped["stop_reason"] == "SIGTERM"
    status, page, _ = server.call("/api/jobs/slowjob/items?offset=0&limit=3")
    assert len(page["items"]) == 3
    status, rest, _ = server.call(f"/api/jobs/slowjob/items?offset={page['next_offset']}&limit=1000")
    seen = [item["i"] for item in page["items"] + rest["items"]]
    assert len(seen) == stopped["figures"]["items"]

    assert server.call("/api/jobs/slowjob/resume", method="POST", body={})[0] == 201
    done = server.wait_for("slowjob", "the end", lambda j: j["status"] == "finished", timeout=90)
    assert done["figures"]["items"] == 40
    status, page, _ = server.call("/api/jobs/slowjob/items?limit=1000")
    assert sorted(item["i"] for item in page["items"]) == list(range(40))  # none lost, none twice
    status, tail, _ = server.call("/api/jobs/slowjob/items?tail=5")
    assert tail["items"] == page["items"][-5:]
    status, text, headers = server.call("/api/jobs/slowjob/output")
    assert status == 200 and "attachment" in headers.get("Content-Disposition", "")
    assert sorted(orjson.loads(line)["i"] for line in str(text).splitlines()) == list(range(40))
    status, charts, _ = server.call("/api/jobs/slowjob/charts")
    assert charts.count("<polyline") >= 5
    status, report, _ = server.call("/jobs/slowjob/report")
    assert status == 200 and "Crawl report: slowjob" in report
    status, log, _ = server.call("/api/jobs/slowjob/log?tail=200")
    assert any("crawl summary" in line for line in log["lines"])
    status, listing, _ = server.call("/api/jobs")
    assert [j["name"] for j in listing["jobs"]] == ["slowjob"]


def _first_event(server: Server, name: str) -> dict[str, object]:
    import orjson

    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET /api/jobs/{name}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        data = b""
        deadline = time.monotonic() + 10
        while b"\n\n" not in data.partition(b"data: ")[2] and time.monotonic() < deadline:
            data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"text/event-stream" in head
    assert b"event: update\n" in rest
    line = rest.partition(b"data: ")[2].partition(b"\n")[0]
    return dict(orjson.loads(line))


def test_an_unknown_job_is_404(server: Server) -> None:
    for path in ("/api/jobs/nope", "/api/jobs/nope/items", "/api/jobs/nope/events"):
        assert server.call(path)[0] == 404, path
    assert server.call("/api/jobs/nope/stop", method="POST", body={})[0] == 409
