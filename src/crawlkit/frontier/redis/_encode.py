"""Requests into the arguments of the Redis frontier's push: what a worker decides locally.

Each request becomes eight arguments (see ``_lua.py``'s ``push``): its seen-set shard and
field, its host, priority, the pickled request, its host's concurrency and delay from the
worker's host policy, and its callback (whose turn it takes). Requests over the depth limit, and
fingerprints this worker has already sent (the seen set only grows, so a fingerprint once in it
stays there), never leave the process.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

from ...http import Request, host_of, origin_of
from .._base import HostLimits, HostPolicy, PushResult, host_policy_functions

__all__ = ["RequestEncoder"]

_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL
_KNOWN_GENERATION = 100_000  # fingerprints remembered per generation (two generations)
_CACHE = 50_000  # hosts whose names and limits are cached


class RequestEncoder:
    """Turns requests into push arguments; ``set_shards()`` once the job's shard count is known."""

    def __init__(self, host_limits: HostPolicy | Callable[[str], HostLimits], depth_limit: int = 0) -> None:
        self._limits_for, self._delay_for = host_policy_functions(host_limits)
        self._depth_limit = depth_limit
        self._shift = 24
        self._skip = 0
        self._limits: dict[str, HostLimits] = {}
        self._hosts: dict[str, str] = {}  # URL scheme and authority -> host
        self._known: set[bytes] = set()
        self._known_old: set[bytes] = set()

    def set_shards(self, shards: int) -> None:
        """A fingerprint's first log2(shards) bits pick its shard; the rest of it is the field."""
        bits = max(0, shards.bit_length() - 1)
        self._shift, self._skip = 24 - bits, bits // 8

    def host(self, url: str) -> str:
        """``host_of(url)``, cached by the URL's scheme and authority."""
        authority = origin_of(url)
        host = self._hosts.get(authority)
        if host is None:
            host = host_of(url)
            if len(self._hosts) >= _CACHE:
                self._hosts.clear()
            self._hosts[authority] = host
        return host

    def limits(self, host: str) -> HostLimits:
        limits = self._limits.get(host)
        if limits is None:
            limits = self._limits_for(host)
            if len(self._limits) >= _CACHE:
                self._limits.clear()
            self._limits[host] = limits
        return limits

    def delay(self, host: str) -> float:
        return self.limits(host).delay if self._delay_for is None else self._delay_for(host)

    def current_delay(self, host: str) -> str:
        """The host's delay now, for an ack ('' if the policy has no delay of its own)."""
        return repr(float(self._delay_for(host))) if self._delay_for is not None else ""

    def push_args(
        self,
        requests: Sequence[Request],
        result: PushResult,
        args: list[Any],
        deferred: list[Request] | None = None,
    ) -> int:
        """Append the push arguments of ``requests`` to ``args``; return how many were added.

        ``dont_filter`` requests go to ``deferred`` instead, if it is given, counted as queued.
        """
        limit = self._depth_limit
        count = 0
        for request in requests:
            if limit and request.depth > limit:
                result.over_depth += 1
                continue
            if request.dont_filter:
                if deferred is not None:
                    deferred.append(request)
                    result.queued += 1
                    continue
                shard, field = b"", b""
            else:
                fp = request.fingerprint
                if fp in self._known or fp in self._known_old:
                    result.duplicates += 1
                    continue
                self._known.add(fp)
                if len(self._known) >= _KNOWN_GENERATION:
                    self._known_old, self._known = self._known, set()
                shard = b"%x" % (int.from_bytes(fp[:3], "big") >> self._shift)
                field = fp[self._skip :]
            host = self.host(request.url)
            args += (
                shard,
                field,
                host,
                request.priority,
                pickle.dumps(request, _PICKLE_PROTOCOL),
                self.limits(host).concurrency,
                repr(float(self.delay(host))),
                request.callback or "parse",
            )
            count += 1
        return count
