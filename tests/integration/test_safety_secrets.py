"""Secrets: a crawl that carries credentials every way there is writes them nowhere but its requests.

A real crawl process, at DEBUG, with credentials in URLs (turned into Basic auth by aiohttp), in
Authorization and Cookie headers, towards a page that answers 404, one that answers 503 (retried),
a host that refuses the connection, and a callback that raises an exception whose message holds
the URL and the headers. Then every byte the crawl wrote outside its output is searched.

What is searched: stdout and stderr (the logs of the main process and of the parser workers, the
summary), the stats file, and every file of the job directory except the SQLite frontier. The
frontier database keeps each pending request whole, credentials included, because a resumed crawl
must send the same request; the job directory is therefore created private (0700).
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

from conftest import Site
from crawlspiders.safety import crawl_argv, run

SPIDER = """\
from crawlspiders.safety_spiders import SecretPages


class Secret(SecretPages):
    name = "secretive"
"""

PASSWORD = "pw-Xq7Zr9Lm2Kd"
TOKEN = "tok-Hf3Vb8Nc1Pw"
COOKIE = "ck-Ws5Jt6Gy4Ra"
USER = "crawler"


def test_no_secret_reaches_logs_summary_stats_or_job_files(site: Site, tmp_path: Path) -> None:
    spider = tmp_path / "secret_spider.py"
    spider.write_text(SPIDER)
    job, stats_file = tmp_path / "job", tmp_path / "stats.json"
    secret_base = site.base.replace("http://", f"http://{USER}:{PASSWORD}@")
    argv = crawl_argv(
        spider, tmp_path / "items.jsonl", job,
        "-a", f"base={site.base}", "-a", f"secret_base={secret_base}",
        "-a", f"token={TOKEN}", "-a", f"cookie={COOKIE}",
        "--log-level", "DEBUG", "--stats-file", str(stats_file),
    )  # fmt: skip
    result = run(argv, tmp_path)
    assert result.code == 1, result.stderr  # pages failed, as they were meant to

    # The secrets were used: the server got each of them.
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    seen = [
        {k.lower(): v for k, v in entry.headers.items() if k.lower() in ("authorization", "cookie")}
        for entry in site.log.entries("/")
    ]
    assert {"authorization": basic} in seen
    assert {"authorization": f"Bearer {TOKEN}", "cookie": f"session={COOKIE}"} in seen
    # They went where they would show: failures, a retry, a callback's exception, its traceback.
    err = result.stderr
    assert "failed http://***@127.0.0.1" in err and "/status/404" in err
    assert "cannot parse http://***@127.0.0.1" in err and "Traceback" in err
    assert "'Authorization': '***', 'Cookie': '***'" in err
    assert "retrying" in err and "connect" in err

    written = {"stdout": result.stdout, "stderr": err, "stats file": stats_file.read_text()}
    job_files = [p for p in job.rglob("*") if p.is_file() and not p.name.startswith("frontier.sqlite")]
    assert job / "job.json" in job_files
    for path in job_files:
        written[str(path)] = path.read_bytes().decode("utf-8", "replace")
    b64_password = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, TOKEN, COOKIE, b64_password):
        leaks = [where for where, text in written.items() if secret in text]
        assert leaks == [], f"{secret} leaked into {leaks}"

    assert stat.S_IMODE(job.stat().st_mode) == 0o700  # the database's folder is private
