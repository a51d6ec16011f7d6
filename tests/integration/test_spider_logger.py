"""``self.logger``: a logger named after the spider, in the main process and in the parser workers.

A real ``crawlkit`` process crawls the local test site with two parser workers; the spider logs from
``opened()`` (the main process) and from its callback (a worker). Both reach the crawl's stderr in
one format, and a credential in either is masked.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import Site
from support.procs import CRAWLKIT_EXE, subprocess_env

SPIDER = """\
import os

from crawlkit import Spider


class Chatty(Spider):
    name = "chatty"
    start_urls = [{start!r}]

    async def opened(self):
        self.logger.info("opened in %d with https://me:hunter2@example.com/", os.getpid())

    def parse(self, response):
        self.logger.warning("parsed %s in %d; Authorization: Bearer s3cr3t", response.url, os.getpid())
        yield {{"url": response.url, "logger": self.logger.name}}
"""


def test_self_logger_in_main_process_and_workers(site: Site, tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(SPIDER.format(start=site.url("/ok")))
    argv = ["runspider", "chatty.py", "-o", "out.jsonl", "--frontier", "memory", "--progress", "off"]
    proc = subprocess.run(
        [str(CRAWLKIT_EXE), *argv, "-s", "parse_workers=2"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    main = re.search(r"^\d\d:\d\d:\d\d INFO chatty: opened in (\d+) with (.*)$", proc.stderr, re.M)
    worker = re.search(
        r"^\d\d:\d\d:\d\d WARNING chatty\[worker (\d+)\]: parsed (\S+) in (\d+); (.*)$", proc.stderr, re.M
    )
    assert main is not None and worker is not None, proc.stderr
    # The callback ran in a worker, another process, and named itself in the line.
    assert worker.group(1) == worker.group(3) != main.group(1)
    assert worker.group(2) == site.url("/ok")
    # Redacted like every crawlkit log, in both processes.
    assert "hunter2" not in proc.stderr and "s3cr3t" not in proc.stderr
    assert "***" in main.group(2) and "***" in worker.group(4)
    assert (tmp_path / "out.jsonl").read_text().count('"logger":"chatty"') == 1
