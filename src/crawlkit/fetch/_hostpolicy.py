"""How hard each host is hit: per-host rules by glob, delay jitter, adaptive throttling.

``CrawlHostPolicy`` is the ``HostPolicy`` the frontiers consult: ``limits(host)`` once per host
(its concurrency), ``delay(host)`` at every lease (the seconds before the host's next start).
The engine feeds it what happened (``observe``: a response's latency and status) and the robots
cache tells it a host's ``Crawl-delay``; when a host answers 429 or 503, ``observe`` returns how
long the host must rest, and the engine hands that to ``frontier.cooldown()``. A host in
cooldown is therefore a time in the frontier, not a sleeping worker: other hosts go on.

The delay of a host, at each lease, is the largest of:

* its configured delay (``host_rules`` or ``download_delay``), times a random factor in
  0.5-1.5, so that requests to a host do not tick like a clock;
* its robots.txt ``Crawl-delay`` (or ``Request-rate``), never shortened by jitter;
* the adaptive delay, the larger of two parts kept apart:

  - the latency part. While a host answers about as fast as it ever did, it is none: the
    concurrency limit already says how hard the host may be hit, and pacing a healthy host at
    its own rate would only cost throughput. Once its smoothed latency is more than twice its
    best, the host is straining and this part becomes that latency divided by the target
    concurrency. It rises at once and falls by a quarter of the gap per good response.
  - the penalty part, for a 429 or 503 that did not say when to come back (no
    ``Retry-After``): it doubles (to at least one second), once per wave of such answers, and
    each good response takes a quarter of it off.

  The two are never multiplied: a slow host that complains is spaced by the larger of its
  latency and its complaints, not by a complaint doubled on top of its latency, wave after
  wave, up to ``autothrottle_max_delay``.

A 429 or 503 *with* a ``Retry-After`` rests the host for exactly that long (at most
``retry_after_max``) and leaves the adaptive delay as it was: the server said how long it needs,
and adding a raised delay on top would make a two-second rest cost the host a minute of slow
requests afterwards.

A latency measured across a pause of the whole process (SIGSTOP, a debugger: see
``guards/_pauses.py``) is the pause's, not the host's: it is not fed to the adaptive delay, and
neither is a timeout then.

A delay spaces the *starts* of requests; the concurrency limit counts requests in flight. The
two are independent: a 0.2 s delay to a server that takes 2 s to answer still has ten in flight.
"""

from __future__ import annotations

import fnmatch
import heapq
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..frontier import HostLimits
from ..guards import PAUSES, PauseClock

__all__ = ["CrawlHostPolicy", "HostRule", "parse_host_rules"]

_RULE_KEYS = frozenset({"concurrency", "delay"})
_THROTTLE_STATUSES = frozenset({429, 503})
_PENALTY_FLOOR = 1.0  # seconds: the least delay after a 429 or 503
_RECOVERY = 0.25  # the share of the gap to the target delay closed by one good response
_FORGOTTEN = 0.01  # seconds: a penalty this small is gone
_STRAIN = 2.0  # latency over this many times a host's best: the host is straining
_MAX_TRACKED = 65_536  # hosts with throttle state; the oldest are forgotten beyond that
_SLOW_KEEP = 64  # hosts kept above the floor of ``slowest_hosts`` after a prune
_SLOW_MAX = 256  # hosts above the floor before it is raised


@dataclass(frozen=True, slots=True)
class HostRule:
    """One entry of ``host_rules``: a host glob and what it sets (``None``: the default)."""

    pattern: str
    concurrency: int | None
    delay: float | None

    def matches(self, host: str) -> bool:
        return fnmatch.fnmatchcase(host, self.pattern)


def parse_host_rules(raw: Mapping[str, Any]) -> list[HostRule]:
    """Check and parse the ``host_rules`` setting; a ``ConfigError`` names the bad entry."""
    rules = []
    for pattern, spec in raw.items():
        where = f"setting 'host_rules', entry {pattern!r}"
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"setting 'host_rules' has an empty host pattern: {pattern!r}")
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f'{where} must be a table like {{"concurrency": 2, "delay": 1.0}}, got {spec!r}'
            )
        unknown = sorted(set(spec) - _RULE_KEYS)
        if unknown:
            raise ConfigError(f"{where} has unknown key {unknown[0]!r} (known: concurrency, delay)")
        concurrency = spec.get("concurrency")
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ConfigError(f"{where}: 'concurrency' must be an integer of at least 1, got {concurrency!r}")
        delay = spec.get("delay")
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < float("inf")
        ):
            raise ConfigError(f"{where}: 'delay' must be a number of seconds, 0 or more, got {delay!r}")
        rules.append(HostRule(pattern.strip().lower(), concurrency, None if delay is None else float(delay)))
    return rules


@dataclass(slots=True)
class _Throttle:
    delay: float = 0.0  # the latency part of the adaptive delay, seconds
    penalty: float = 0.0  # the part raised by a 429/503 without Retry-After, seconds
    latency: float | None = None  # smoothed latency of good responses, seconds
    best: float = float("inf")  # the lowest smoothed latency seen: the host at ease
    penalized_at: float = float("-inf")  # monotonic time of the last 429/503 that raised the penalty
    peak: float = 0.0  # the highest adaptive delay the host had

    @property
    def adaptive(self) -> float:
        return self.delay if self.delay > self.penalty else self.penalty


class CrawlHostPolicy:
    """The crawl's ``HostPolicy``: rules, jitter, ``Crawl-delay`` and adaptive throttling.

    Built from settings by :meth:`from_settings`. ``clock`` and ``rng`` are there for tests.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        delay: float,
        rules: list[HostRule] | None = None,
        autothrottle: bool = True,
        target_concurrency: float = 0.0,
        max_delay: float = 60.0,
        retry_after_max: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        pauses: PauseClock = PAUSES,
    ) -> None:
        self._default = HostLimits(concurrency, delay)
        self._rules = rules or []
        self._autothrottle = autothrottle
        self._target = target_concurrency
        self._max_delay = max_delay
        self._retry_after_max = retry_after_max
        self._clock = clock
        self._pauses = pauses
        self._uniform = (rng or random.Random()).uniform
        self._limits: dict[str, HostLimits] = {}
        self._throttle: dict[str, _Throttle] = {}
        self._robots_delay: dict[str, float] = {}
        # The candidates of ``slowest_hosts``: exactly the hosts whose smoothed latency is at
        # least ``_slow_floor``, kept up to date by ``observe``, so that the report's sample need
        # not scan every host (10,000 at a sample every 2 s in a many-host crawl).
        self._slow: set[str] = set()
        self._slow_floor = 0.0
        self._slow_keep = _SLOW_KEEP
        self._slow_max = _SLOW_MAX

    @classmethod
    def from_settings(cls, settings: Any) -> CrawlHostPolicy:
        return cls(
            concurrency=settings.concurrency_per_host,
            delay=settings.download_delay,
            rules=parse_host_rules(settings.host_rules),
            autothrottle=settings.autothrottle,
            target_concurrency=settings.autothrottle_target_concurrency,
            max_delay=settings.autothrottle_max_delay,
            retry_after_max=settings.retry_after_max,
        )

    # -- what the frontier asks -------------------------------------------------------------

    def limits(self, host: str) -> HostLimits:
        """The host's concurrency and configured delay: the first matching rule, else the defaults."""
        if not self._rules:
            return self._default  # nothing to remember per host
        found = self._limits.get(host)
        if found is None:
            found = self._default
            for rule in self._rules:
                if rule.matches(host):
                    found = HostLimits(
                        rule.concurrency if rule.concurrency is not None else self._default.concurrency,
                        rule.delay if rule.delay is not None else self._default.delay,
                    )
                    break
            if len(self._limits) >= _MAX_TRACKED:
                self._limits.clear()  # recomputed on demand; a crawl may meet millions of hosts
            self._limits[host] = found
        return found

    def delay(self, host: str) -> float:
        """Seconds before the host's next start may be; asked at each lease of the host."""
        base = self.limits(host).delay
        delay = base * self._uniform(0.5, 1.5) if base else 0.0
        floor = self._robots_delay.get(host)
        if floor is not None and floor > delay:
            delay = floor
        throttle = self._throttle.get(host)
        if throttle is not None:
            adaptive = throttle.adaptive
            if adaptive > delay:
                delay = adaptive
        return delay

    # -- what the crawl tells it ------------------------------------------------------------

    def set_robots_delay(self, host: str, seconds: float | None) -> None:
        """A host's robots.txt ``Crawl-delay`` (or ``Request-rate``): a floor under its delay."""
        if seconds is None or seconds <= 0:
            self._robots_delay.pop(host, None)
            return
        if len(self._robots_delay) >= _MAX_TRACKED:
            self._robots_delay.pop(next(iter(self._robots_delay)))
        self._robots_delay[host] = float(seconds)

    def robots_delay(self, host: str) -> float:
        return self._robots_delay.get(host, 0.0)

    def observe(
        self,
        host: str,
        *,
        started: float,
        latency: float | None,
        status: int | None,
        retry_after: float | None = None,
    ) -> float | None:
        """Learn from one attempt; return the seconds the host must rest, or ``None``.

        ``started`` is when the request started (monotonic), ``latency`` the seconds until its
        response headers came (``None`` if none came), ``status`` its status (``None``: no
        response, a timeout). A 429 or 503 returns a cooldown: its ``Retry-After`` (capped by
        ``retry_after_max``), which leaves the adaptive delay alone, or else the raised penalty.
        """
        if not self._autothrottle:
            return None
        throttle = self._throttle.get(host)
        if throttle is None:
            if len(self._throttle) >= _MAX_TRACKED:
                oldest = next(iter(self._throttle))
                del self._throttle[oldest]
                self._slow.discard(oldest)
            throttle = self._throttle[host] = _Throttle()
        if status in _THROTTLE_STATUSES:
            if retry_after is not None:
                # The server said how long it needs; the rest is that, and no more.
                return min(max(retry_after, 0.0), self._retry_after_max)
            # Requests already in flight when the host first complained say nothing new: only
            # one started after the last raise may raise the penalty again. The penalty doubles
            # itself, never the latency part: the two would compound into the ceiling.
            if started >= throttle.penalized_at:
                throttle.penalty = min(max(throttle.penalty * 2, _PENALTY_FLOOR), self._max_delay)
                throttle.penalized_at = self._clock()
            throttle.peak = max(throttle.peak, throttle.adaptive)
            return min(throttle.penalty, self._retry_after_max)
        if latency is None or self._pauses.spanned(started):
            return None  # no latency, or the process was stopped meanwhile: the host is not slow
        smoothed = throttle.latency
        throttle.latency = smoothed = latency if smoothed is None else (smoothed * 3 + latency) / 4
        if smoothed >= self._slow_floor:
            slow = self._slow
            slow.add(host)
            if len(slow) > self._slow_max:
                self._raise_slow_floor()
        else:
            self._slow.discard(host)
        if status is not None and 200 <= status < 300 and smoothed < throttle.best:
            throttle.best = smoothed
        if smoothed > _STRAIN * throttle.best:
            target = smoothed / (self._target or self.limits(host).concurrency)
        else:
            target = 0.0
        good = status is not None and 200 <= status < 300
        # Only a request started after the last complaint says the host is at ease again.
        if good and throttle.penalty and started >= throttle.penalized_at:
            penalty = throttle.penalty * (1 - _RECOVERY)
            throttle.penalty = penalty if penalty >= _FORGOTTEN else 0.0
        if target >= throttle.delay:
            new = target  # a slower host is given room at once
        else:
            new = throttle.delay - (throttle.delay - target) * _RECOVERY
            if not good:
                return None  # error pages come fast: they must not speed the host up
        throttle.delay = min(new, self._max_delay)
        if throttle.delay > throttle.peak:
            throttle.peak = throttle.delay
        return None

    def throttled_hosts(self, n: int) -> dict[str, float]:
        """The ``n`` hosts whose adaptive delay rose highest, with that delay (for the stats)."""
        peaks = ((host, t.peak) for host, t in self._throttle.items() if t.peak > 0)
        return {host: round(peak, 3) for host, peak in heapq.nlargest(n, peaks, key=lambda p: p[1])}

    def slowest_hosts(self, n: int) -> dict[str, float]:
        """The ``n`` hosts with the highest smoothed latency, seconds (for the crawl report).

        Known only with ``autothrottle`` on: the latency is measured for the throttle. Every
        host outside the candidates is faster than each of them, so ``n`` candidates are the
        answer; with fewer (their latencies fell), every host is looked at once more.
        """
        throttle = self._throttle
        if len(self._slow) < n and self._slow_floor > 0:
            self._slow_keep = max(self._slow_keep, n)
            self._slow_floor = 0.0
            self._slow = {host for host, t in throttle.items() if t.latency is not None}
            self._raise_slow_floor()
        slow = [(host, throttle[host].latency or 0.0) for host in self._slow]
        return {host: round(lat, 3) for host, lat in heapq.nlargest(n, slow, key=lambda p: p[1])}

    def _raise_slow_floor(self) -> None:
        """Keep the ``_slow_keep`` slowest candidates (and their ties), the floor at the last."""
        if len(self._slow) <= self._slow_keep:
            return
        throttle = self._throttle
        latencies = heapq.nlargest(self._slow_keep, (throttle[host].latency or 0.0 for host in self._slow))
        floor = self._slow_floor = latencies[-1]
        self._slow = {host for host in self._slow if (throttle[host].latency or 0.0) >= floor}
        # Many hosts tied at the floor stay: the next prune waits until they have doubled.
        self._slow_max = max(_SLOW_MAX, self._slow_keep, 2 * len(self._slow))

    def throttle_delay(self, host: str) -> float:
        """The adaptive part of a host's delay (for tests and the docs' examples)."""
        throttle = self._throttle.get(host)
        return throttle.adaptive if throttle is not None else 0.0
