"""The politeness gate a request passes before it is fetched: robots.txt, throttle feedback.

robots.txt is fetched once per origin (scheme, host, port), by one task, whatever the number of
workers that want it; they all wait for that one fetch. Parsed with protego and matched against
our product token (``robots_user_agent``, else the first word of ``user_agent``), it is kept for
the rest of the crawl in two forms: the parsers of the 1,024 origins met last (a protego parser
of even a three-line file takes 1.6 KB, and a crawl of 10,000 hosts held 10,000 of them), and
the text of every file, compressed, for the 100,000 origins met last (a few hundred bytes each).
An origin whose parser was dropped is parsed again from its text, with its ``Crawl-delay``, and
is never fetched again: a host's rules hold however long it was idle. What it says:

* 2xx: its rules are obeyed; its ``Crawl-delay`` (or ``Request-rate``) becomes a floor under
  the host's delay.
* 4xx (but 429), too many redirects: there is no robots.txt; everything is allowed.
* 5xx, 429, no connection, a timeout: tried again twice (backoff ``retry_backoff_base``, then
  twice that), then everything is allowed. RFC 9309 would have a crawler assume "disallow all"
  and wait, for up to 30 days; a crawl lasts minutes or hours, so waiting means giving the host
  up, and the pages of a server that fails its robots.txt mostly fail too (and are counted).
  Per-host concurrency, delay and adaptive throttling still hold that host back. See
  docs/politeness.md.

A host whose robots.txt has a ``Crawl-delay`` may already have several requests leased when
the file arrives (the frontier leased them before the delay was known): the first goes ahead,
the others are handed back to the frontier (``defer``) and come back one delay apart.

Robots fetches are not pages: they are counted in ``stats.robots`` only.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from protego import Protego

from ..errors import FetchError, RedirectError, TransportError
from ..http import OffsiteFilter, Request, decode_body
from ..parsing import filter_reason
from ._hostpolicy import CrawlHostPolicy
from ._proxies import NoProxyAvailable
from ._retry import parse_retry_after

if TYPE_CHECKING:
    from ..core import CrawlStats
    from ..frontier import Frontier
    from ..settings import Settings
    from ._client import Fetched, HopCheck

__all__ = ["DEFER", "DISALLOWED", "NO_PROXY", "Politeness", "robots_token"]

log = logging.getLogger("crawlkit.politeness")

DISALLOWED = "robots"  # the gate's answer for a request robots.txt forbids (and its stats key)
DEFER = "defer"  # the gate's answer for a request to hand back to the frontier unstarted
# The gate's answer when robots.txt could not be asked for because every proxy rests and the
# crawl stops then (on_no_proxy = "stop"): the request goes back unstarted and the crawl stops.
NO_PROXY = "no_proxy"

_ROBOTS_ATTEMPTS = 3
_ROBOTS_MAX_BYTES = 500 * 1024  # Google reads the first 500 KiB; so do we
_PARSED_KEPT = 1_024  # origins whose parsed robots.txt stays in memory
_MAX_ORIGINS = 100_000  # origins whose robots.txt text is kept, compressed, to parse again
_ORIGINS_CACHED = 4_096  # URL authorities whose (origin, host) is kept
_PARSE_INLINE = 16 * 1024  # a robots.txt this small (as sent, or as kept) is parsed on the event loop
_ORIGIN_KEY = re.compile(r"[^:/?#]*://[^/?#]*")  # scheme://authority, as the URL spells them


class RobotsFetcher(Protocol):
    """What robots.txt is fetched with: the crawl's ``Fetcher``, or the HTTP cache in front of it."""

    async def fetch(self, request: Request, hop_check: HopCheck | None = None) -> Fetched: ...


def robots_token(settings: Settings) -> str:
    """The name we answer to in robots.txt: ``robots_user_agent``, or ``user_agent``'s product token."""
    if settings.robots_user_agent.strip():
        return settings.robots_user_agent.strip()
    token = re.split(r"[/\s;(]", settings.user_agent.strip(), maxsplit=1)[0]
    return token or "*"


@dataclass(slots=True)
class _Robots:
    parser: Protego | None  # None: everything is allowed
    delay: float  # Crawl-delay or the Request-rate interval, seconds (0: none)
    claimed: bool = False  # whether a request that waited for this file has gone ahead
    text: bytes | None = None  # the file, zlib-compressed, to parse again (None: allow everything)
    fetched: bool = True  # fetched just now, not parsed again from its kept text
    dropped: bool = False  # its parser left memory: parse the kept text again before use


def _pack(text: str) -> bytes:
    """robots.txt compressed to keep: a small window and hash table (4 KiB, 2 KiB).

    zlib's defaults clear about 256 KiB of state before compressing anything: 50 µs for the usual
    hundred-byte file, once per host. These settings take 3 µs, and a 25 KB file still shrinks as
    well (``zlib.decompress`` reads any window size).
    """
    packer = zlib.compressobj(6, zlib.DEFLATED, 12, 2)
    return packer.compress(text.encode("utf-8")) + packer.flush()


def _drop(robots: _Robots) -> None:
    """Let a parser leaving memory be freed now, not at the next full garbage collection.

    A protego parser and its rule sets refer to each other, and a parser lives long enough to
    reach the oldest generation, which the crawl's tuned collector visits rarely: a crawl of
    3,000 hosts held 2,000 dropped parsers. Breaking the cycle lets reference counting free it.
    """
    robots.dropped = True
    parser, robots.parser = robots.parser, None
    if parser is not None:
        for rule_set in getattr(parser, "_user_agents", {}).values():
            rule_set._parser_instance = None


# robots.txt not asked for (every proxy rests): not known, so never remembered as "allow all".
_NO_PROXY_ROBOTS = _Robots(None, 0.0)


class Politeness:
    """robots.txt, redirect checks and throttle feedback for one crawl.

    ``gate(request)`` says whether a request may be fetched now; ``check_hop(url)`` whether a
    redirect may lead to ``url``; ``observe(...)`` passes a response to the host policy and
    applies the cooldown it asks for. ``attach(fetcher)`` before use, ``close()`` after.
    """

    def __init__(
        self,
        settings: Settings,
        policy: CrawlHostPolicy,
        frontier: Frontier,
        stats: CrawlStats,
        allowed_domains: Iterable[str] | str = (),
    ) -> None:
        self.obey_robots = settings.obey_robots
        self._policy = policy
        self._frontier = frontier
        self._stats = stats
        self._token = robots_token(settings)
        self._backoff = settings.retry_backoff_base
        self._max_size = settings.max_response_size or (1 << 62)
        self._offsite = OffsiteFilter(allowed_domains)
        self._fetcher: RobotsFetcher | None = None
        self._fetch: Callable[[Request], Awaitable[Fetched]] | None = None
        self._robots: dict[str, _Robots] = {}  # parsed, the _PARSED_KEPT origins met last
        self._texts: dict[str, bytes | None] = {}  # every origin's kept text, up to _MAX_ORIGINS
        self._pending: dict[str, asyncio.Future[_Robots]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._origins: dict[str, tuple[str, str]] = {}  # "scheme://authority" -> (origin, host)
        self._last_origin: tuple[str, tuple[str, str]] = ("", ("", ""))  # the last key looked up

    def attach(
        self, fetcher: RobotsFetcher, fetch: Callable[[Request], Awaitable[Fetched]] | None = None
    ) -> None:
        """Fetch robots.txt files with ``fetch`` (the downloader's: through the crawl's proxies),
        else with ``fetcher`` directly."""
        self._fetcher = fetcher
        self._fetch = fetch

    async def close(self) -> None:
        """Cancel robots.txt fetches still running (a stop); their waiters are allowed through."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the gate ---------------------------------------------------------------------------

    async def gate(self, request: Request) -> str | None:
        """``None``: fetch it; ``DISALLOWED``: robots.txt forbids it; ``DEFER``: hand it back."""
        if not self.obey_robots or request.meta.get("dont_obey_robots"):
            return None
        origin, host = self._origin(request.url)
        robots = self._robots.get(origin)
        waited = robots is None
        if robots is None:
            robots = await self._wait_for(origin, host)
        if robots is _NO_PROXY_ROBOTS:
            return NO_PROXY
        if robots.parser is not None and not robots.parser.can_fetch(request.url, self._token):
            return DISALLOWED
        if waited and robots.delay > 0 and robots.fetched:
            if robots.claimed:
                return DEFER
            robots.claimed = True
        return None

    async def check_hop(self, url: str) -> str | None:
        """Why a redirect may not lead to ``url`` (``offsite_redirect``, ...), or ``None``."""
        reason = filter_reason(self._offsite, Request(url, dont_filter=True))
        if reason is not None:
            return f"{reason}_redirect"
        if self.obey_robots:
            origin, host = self._origin(url)
            robots = self._robots.get(origin) or await self._wait_for(origin, host)
            if robots.parser is not None and not robots.parser.can_fetch(url, self._token):
                return f"{DISALLOWED}_redirect"
        return None

    def _origin(self, url: str) -> tuple[str, str]:
        # Asked twice a page (the gate, then observe()), and a crawl's pages mostly share their
        # origin with the page before: the last key is tried first, with no new string made.
        last, last_found = self._last_origin
        if last and url.startswith(last) and (len(url) == len(last) or url[len(last)] in "/?#"):
            return last_found
        # With many hosts taking turns the last key rarely fits: one match, no new string joined.
        match = _ORIGIN_KEY.match(url)
        key = match.group() if match else url
        found = self._origins.get(key)
        if found is None:
            from yarl import URL

            parsed = URL(url)
            found = (str(parsed.origin()), parsed.host or "")
            if len(self._origins) >= _ORIGINS_CACHED:
                self._origins.clear()
            self._origins[key] = found
        self._last_origin = (key, found)
        return found

    # -- robots.txt -------------------------------------------------------------------------

    async def _wait_for(self, origin: str, host: str) -> _Robots:
        future = self._pending.get(origin)
        if future is None:
            future = self._pending[origin] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._load(origin, host, future), name=f"robots {origin}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # shield: a waiter cancelled (a forced stop) must not cancel the fetch others wait for.
        robots = await asyncio.shield(future)
        if robots.dropped:  # a thousand other origins came in before this waiter woke
            return await self._wait_for(origin, host)
        return robots

    async def _load(self, origin: str, host: str, future: asyncio.Future[_Robots]) -> None:
        robots = _Robots(None, 0.0)
        try:
            if origin in self._texts:
                robots = await self._parse_again(self._texts[origin])
            else:
                robots = await self._fetch_robots(origin)
        except asyncio.CancelledError:
            self._stats.robots["cancelled"] += 1
            raise
        except Exception:  # a bug of ours must not block the host's requests forever
            log.exception("reading robots.txt of %s failed; allowing everything", origin)
            self._stats.robots["error"] += 1
        finally:
            if robots is not _NO_PROXY_ROBOTS:  # asked again when a proxy is back
                self._keep(origin, robots)
            self._pending.pop(origin, None)
            if not future.done():
                future.set_result(robots)
        if robots.delay > 0:
            # Again after a parse from the kept text: the host policy may have forgotten it.
            self._policy.set_robots_delay(host, robots.delay)
            if robots.fetched:
                # From now: the request that goes ahead starts now, the next one a delay later.
                self._cooldown(host, robots.delay)

    def _keep(self, origin: str, robots: _Robots) -> None:
        """Keep the parser among the last origins met, and the text of the file for longer."""
        if len(self._robots) >= _PARSED_KEPT:
            _drop(self._robots.pop(next(iter(self._robots))))
        self._robots[origin] = robots
        if origin not in self._texts:
            if len(self._texts) >= _MAX_ORIGINS:
                self._texts.pop(next(iter(self._texts)))
            self._texts[origin] = robots.text

    async def _parse_again(self, text: bytes | None) -> _Robots:
        """An origin's robots.txt parsed from its kept text; a large one in a thread."""
        if text is None:
            robots = _Robots(None, 0.0)
        elif len(text) <= _PARSE_INLINE:
            robots = self._parse_text(zlib.decompress(text).decode("utf-8"), text)
        else:
            robots = await asyncio.to_thread(self._parse_text, zlib.decompress(text).decode("utf-8"), text)
        robots.fetched = False
        self._stats.robots["parsed_again"] += 1
        return robots

    async def _fetch_robots(self, origin: str) -> _Robots:
        assert self._fetcher is not None, "Politeness.attach(fetcher) first"
        url = f"{origin}/robots.txt"
        why = ""
        for attempt in range(_ROBOTS_ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                robots_request = Request(url, dont_filter=True, meta={"allow_binary": True})
                if self._fetch is not None:
                    fetched = await self._fetch(robots_request)
                else:
                    fetched = await self._fetcher.fetch(robots_request)
            except NoProxyAvailable:
                return _NO_PROXY_ROBOTS  # only with on_no_proxy = "stop": the crawl stops
            except RedirectError as exc:
                log.info("robots.txt of %s: %s; allowing everything", origin, exc)
                self._stats.robots["redirects"] += 1
                return _Robots(None, 0.0)
            except FetchError as exc:
                why = f"{exc.reason}: {exc}"
                if isinstance(exc, TransportError):
                    continue  # no connection, a timeout: maybe better in a moment
                break
            status = fetched.status
            try:
                if 200 <= status < 300:
                    if len(fetched.body) <= _PARSE_INLINE:
                        robots = self._parse(fetched)  # the common small file: no thread hop
                    else:
                        robots = await asyncio.to_thread(self._parse, fetched)
                    self._stats.robots["parsed"] += 1
                    return robots
            finally:
                if fetched.hold is not None:
                    fetched.hold.release()  # the body's room in the in-flight byte budget
            if status == 429 or status >= 500:
                why = f"HTTP {status}"
                continue
            self._stats.robots["missing"] += 1  # 3xx left over, 4xx: no rules
            return _Robots(None, 0.0)
        log.warning(
            "robots.txt of %s unavailable (%s); crawling the host as if it allowed everything",
            origin,
            why,
        )
        self._stats.robots["unavailable"] += 1
        return _Robots(None, 0.0)

    def _parse(self, fetched: Fetched) -> _Robots:
        """Decode and parse a robots.txt (a large one in a thread: it may inflate to 500 KiB)."""
        body = decode_body(fetched.body, fetched.content_encoding, self._max_size)[:_ROBOTS_MAX_BYTES]
        text = body.decode("utf-8", errors="replace")
        return self._parse_text(text, _pack(text))

    def _parse_text(self, text: str, packed: bytes) -> _Robots:
        parser = Protego.parse(text)
        delay = parser.crawl_delay(self._token) or 0.0
        rate = parser.request_rate(self._token)
        if rate is not None and rate.requests > 0:
            delay = max(delay, rate.seconds / rate.requests)
        return _Robots(parser, float(delay), text=packed)

    # -- throttle feedback ------------------------------------------------------------------

    def observe(
        self, request: Request, started: float, latency: float | None, status: int | None, headers: Any = ()
    ) -> None:
        """Tell the host policy how an attempt went; put the host in cooldown if it asks."""
        _, host = self._origin(request.url)
        if status is not None:
            recent = self._stats.recent_hosts  # sampled (and renewed) by the progress display
            if recent is not None:
                recent[host] += 1
        retry_after = None
        if status in (429, 503):
            for key, value in headers:
                if key.lower() == "retry-after":
                    retry_after = parse_retry_after(value)
                    break
        rest = self._policy.observe(
            host, started=started, latency=latency, status=status, retry_after=retry_after
        )
        if rest:
            log.info("%s answered %s: no request to it for %.1f s", host, status, rest)
            self._cooldown(host, rest)

    def _cooldown(self, host: str, seconds: float) -> None:
        # A frontier of a backend that cannot hold a host back still gets the jittered and
        # adaptive delays through the host policy; only the one-off rest is lost.
        cooldown = getattr(self._frontier, "cooldown", None)
        if cooldown is not None:
            cooldown(host, seconds)
