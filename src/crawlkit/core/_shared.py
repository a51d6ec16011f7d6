"""Shared (Redis) crawls around the frontier: worker set-up, the merged export, and reset.

A worker of a shared crawl writes its items to its own part, ``OUTPUT_DIR/part-WORKER.jsonl``,
and records in Redis how far that part is committed. ``export_job`` concatenates every part up
to its committed offset: bytes a worker wrote but never committed (it was killed, or lost its
leases) are not in the merged output, and the work behind them was redone by some worker.

``reset_job`` is the only thing that deletes a job's shared state; it refuses while workers
hold their ids (they are alive), unless forced.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..errors import ConfigError, ExportError

try:
    import redis
except ImportError as exc:  # pragma: no cover - redis-py is an optional dependency
    raise ConfigError("a Redis frontier needs redis-py: pip install 'crawlkit[redis]'") from exc

from ..frontier import SharedCrawlWorker
from ..frontier.redis import job_prefix, safe_url
from ..settings import Settings

__all__ = [
    "JobStatus",
    "MergeReport",
    "check_job_name",
    "default_worker_id",
    "export_job",
    "is_redis_url",
    "job_status",
    "part_path",
    "reset_job",
    "shared_worker",
]

_WORKER_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
_JOB_NAME = re.compile(r"[A-Za-z0-9._:-]{1,200}")  # no braces: the name is a cluster hash tag
_CHUNK = 1 << 20


def check_job_name(job: str) -> str:
    if not _JOB_NAME.fullmatch(job):
        raise ConfigError(f"a job name must be 1-200 letters, digits, '.', '_', ':' or '-', got {job!r}")
    return job


def is_redis_url(value: str) -> bool:
    return value.startswith(("redis://", "rediss://", "unix://"))


def default_worker_id() -> str:
    """``HOST-PID``: unique among live processes, so workers need no configuration."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def part_path(output_dir: Path, worker_id: str) -> Path:
    return output_dir / f"part-{worker_id}.jsonl"


def _check_output(settings: Settings, output_dir: Path) -> None:
    if (
        settings.output_format.lower() not in ("", "jsonl")
        or settings.output_gzip
        or settings.max_items_per_file
    ):
        raise ConfigError(
            "a shared (Redis) crawl writes JSON lines parts only: drop output_format, "
            "output_gzip and max_items_per_file, and convert the merged export instead"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(
            f"with a Redis frontier, -o names a folder for the workers' parts, and {output_dir} is a file"
        )


def shared_worker(
    settings: Settings,
    spider_name: str,
    output_dir: Path,
    *,
    mode: str | None = None,
    fresh: bool = False,
) -> SharedCrawlWorker:
    """This process's place in a shared crawl: its job, its worker id, and the part it writes.

    With ``fresh``, the job's shared state is deleted first (refused while workers run).
    """
    if mode == "append":
        raise ConfigError("--append does not apply to a shared crawl: each worker owns its part")
    _check_output(settings, output_dir)
    worker = settings.worker_id or default_worker_id()
    if not _WORKER_ID.fullmatch(worker):
        raise ConfigError(f"worker_id must be 1-100 letters, digits, '.', '_' or '-', got {worker!r}")
    job = check_job_name(settings.job_name or spider_name)
    if fresh:
        reset_job(settings.frontier, job)
    return SharedCrawlWorker(job, worker, part_path(output_dir, worker))


def _client(url: str) -> redis.Redis:
    client: redis.Redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        raise ConfigError(f"cannot reach Redis at {safe_url(url)}: {exc}") from exc
    return client


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _live_workers(client: redis.Redis, prefix: str) -> list[str]:
    workers = sorted(_text(w) for w in client.smembers(prefix + "workers"))
    return [w for w in workers if client.exists(f"{prefix}owner:{w}")]


def reset_job(url: str, job: str, *, force: bool = False) -> int:
    """Delete every key of a job; return how many. Refused while a worker runs, unless ``force``."""
    client = _client(url)
    try:
        prefix = job_prefix(check_job_name(job))
        live = _live_workers(client, prefix)
        if live and not force:
            raise ConfigError(
                f"job {job!r} has {len(live)} running worker(s) ({', '.join(live[:5])}); "
                "stop them first (a worker that died frees its id within lease_ttl)"
            )
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=_escape_glob(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
        return deleted
    finally:
        client.close()


@dataclass
class JobStatus:
    """A shared crawl as Redis sees it: its counters, and each worker's part and committed offset."""

    exists: bool
    pending: int = 0
    leased: int = 0
    seen: int = 0
    done: int = 0
    failed: int = 0
    seeded: bool = False
    # worker -> (its part file, if it recorded one; its committed offset in it)
    parts: dict[str, tuple[Path | None, int]] = field(default_factory=dict)
    live: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.exists and self.seeded and self.pending == 0 and self.leased == 0


def job_status(url: str, job: str) -> JobStatus:
    client = _client(url)
    try:
        prefix = job_prefix(check_job_name(job))
        meta = client.hgetall(prefix + "meta")
        if not meta:
            return JobStatus(exists=False)

        def count(name: str) -> int:
            return int(meta.get(name.encode(), b"0"))

        status = JobStatus(
            exists=True,
            pending=count("pending"),
            leased=count("leased"),
            seen=count("seen"),
            done=count("done"),
            failed=count("failed"),
            seeded=meta.get(b"seeded") == b"1",
            live=_live_workers(client, prefix),
        )
        for worker in sorted(_text(w) for w in client.smembers(prefix + "workers")):
            part, offset = client.hmget(f"{prefix}w:{worker}", "part", "offset")
            status.parts[worker] = (Path(_text(part)) if part else None, int(offset or 0))
        return status
    finally:
        client.close()


@dataclass
class MergeReport:
    parts: int
    lines: int
    bytes: int
    status: JobStatus


def export_job(url: str, job: str, output: Path, parts_dir: Path | None = None) -> MergeReport:
    """Write the committed part of every worker's output, in worker order, to ``output``.

    ``parts_dir`` finds the parts in another folder than the one the workers recorded (parts
    copied from other machines). The output is written whole, then moved into place.
    """
    status = job_status(url, job)
    if not status.exists:
        raise ConfigError(f"there is no job {job!r} in Redis at {safe_url(url)}")
    tmp = output.with_name(output.name + ".tmp")
    lines = size = parts = 0
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            for worker, (recorded, offset) in status.parts.items():
                if offset == 0:
                    continue
                if recorded is None:
                    raise ConfigError(f"worker {worker!r} committed {offset} bytes but recorded no part file")
                path = parts_dir / recorded.name if parts_dir is not None else recorded
                lines += _copy_part(path, offset, out, worker)
                size += offset
                parts += 1
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"cannot write {output}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return MergeReport(parts=parts, lines=lines, bytes=size, status=status)


def _copy_part(path: Path, offset: int, out: BinaryIO, worker: str) -> int:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise ConfigError(
            f"part {path} of worker {worker!r} is missing ({offset} bytes were committed); "
            "copy it here or pass --parts DIR"
        ) from None
    lines = 0
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size < offset:
            raise ConfigError(
                f"part {path} of worker {worker!r} holds {size} bytes but {offset} were committed: "
                "it was changed outside crawlkit"
            )
        left = offset
        last = b""
        while left:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:  # pragma: no cover - the size was checked
                break
            out.write(chunk)
            lines += chunk.count(b"\n")
            left -= len(chunk)
            last = chunk
        if last and not last.endswith(b"\n"):
            raise ConfigError(
                f"part {path} of worker {worker!r} does not end its committed part with a newline"
            )
    return lines
