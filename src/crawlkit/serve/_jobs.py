"""The jobs of a project folder, and crawls started and stopped as ordinary ``crawlkit crawl`` processes.

Everything the server knows of a job it reads from disk: the job folder (``.crawlkit/jobs/NAME``:
``job.json``, ``stats.json``, ``series.jsonl``, the ``lock`` that holds the running crawl's pid)
and its launch record (``.crawlkit/serve/NAME.json``: the spider, arguments and settings it was
started with, and its log ``NAME.log``). A crawl runs in a session of its own, so it outlives a
server restart; the restarted server finds it running from its lock, and resumes a stopped one
with the command it was started with. Crawls that ``crawlkit crawl`` started by hand are listed
too (they have no launch record, so the server cannot resume them).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import ConfigError
from ..settings import Settings, load_settings

__all__ = ["JobBook", "JobError", "LaunchSpec"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ARG = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# Settings that import code, or that would write files where (or as) the server does not decide:
# never from the API (a POST must not be a way to run code or to write anywhere).
REFUSED_SETTINGS = frozenset(
    {
        "pipelines",
        "middlewares",
        "extensions",
        "job_dir",
        "job_name",
        "spiders_dir",
        "stats_file",
        "report",
        "output_format",
        "output_gzip",
        "max_items_per_file",
    }
)
_LOG_TAIL_BYTES = 64 * 1024


class JobError(Exception):
    """A request about a job that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LaunchSpec:
    """What a crawl is started with: checked as the command line would check it."""

    job: str
    spider: str
    args: dict[str, str]
    settings: dict[str, str]

    @classmethod
    def parse(cls, body: Any, spiders: set[str], project: Path) -> LaunchSpec:
        if not isinstance(body, dict):
            raise JobError("expected a JSON object")
        unknown = set(body) - {"spider", "job", "args", "settings"}
        if unknown:
            raise JobError(f"unknown fields: {', '.join(sorted(unknown))}")
        spider = body.get("spider")
        if not isinstance(spider, str) or spider not in spiders:
            raise JobError(f"no spider named {spider!r}; spiders: {', '.join(sorted(spiders)) or 'none'}")
        job = body.get("job", spider)
        if not isinstance(job, str) or not NAME.fullmatch(job):
            raise JobError("job must be a name of letters, digits, '_', '.', '-' (64 at most)")
        args = body.get("args") or {}
        if not isinstance(args, dict):
            raise JobError("args must be an object")
        for key, value in args.items():
            if not _ARG.fullmatch(key) or not isinstance(value, str | int | float | bool):
                raise JobError(
                    f"spider argument {key!r}: names are identifiers, values plain strings or numbers"
                )
        settings = body.get("settings") or {}
        if not isinstance(settings, dict):
            raise JobError("settings must be an object")
        refused = sorted(set(settings) & REFUSED_SETTINGS)
        if refused:
            raise JobError(f"these settings cannot be set from the API: {', '.join(refused)}")
        as_text = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in settings.items()}
        try:  # as the command line's -s would: unknown names, types and ranges
            load_settings(pyproject=project / "pyproject.toml", overrides=as_text)
        except ConfigError as exc:
            raise JobError(str(exc)) from None
        return cls(job, spider, {k: str(v) for k, v in args.items()}, as_text)


def _pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running crawlkit process (not a pid reused by another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0] if ")" in stat else ""
    return state not in ("Z", "X") and b"crawlkit" in cmdline


class JobBook:
    """The jobs of one project folder."""

    def __init__(self, project: Path) -> None:
        self.project = project
        self.jobs_dir = project / ".crawlkit" / "jobs"
        self.serve_dir = project / ".crawlkit" / "serve"
        self.output_dir = project / ".crawlkit" / "output"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- reading -----------------------------------------------------------------------------

    def folder(self, name: str) -> Path:
        if not NAME.fullmatch(name):
            raise JobError(f"no job {name!r}", 404)
        return self.jobs_dir / name

    def names(self) -> list[str]:
        found = set()
        for base in (self.jobs_dir, self.serve_dir):
            with contextlib.suppress(OSError):
                for entry in base.iterdir():
                    name = entry.name.removesuffix(".json") if entry.is_file() else entry.name
                    if NAME.fullmatch(name) and (entry.is_dir() or entry.suffix == ".json"):
                        found.add(name)
        return sorted(found)

    def launch_record(self, name: str) -> dict[str, Any] | None:
        try:
            record = orjson.loads((self.serve_dir / f"{name}.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return record if isinstance(record, dict) else None

    def running_pid(self, name: str) -> int | None:
        """The pid of the crawl that holds the job's lock, if it still runs."""
        self._reap()
        try:
            text = (self.folder(name) / "lock").read_text().strip()
        except OSError:
            text = ""
        if text.isdigit() and _pid_alive(int(text)):
            return int(text)
        proc = self._procs.get(name)
        if proc is not None and proc.poll() is None:
            return proc.pid  # started, not yet holding the lock
        return None

    def _json(self, path: Path) -> dict[str, Any]:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def describe(self, name: str) -> dict[str, Any]:
        folder = self.folder(name)
        record = self.launch_record(name)
        if not folder.is_dir() and record is None:
            raise JobError(f"no job {name!r}", 404)
        info = self._json(folder / "job.json")
        stats = self._json(folder / "stats.json")
        pid = self.running_pid(name)
        if pid is not None:
            status = "running"
        elif not stats:
            failed = record is not None and record.get("exit_code") not in (None, 0)
            status = "failed to start" if failed else "new"
        elif stats.get("stop_reason") in ("finished", "already finished") and not stats.get("running"):
            status = "finished"
        else:
            status = "stopped"
        whole_job = stats.get("job")  # a resumed job's figures, every run summed
        figures: dict[str, Any] = whole_job if isinstance(whole_job, dict) else stats
        return {
            "name": name,
            "spider": info.get("spider") or (record or {}).get("spider"),
            "status": status,
            "pid": pid,
            "output": info.get("output") or (record or {}).get("output"),
            "resumable": record is not None,
            "started_with": record,
            "figures": {
                key: figures.get(key)
                for key in ("pages", "items", "pages_failed", "items_failed", "retries", "elapsed_s")
            },
            "stop_reason": stats.get("stop_reason"),
            "updated": stats.get("updated"),
            "stats": stats,
        }

    def log_tail(self, name: str, lines: int) -> list[str]:
        path = self.serve_dir / f"{self.folder(name).name}.log"
        try:
            with open(path, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                data = log.read()
        except OSError:
            return []
        return data.decode(errors="replace").splitlines()[-lines:]

    def output_path(self, name: str) -> Path:
        output = self.describe(name)["output"]
        if not output:
            raise JobError(f"job {name!r} has no output yet", 404)
        path = Path(str(output))
        if path.suffix != ".jsonl" or (path.exists() and not path.is_file()):
            raise JobError(f"job {name!r} writes {path.name}, not a JSONL file to page through", 409)
        return path  # perhaps not there yet: a crawl that has only begun

    # -- starting and stopping ---------------------------------------------------------------

    def start(self, spec: LaunchSpec, settings: Settings) -> dict[str, Any]:
        if self.running_pid(spec.job) is not None:
            raise JobError(f"job {spec.job!r} is running already", 409)
        record = {"spider": spec.spider, "args": spec.args, "settings": spec.settings}
        return self._launch(spec.job, record)

    def resume(self, name: str) -> dict[str, Any]:
        record = self.launch_record(name)
        if record is None:
            raise JobError(f"job {name!r} was not started here: resume it with its own command", 409)
        if self.running_pid(name) is not None:
            raise JobError(f"job {name!r} is running already", 409)
        return self._launch(name, {k: record[k] for k in ("spider", "args", "settings") if k in record})

    def _launch(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder(name)
        self.serve_dir.mkdir(parents=True, exist_ok=True)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        output = self.output_dir / f"{name}.jsonl"
        argv = [sys.executable, "-m", "crawlkit", "crawl", str(record["spider"])]
        argv += ["-o", str(output), "--job-dir", str(folder), "--progress", "log"]
        if not (folder / "job.json").exists():
            argv.append("--overwrite")  # a new job: the server's own output file starts empty
        for key, value in sorted(record.get("settings", {}).items()):
            argv += ["-s", f"{key}={value}"]
        for key, value in sorted(record.get("args", {}).items()):
            argv += ["-a", f"{key}={value}"]
        record = {**record, "output": str(output.resolve()), "started": round(time.time(), 3)}
        with open(self.serve_dir / f"{name}.log", "ab") as log:
            log.write(f"--- crawlkit serve started: {' '.join(argv[2:])}\n".encode())
            log.flush()
            # A session of its own: the crawl outlives the server, and a Ctrl-C in the server's
            # terminal does not reach it.
            proc = subprocess.Popen(
                argv,
                cwd=self.project,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._procs[name] = proc
        record["pid"] = proc.pid
        self._write_record(name, record)
        return {"name": name, "pid": proc.pid, "output": record["output"]}

    def stop(self, name: str) -> dict[str, Any]:
        pid = self.running_pid(name)
        if pid is None:
            raise JobError(f"job {name!r} is not running", 409)
        os.kill(pid, signal.SIGTERM)  # a graceful stop: in-flight work finishes, output is committed
        return {"name": name, "pid": pid, "signal": "SIGTERM"}

    def _write_record(self, name: str, record: dict[str, Any]) -> None:
        path = self.serve_dir / f"{name}.json"
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        os.replace(partial, path)

    def _reap(self) -> None:
        for name, proc in list(self._procs.items()):
            code = proc.poll()
            if code is not None:
                del self._procs[name]
                record = self.launch_record(name)
                if record is not None:
                    self._write_record(name, {**record, "exit_code": code})

    def close(self) -> None:
        """Forget the children without stopping them: crawls outlive the server by design."""
        self._reap()
        self._procs.clear()
