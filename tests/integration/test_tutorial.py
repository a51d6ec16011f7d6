"""docs/tutorial.md, walked step by step: every command it shows, run as written, in order.

The demo shop is served by ``python -m crawlkit.demo`` (smaller: ``--books``, and on a free port
instead of 8080, which the tutorial's text is changed to), and each command runs in a real shell
in a new folder, with this checkout's ``crawlkit`` on the PATH. ``STEPS`` lists the tutorial's
commands with what each must do; the first test keeps it equal to the tutorial's text, so the
tutorial cannot change without this walk following, nor stop working without this walk failing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import orjson
import pytest

from support.procs import reaped, subprocess_env, wait_for_lines

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
BOOKS = 300  # 15 listing pages: enough for step 7's crawl to be stopped halfway
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Step:
    command: str
    exit_code: int = 0
    how: str = "run"  # run | skip (with why) | demo | shell | interrupt


# Every command of the tutorial's ```bash blocks, in order. The crawls exit 1: the shop has a
# broken link on purpose, and the tutorial says so.
STEPS = [
    Step("mkdir bookscraper && cd bookscraper"),
    Step("python3 -m venv .venv && source .venv/bin/activate", how="skip: the test's venv is used"),
    Step("pip install -e path/to/crawlkit", how="skip: installed in the test's venv"),
    Step("crawlkit --version"),
    Step("python -m crawlkit.demo --port 8080", how="demo"),
    Step("crawlkit new books http://127.0.0.1:8080/catalogue/"),
    Step("crawlkit crawl books -o pages.jsonl", 1),
    Step("crawlkit fetch http://127.0.0.1:8080/catalogue/page-1.html | less"),
    Step("crawlkit shell http://127.0.0.1:8080/book/1-the-forgotten-orchard.html", how="shell"),
    Step(
        "crawlkit parse http://127.0.0.1:8080/book/1-the-forgotten-orchard.html --spider books -c parse_book"
    ),
    Step("crawlkit crawl books -o books.csv --fresh", 1),
    Step("crawlkit crawl books -o books.json --fresh", 1),
    Step("crawlkit crawl books -o books.jsonl.gz --fresh", 1),
    Step("crawlkit crawl books -o books.jsonl --fresh --max-items-per-file 100   # books-0001.jsonl ...", 1),
    Step("crawlkit crawl books -o books.jsonl -s download_delay=0.02 --fresh", 3, how="interrupt"),
    Step("crawlkit crawl books -o books.jsonl -s download_delay=0.02", 1),
    Step("mkdir -p tests/pages"),
    Step("crawlkit fetch http://127.0.0.1:8080/book/1-the-forgotten-orchard.html > tests/pages/book.html"),
    Step("pip install pytest", how="skip: installed in the test's venv"),
    Step("pytest tests/test_books.py"),
]


def blocks(language: str) -> list[tuple[str, str]]:
    """The tutorial's fenced blocks in ``language``: (the section's heading, the block's text)."""
    found, heading = [], ""
    for part in re.split(r"^(## .*)$", TUTORIAL.read_text(), flags=re.M):
        if part.startswith("## "):
            heading = part
            continue
        found += [(heading, text) for text in re.findall(rf"^```{language}\n(.*?)^```$", part, re.M | re.S)]
    return found


def tutorial_commands() -> list[str]:
    return [line for _, text in blocks("bash") for line in text.splitlines() if line.strip()]


def python_block(heading_start: str) -> str:
    found = [text for heading, text in blocks("python") if heading.startswith(heading_start)]
    assert len(found) == 1, f"{heading_start}: {len(found)} python blocks"
    return found[0]


def test_the_walk_covers_every_command_of_the_tutorial() -> None:
    assert tutorial_commands() == [step.command for step in STEPS]


@pytest.fixture
def demo() -> Iterator[int]:
    """The demo shop, served as the tutorial serves it, on a free port: the port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawlkit.demo", "--port", "0", "--books", str(BOOKS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with reaped(proc):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"the demo shop did not start: {line!r}"
        yield int(match.group(1))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


class Walker:
    """Runs the tutorial's commands in a shell, in its folder, with 8080 turned into the demo's port."""

    def __init__(self, root: Path, port: int) -> None:
        self.cwd = root
        self.port = port
        self.env = subprocess_env()
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env['PATH']}"
        self.env.pop("PYTHONPATH", None)  # a newcomer's shell has no tests/ on its path

    def text(self, text: str) -> str:
        return text.replace("127.0.0.1:8080", f"127.0.0.1:{self.port}")

    def popen(self, command: str, *, stdin: int | None = None, session: bool = False) -> Popen[str]:
        return subprocess.Popen(
            ["bash", "-c", self.text(command)],
            cwd=self.cwd,
            env=self.env,
            text=True,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=session,
        )

    def run(self, step: Step, stdin: str | None = None) -> tuple[str, str]:
        proc = self.popen(step.command, stdin=subprocess.PIPE if stdin is not None else None)
        with reaped(proc):
            out, err = proc.communicate(stdin, timeout=120)
        assert proc.returncode == step.exit_code, f"{step.command}\nexit {proc.returncode}\n{out}\n{err}"
        if step.command.startswith("mkdir ") and "&& cd " in step.command:
            self.cwd = self.cwd / step.command.rsplit("&& cd ", 1)[1].strip()
        return out, err

    def interrupt(self, step: Step, output: str) -> str:
        """Start the crawl, press Ctrl-C once it has written items; its stderr."""
        proc = self.popen(step.command, session=True)
        with reaped(proc):
            wait_for_lines(self.cwd / output, 1, proc)
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == step.exit_code, f"{step.command}\nexit {proc.returncode}\n{err}"
        return err


def shell_session(step4: str) -> tuple[str, list[str]]:
    """Step 4's Python session: what is typed, and what the tutorial says it prints."""
    typed = [line[4:] for line in step4.splitlines() if line.startswith(">>> ")]
    shown = [line for line in step4.splitlines() if line and not line.startswith(">>> ")]
    return "\n".join(typed) + "\n", shown


@pytest.mark.slow
def test_the_tutorial_works_as_written(tmp_path: Path, demo: int) -> None:
    walker = Walker(tmp_path, demo)
    for step in STEPS:
        if step.how.startswith("skip"):
            continue
        if step.how == "demo":
            continue  # the fixture serves it
        if step.how == "shell":
            typed, shown = shell_session(python_block("## 4."))
            out, err = walker.run(step, stdin=walker.text(typed))
            printed = [line for line in out.replace(">>> ", "\n").splitlines() if line.strip()]
            assert printed == [walker.text(line) for line in shown], err
            continue
        if step.how == "interrupt":
            err = walker.interrupt(step, "books.jsonl")
            assert "run the same command again, without --fresh, to resume" in err
            stopped = (walker.cwd / "books.jsonl").read_bytes().splitlines()
            assert 0 < len(stopped) < BOOKS
            continue
        if step.command.startswith("crawlkit parse "):  # step 5: the spider that scrapes the books
            (walker.cwd / "spiders" / "books.py").write_text(walker.text(python_block("## 5.")))
        if step.command.startswith("pytest "):  # step 9: the spider's test
            (walker.cwd / "tests" / "test_books.py").write_text(walker.text(python_block("## 9.")))
        out, err = walker.run(step)
        if step.command == "crawlkit crawl books -o books.jsonl -s download_delay=0.02":
            assert "whole crawl" in err
            urls = [
                orjson.loads(line)["url"] for line in (walker.cwd / "books.jsonl").read_bytes().splitlines()
            ]
            assert len(urls) == len(set(urls)) == BOOKS  # every book once, over the two runs
        if step.command.startswith("pytest "):
            assert "1 passed" in out
    # Step 6's exports, each complete.
    assert len((walker.cwd / "books.csv").read_text().splitlines()) == BOOKS + 1
    assert len(orjson.loads((walker.cwd / "books.json").read_bytes())) == BOOKS
    assert [p.name for p in sorted(walker.cwd.glob("books-*.jsonl"))] == [
        f"books-{n:04d}.jsonl" for n in range(1, BOOKS // 100 + 1)
    ]
    page = (walker.cwd / "tests" / "pages" / "book.html").read_text()
    assert page.lstrip().lower().startswith(("<!doctype", "<html"))
