"""Exporters against real files: every format valid after a clean crawl and after a hard kill and a
resume; gzip readable by the gzip module; output split into parts of N items.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import Site
from crawlkit import crawl
from crawlkit.exporters import FeedExporter, Mode, OutputSpec, output_spec
from crawlspiders.plain_spiders import GraphItems
from support.procs import bare_env, reaped
from support.testsite import reachable

NOTE = 'a "quoted", comma\nand a newline'


def read_output(path: Path, fmt: str) -> list[dict[str, Any]]:
    """Parse an output file strictly; fails if it is not valid in its format."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if fmt == "jsonl":
        assert data == b"" or data.endswith(b"\n"), "a partial line"
        return [orjson.loads(line) for line in data.splitlines()]
    if fmt == "json":
        items = orjson.loads(data)
        assert isinstance(items, list)
        return items
    rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    for row in rows:  # CSV holds text: numbers and lists come back from their JSON form
        row["n"] = int(row["n"])
        if "tags" in row:
            row["tags"] = orjson.loads(row["tags"])
    return rows


def check_graph_items(items: list[dict[str, Any]], size: int) -> None:
    numbers = sorted(item["n"] for item in items)
    assert numbers == sorted(reachable(size)), "every page exactly once"
    for item in items:
        assert item["title"] == f"Page {item['n']}"
        assert item["tags"] == (["even"] if item["n"] % 2 == 0 else [])
        if item["n"] % 7 == 0:
            assert item["note"] == NOTE


def fmt_of(name: str) -> str:
    return output_spec(Path(name)).format


@pytest.mark.parametrize(
    "name", ["items.jsonl", "items.csv", "items.json", "items.jsonl.gz", "items.csv.gz", "items.json.gz"]
)
def test_each_format_is_valid_after_a_clean_crawl(site: Site, tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    settings = {"frontier": "sqlite", "job_dir": str(tmp_path / "job"), "parse_workers": 2, "progress": "off"}
    stats = crawl(GraphItems, out, settings=settings, handle_signals=False, base=site.base, size="200")
    assert stats.ok and stats.items == 200
    items = read_output(out, fmt_of(name))
    if fmt_of(name) == "csv":
        # Columns come from the first item; "note" is not among them unless page 0 (n % 7 == 0)
        # came first, which it does: the crawl starts there.
        assert list(items[0]) == ["n", "title", "url", "tags", "note"]
        for item in items:
            if not item["note"]:
                del item["note"]
    check_graph_items(items, 200)
    if name.endswith(".gz"):
        with gzip.open(out) as f:  # several gzip members read as one stream
            assert len(f.read()) > 0


def test_format_option_wins_over_the_extension(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "items.data"
    settings = {"frontier": "memory", "parse_workers": 1, "output_format": "json", "progress": "off"}
    crawl(GraphItems, out, settings=settings, handle_signals=False, base=site.base, size="30")
    check_graph_items(read_output(out, "json"), 30)


def test_output_is_split_into_parts_of_n_items(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "items.json"
    settings = {"frontier": "memory", "parse_workers": 2, "max_items_per_file": 50, "progress": "off"}
    stats = crawl(GraphItems, out, settings=settings, handle_signals=False, base=site.base, size="180")
    assert not out.exists()
    parts = sorted(tmp_path.glob("items-*.json"))
    assert [p.name for p in parts] == [f"items-000{i}.json" for i in range(1, 5)]
    counts = [len(read_output(p, "json")) for p in parts]
    assert counts == [50, 50, 50, 30]
    check_graph_items([item for p in parts for item in read_output(p, "json")], 180)
    assert "items-NNNN.json (50 items per file)" in stats.summary()


SPIDER = """
from crawlspiders.plain_spiders import GraphItems


class Resumable(GraphItems):
    name = "resumable"
"""
SIZE = 300


def command(site: Site, tmp_path: Path, out: Path, *extra: str) -> list[str]:
    spider = tmp_path / "resumable_spider.py"
    spider.write_text(SPIDER)
    return [
        sys.executable, "-m", "crawlkit", "runspider", str(spider), "-o", str(out),
        "--job-dir", str(tmp_path / "job"), "-a", f"base={site.base}", "-a", f"size={SIZE}",
        "--concurrency", "8", "-s", "commit_interval=0.2", "-s", "parse_workers=2",
        "-s", "download_delay=0.004", "--log-level", "WARNING", "--progress", "off", *extra,
    ]  # fmt: skip


def run_until(
    cmd: list[str], cwd: Path, sig: signal.Signals | None = None, watch: Path | None = None
) -> tuple[int, str]:
    """Run a crawl; with ``sig``, send it once ``watch`` holds committed items, and a bit later."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=bare_env())
    with reaped(proc):
        if sig is not None:
            assert watch is not None
            deadline = time.monotonic() + 30
            while not (watch.exists() and watch.stat().st_size > 0) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # more commits, and work in flight that is not committed yet
            assert proc.poll() is None, "the crawl ended before it could be interrupted"
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode(errors="replace")


def read_parts(tmp_path: Path, name: str, fmt: str) -> list[dict[str, Any]]:
    stem, _, suffix = name.partition(".")
    parts = sorted(tmp_path.glob(f"{stem}-*.{suffix}"))
    assert parts
    items = []
    for part in parts:
        got = read_output(part, fmt)
        assert len(got) <= 100
        items.extend(got)
    return items


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("items.json", ()),
        ("items.csv.gz", ()),
        ("items.json", ("--max-items-per-file", "100")),
    ],
)
def test_each_format_is_valid_after_a_hard_kill_and_a_resume(
    site: Site, tmp_path: Path, name: str, extra: tuple[str, ...]
) -> None:
    out = tmp_path / name
    cmd = command(site, tmp_path, out, *extra)
    first = tmp_path / (name.replace(".", "-0001.", 1) if extra else name)
    code, err = run_until(cmd, tmp_path, signal.SIGKILL, watch=first)
    assert code == -signal.SIGKILL, err
    code, err = run_until(cmd, tmp_path)
    assert code == 0, err
    fmt = fmt_of(name)
    items = read_parts(tmp_path, name, fmt) if extra else read_output(out, fmt)
    if fmt == "csv":
        for item in items:
            if not item["note"]:
                del item["note"]
    check_graph_items(items, SIZE)


@pytest.mark.slow
def test_a_json_array_is_valid_after_a_graceful_stop_and_after_its_resume(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "items.json"
    cmd = command(site, tmp_path, out)
    code, err = run_until(cmd, tmp_path, signal.SIGINT, watch=out)
    assert code == 3, err
    partial = read_output(out, "json")  # closed cleanly: valid JSON already
    assert 0 < len(partial) < SIZE
    code, err = run_until([*cmd[:-4], "--log-level", "INFO", "--progress", "off"], tmp_path)
    assert code == 0, err
    assert "uncommitted bytes" not in err  # the closing bracket was cut quietly
    check_graph_items(read_output(out, "json"), SIZE)


# -- the exporter on its own, on real files -------------------------------------------------------


def lines(*numbers: int) -> list[bytes]:
    return [orjson.dumps({"n": n}) + b"\n" for n in numbers]


async def write(
    spec: OutputSpec, batches: list[list[int]], mode: Mode = "overwrite", resume: int | None = None
) -> list[int]:
    exporter = FeedExporter(spec, mode)
    await exporter.open(resume_offset=resume)
    offsets = []
    for batch in batches:
        exporter.add(lines(*batch))
        offsets.append(await exporter.flush(sync=True))
    await exporter.close()
    return offsets


@pytest.mark.parametrize("name", ["a.json", "a.json.gz", "a.csv", "a.csv.gz", "a.jsonl.gz"])
def test_resuming_at_a_committed_offset_continues_the_file(tmp_path: Path, name: str) -> None:
    spec = output_spec(tmp_path / name)
    offsets = asyncio.run(write(spec, [[1, 2], [3], [4, 5]]))
    # A crash after the second commit: the third batch and the close are cut away.
    asyncio.run(write(spec, [[6], [7]], resume=offsets[1]))
    assert [row["n"] for row in read_output(spec.path, spec.format)] == [1, 2, 3, 6, 7]


@pytest.mark.parametrize("name", ["a.json", "a.json.gz", "a.csv"])
def test_appending_to_a_closed_file_keeps_it_valid(tmp_path: Path, name: str) -> None:
    spec = output_spec(tmp_path / name)
    asyncio.run(write(spec, [[1, 2]]))
    asyncio.run(write(spec, [[3]], mode="append"))
    assert [row["n"] for row in read_output(spec.path, spec.format)] == [1, 2, 3]


def test_a_crawl_without_items_leaves_an_empty_json_array(tmp_path: Path) -> None:
    spec = output_spec(tmp_path / "a.json")
    asyncio.run(write(spec, []))
    assert orjson.loads(spec.path.read_bytes()) == []


def test_csv_columns_come_from_the_setting_or_the_first_item(tmp_path: Path) -> None:
    spec = OutputSpec(tmp_path / "a.csv", "csv", csv_fields=["url", "n"])
    exporter = FeedExporter(spec)

    async def go() -> None:
        await exporter.open()
        exporter.add([b'{"n": 1, "url": "u1", "extra": true}\n', b'{"url": "u2"}\n'])
        await exporter.close()

    asyncio.run(go())
    assert spec.path.read_bytes() == b"url,n\r\nu1,1\r\nu2,\r\n"


def test_parts_resume_across_a_part_boundary(tmp_path: Path) -> None:
    spec = output_spec(tmp_path / "a.jsonl", max_items_per_file=2)
    offsets = asyncio.run(write(spec, [[1, 2, 3], [4, 5], [6]]))
    assert len(list(tmp_path.glob("a-*.jsonl"))) == 3
    asyncio.run(write(spec, [[7, 8]], resume=offsets[0]))  # parts 1 (full) and 2 (holding 3)
    got = [[row["n"] for row in read_output(p, "jsonl")] for p in sorted(tmp_path.glob("a-*.jsonl"))]
    assert got == [[1, 2], [3, 7], [8]]


def test_a_changed_file_is_refused_on_resume(tmp_path: Path) -> None:
    from crawlkit import ExportError

    spec = output_spec(tmp_path / "a.json")
    offsets = asyncio.run(write(spec, [[1, 2]]))
    spec.path.write_bytes(b"[")
    with pytest.raises(ExportError, match="were committed"):
        asyncio.run(write(spec, [[3]], resume=offsets[0]))


FULL_DISK = """
import asyncio, resource, signal, sys
from pathlib import Path

import orjson

from crawlkit import ExportError
from crawlkit.exporters import FeedExporter, output_spec

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


async def main() -> None:
    exporter = FeedExporter(output_spec(Path(sys.argv[1])))
    await exporter.open()
    committed = 0
    try:
        for i in range(100_000):
            exporter.add([orjson.dumps({"n": i, "pad": str(i) * 40}) + b"\\n"])
            if i % 7 == 6:
                committed = await exporter.flush(sync=True)
    except ExportError as exc:
        print(committed, exc)
    try:
        await exporter.close()
    except ExportError:
        pass


asyncio.run(main())
"""


@pytest.mark.parametrize("name", ["a.json", "a.csv.gz"])
def test_a_full_disk_leaves_whole_records_and_the_output_resumes(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    proc = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(out)], capture_output=True, text=True, timeout=60, check=True
    )
    committed_text, _, message = proc.stdout.strip().partition(" ")
    committed = int(committed_text)
    assert "cannot write output" in message and "(EFBIG)" in message
    assert 0 < committed == out.stat().st_size  # the failed write's partial bytes were cut off
    spec = output_spec(out)
    asyncio.run(write(spec, [[-1]], resume=committed))
    got = [int(row["n"]) for row in read_output(out, spec.format)]
    assert got == [*range(len(got) - 1), -1]
