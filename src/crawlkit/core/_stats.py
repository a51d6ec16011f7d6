"""Crawl counters and the end-of-crawl summary."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..guards import redact_text

if TYPE_CHECKING:
    from ..frontier import PushResult

__all__ = ["CrawlStats", "JobTotals"]


_START_FAILURES_KEPT = 100
_EXAMPLES_KEPT = 3  # example URLs kept per failure reason, for the report
_REASONS_WITH_EXAMPLES = 50  # bounded: a crawl with endless distinct reasons keeps no more
_START_FAILURES_SHOWN = 5
_CALLBACK_KINDS_SHOWN = 5

# The counts that add up over the runs of one durable job (stop, resume, resume ...).
_SUMMED = (
    "pages",
    "parsed",
    "items",
    "items_dropped",
    "items_failed",
    "requests_queued",
    "duplicates",
    "retries",
    "bytes",
    "pages_failed",
)
_COUNTERS = (
    "failures",
    "filtered",
    "retry_reasons",
    "robots",
    "not_parsed",
    "cache",
    "recrawl",
    "recrawl_skipped",
)


@dataclass
class CrawlStats:
    """Everything counted during a crawl. Failures are counted by reason."""

    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    pages: int = 0  # responses received (any status)
    parsed: int = 0  # responses handed to a callback
    items: int = 0  # items written
    items_dropped: int = 0
    items_failed: int = 0
    requests_queued: int = 0
    duplicates: int = 0
    retries: int = 0
    bytes: int = 0
    pages_failed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    # robots.txt files by outcome (parsed, missing, unavailable, ...); not counted as pages.
    robots: Counter[str] = field(default_factory=Counter)
    # Responses fetched but not given to a callback, by why (binary: an unrequested binary file).
    not_parsed: Counter[str] = field(default_factory=Counter)
    # Pages rendered in the browser; the requests it did not make (browser_block_resources), by
    # resource type; its restarts, by cause (crash, memory). The two counters are the browser's.
    renders: int = 0
    render_blocked: Counter[str] = field(default_factory=Counter)
    browser_restarts: Counter[str] = field(default_factory=Counter)
    # The HTTP cache: hit, miss, stored, not_cached (offline, not stored: also a failure).
    cache: Counter[str] = field(default_factory=Counter)
    # A re-crawl's pages: new, changed, unchanged (not_modified: a 304 among them), gone.
    recrawl: Counter[str] = field(default_factory=Counter)
    # A re-crawl's stored pages treated as unchanged without a request, by rule: pattern, after, lastmod.
    recrawl_skipped: Counter[str] = field(default_factory=Counter)
    # Middlewares and event handlers that raised, by "Class.method": logged, the crawl went on.
    hook_errors: Counter[str] = field(default_factory=Counter)
    # Pages whose callback raised, by callback and exception type ("Shop.parse raised KeyError").
    callback_errors: Counter[str] = field(default_factory=Counter)
    # Responses by host since the progress display last sampled it (None: no display). The
    # display takes it and puts an empty one back, so it holds one sampling window's hosts.
    recent_hosts: Counter[str] | None = None
    # Times the whole process was stopped (SIGSTOP, Ctrl-Z) and for how long in all, seconds.
    pauses: int = 0
    paused_s: float = 0.0
    # The hosts whose adaptive delay rose highest, with that delay (seconds): set at the end.
    throttled_hosts: dict[str, float] = field(default_factory=dict)
    # Blocked answers by what told them (a vendor: cloudflare, datadome; a rule: status_403).
    blocks: Counter[str] = field(default_factory=Counter)
    proxy_errors: int = 0  # attempts the proxy failed (gone again through another)
    captchas_solved: int = 0  # CAPTCHA pages the solver answered with a request
    # Per proxy (redacted URL, requests, successes, blocks, proxy errors, state): set at the end.
    proxies: list[dict[str, object]] = field(default_factory=list)
    sessions: dict[str, Any] = field(default_factory=dict)  # live and retired (by why): at the end
    stop_reason: str = "finished"
    output: str = ""
    # Start URLs that could not be fetched, with why: the first thing to check when a crawl
    # yields nothing. Bounded: a spider with a million start URLs must not keep a million errors.
    start_failures: dict[str, str] = field(default_factory=dict)
    # A few URLs for each failure reason, so a report shows what failed, not only how often.
    failure_examples: dict[str, list[str]] = field(default_factory=dict)
    # The hosts with the highest smoothed response time (seconds), from the host policy.
    slow_hosts: dict[str, float] = field(default_factory=dict)
    # A resumed durable job: its earlier runs' figures, summed (None for a job's first run).
    earlier: JobTotals | None = None

    def job_totals(self) -> JobTotals:
        """This run added to the earlier runs of its job: what the job as a whole did."""
        totals = JobTotals(runs=1, elapsed=self.elapsed)
        for name in _SUMMED:
            setattr(totals, name, getattr(self, name))
        for name in _COUNTERS:
            getattr(totals, name).update(getattr(self, name))
        totals.statuses.update(self.statuses)
        if self.earlier is not None:
            totals.add(self.earlier)
        return totals

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when no page and no item failed."""
        return not self.pages_failed and not self.items_failed

    def fail_page(self, reason: str, url: str = "") -> None:
        self.pages_failed += 1
        self.failures[reason] += 1
        if url:
            examples = self.failure_examples.get(reason)
            if examples is None:
                if len(self.failure_examples) >= _REASONS_WITH_EXAMPLES:
                    return
                examples = self.failure_examples[reason] = []
            if len(examples) < _EXAMPLES_KEPT:
                examples.append(redact_text(url))  # shown in reports and written to files

    def fail_item(self, reason: str, count: int = 1) -> None:
        self.items_failed += count
        self.failures[reason] += count

    def count_push(self, result: PushResult) -> None:
        """Count what a push (or an ack's new links) did: queued, duplicates, over depth_limit."""
        self.requests_queued += result.queued
        self.duplicates += result.duplicates
        if result.over_depth:
            self.filtered["depth"] += result.over_depth

    def start_failed(self, url: str, why: str) -> None:
        """Record a start URL that failed for good (kept for the first 100)."""
        if len(self.start_failures) < _START_FAILURES_KEPT:
            self.start_failures[redact_text(url)] = redact_text(why)  # shown, and written to files

    def write_json(self, path: Path) -> None:
        """Write :meth:`as_dict` to ``path`` as JSON, atomically (a reader never sees half)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")
        os.replace(partial, path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stop_reason": redact_text(self.stop_reason),
            "elapsed_s": round(self.elapsed, 3),
            "pages": self.pages,
            "pages_per_s": round(self.pages_per_second, 1),
            "parsed": self.parsed,
            "items": self.items,
            "items_dropped": self.items_dropped,
            "items_failed": self.items_failed,
            "requests_queued": self.requests_queued,
            "duplicates": self.duplicates,
            "retries": self.retries,
            "retry_reasons": dict(self.retry_reasons),
            "bytes": self.bytes,
            "pages_failed": self.pages_failed,
            "failures": dict(self.failures),
            "filtered": dict(self.filtered),
            "robots": dict(self.robots),
            "not_parsed": dict(self.not_parsed),
            "renders": self.renders,
            "render_blocked": dict(self.render_blocked),
            "browser_restarts": dict(self.browser_restarts),
            "cache": dict(self.cache),
            "recrawl": dict(self.recrawl),
            "recrawl_skipped": dict(self.recrawl_skipped),
            "hook_errors": dict(self.hook_errors),
            "callback_errors": dict(self.callback_errors),
            "pauses": self.pauses,
            "paused_s": round(self.paused_s, 3),
            "throttled_hosts": dict(self.throttled_hosts),
            "blocks": dict(self.blocks),
            "proxy_errors": self.proxy_errors,
            "captchas_solved": self.captchas_solved,
            "proxies": [dict(row) for row in self.proxies],
            "sessions": dict(self.sessions),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "output": self.output,
            "start_failures": dict(self.start_failures),
            "failure_examples": {k: list(v) for k, v in self.failure_examples.items()},
            "slow_hosts": dict(self.slow_hosts),
            **({"job": self.job_totals().as_dict()} if self.earlier is not None else {}),
        }

    def summary(self) -> str:
        """A human-readable end-of-crawl report."""

        def counts(counter: Counter[Any]) -> str:
            return ", ".join(
                f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
            )

        rows = [
            ("stopped because", self.stop_reason),
            ("elapsed", f"{self.elapsed:.2f} s"),
            (
                "pages fetched",
                f"{self.pages} ({self.pages_per_second:.1f} pages/s, {self.bytes / 1e6:.1f} MB)",
            ),
            ("items written", str(self.items)),
            ("requests queued", str(self.requests_queued)),
            ("duplicates skipped", str(self.duplicates)),
            ("retries", f"{self.retries}" + (f" ({counts(self.retry_reasons)})" if self.retries else "")),
            ("status codes", counts(self.statuses) or "-"),
        ]
        if self.items_dropped:
            rows.append(("items dropped", str(self.items_dropped)))
        if self.filtered:
            rows.append(("links not followed", counts(self.filtered)))
        if self.not_parsed:
            rows.append(("responses not parsed", counts(self.not_parsed)))
        if self.robots:
            rows.append(("robots.txt", counts(self.robots)))
        if self.renders or self.browser_restarts:
            blocked = counts(self.render_blocked) or "none"
            restarts = sum(self.browser_restarts.values())
            causes = counts(self.browser_restarts)
            restarted = f", browser restarts: {restarts} ({causes})" if restarts else ""
            rows.append(("pages rendered", f"{self.renders} (requests blocked: {blocked}{restarted})"))
        if self.cache:
            rows.append(("HTTP cache", counts(self.cache)))
        if self.recrawl:
            rows.append(("re-crawl", counts(self.recrawl)))
        if self.recrawl_skipped:
            rows.append(("re-crawl skipped", counts(self.recrawl_skipped)))
        if self.hook_errors:
            rows.append(("hooks that raised", counts(self.hook_errors)))
        if self.blocks:
            rows.append(("blocked answers", counts(self.blocks)))
        if self.proxies:
            rows.append(("proxies", self._proxies_text()))
        if self.sessions:
            retired = self.sessions.get("retired") or {}
            why = ", ".join(f"{k}: {v}" for k, v in sorted(retired.items()))
            rows.append(("sessions", f"{self.sessions.get('live', 0)} live, retired: {why or 'none'}"))
        if self.pauses:
            times = "once" if self.pauses == 1 else f"{self.pauses} times"
            rows.append(("process stopped", f"{times}, {self.paused_s:.1f} s in all"))
        failed = self.pages_failed + self.items_failed
        rows.append(("failures", f"{failed}" + (f" ({counts(self.failures)})" if failed else "")))
        if self.callback_errors:
            rows.append(("callbacks raised", self._callback_errors_text()))
        if self.start_failures:
            rows.append(("start URLs failed", self._start_failures_text()))
        if self.output:
            rows.append(("output", self.output))
        if self.earlier is not None:
            job = self.job_totals()
            rows.append(("whole crawl", job.text()))
        width = max(len(k) for k, _ in rows)
        lines = ["crawl summary" + (" (this run; the whole crawl at the end)" if self.earlier else "")]
        for k, v in rows:
            first, *more = v.split("\n")
            lines.append(f"  {k.ljust(width)}  {first}")
            lines.extend(f"  {''.ljust(width)}  {line}" for line in more)
        return redact_text("\n".join(lines))

    def _proxies_text(self) -> str:
        return "\n".join(
            f"{row['proxy']} ({row['state']}): {row['requests']} requests, {row['successes']} ok, "
            f"{row['blocks']} blocked, {row['proxy_errors']} proxy errors"
            for row in self.proxies
        )

    def _callback_errors_text(self) -> str:
        kinds = self.callback_errors.most_common()
        lines = [f"{count}  {kind}" for kind, count in kinds[:_CALLBACK_KINDS_SHOWN]]
        if len(kinds) > _CALLBACK_KINDS_SHOWN:
            lines.append(f"... and {len(kinds) - _CALLBACK_KINDS_SHOWN} more kinds")
        return "\n".join(lines)

    def _start_failures_text(self) -> str:
        shown = list(self.start_failures.items())[:_START_FAILURES_SHOWN]
        head = str(len(self.start_failures))
        if not self.pages:
            head += " (no page could be fetched: check the URLs, and that the site is up and reachable)"
        lines = [head] + [f"{url}  {why}" for url, why in shown]
        if len(self.start_failures) > len(shown):
            lines.append(f"... and {len(self.start_failures) - len(shown)} more")
        return "\n".join(lines)


@dataclass
class JobTotals:
    """The figures of every run of one durable job, summed; kept in its job directory."""

    runs: int = 0
    elapsed: float = 0.0
    pages: int = 0
    parsed: int = 0
    items: int = 0
    items_dropped: int = 0
    items_failed: int = 0
    requests_queued: int = 0
    duplicates: int = 0
    retries: int = 0
    bytes: int = 0
    pages_failed: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    retry_reasons: Counter[str] = field(default_factory=Counter)
    robots: Counter[str] = field(default_factory=Counter)
    not_parsed: Counter[str] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)
    recrawl: Counter[str] = field(default_factory=Counter)
    recrawl_skipped: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.pages_failed and not self.items_failed

    def add(self, other: JobTotals) -> None:
        self.runs += other.runs
        self.elapsed += other.elapsed
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in (*_COUNTERS, "statuses"):
            getattr(self, name).update(getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"runs": self.runs, "elapsed_s": round(self.elapsed, 3)}
        data.update({name: getattr(self, name) for name in _SUMMED})
        data.update({name: dict(getattr(self, name)) for name in _COUNTERS})
        data["statuses"] = {str(k): v for k, v in sorted(self.statuses.items())}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobTotals:
        """Read :meth:`as_dict`'s output back; what is missing or malformed counts as nothing."""
        totals = cls()
        runs, elapsed = data.get("runs"), data.get("elapsed_s")
        totals.runs = runs if isinstance(runs, int) else 0
        totals.elapsed = float(elapsed) if isinstance(elapsed, int | float) else 0.0
        for name in _SUMMED:
            value = data.get(name)
            if isinstance(value, int):
                setattr(totals, name, value)
        for name in (*_COUNTERS, "statuses"):
            value = data.get(name)
            if isinstance(value, dict):
                counter = getattr(totals, name)
                for key, count in value.items():
                    if isinstance(count, int):
                        counter[int(key) if name == "statuses" and key.isdigit() else key] = count
        return totals

    def text(self) -> str:
        """The summary's lines for the whole job."""
        failed = self.pages_failed + self.items_failed
        failures = ", ".join(f"{k}: {v}" for k, v in sorted(self.failures.items(), key=lambda kv: -kv[1]))
        return "\n".join(
            [
                f"{self.runs} {'run' if self.runs == 1 else 'runs'}, {self.elapsed:.2f} s",
                f"pages fetched {self.pages}, items written {self.items}, "
                f"requests queued {self.requests_queued}",
                f"failures {failed}" + (f" ({failures})" if failed else ""),
            ]
        )
