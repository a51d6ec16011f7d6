"""Proxies: parsed from settings or the environment, and a pool that keeps their health apart.

A proxy's failures are the proxy's, not the site's: a refused connection to the proxy, a 407, a
failed CONNECT tunnel or the proxy's own 502/503 (the classifier's ``proxy_error``) count
against the proxy in :class:`ProxyPool`, never against the host being crawled. A proxy that
fails :attr:`ProxyPool.failures_to_rest` times in a row is rested, for a jittered exponential
time (tenacity's waits, as for retries), then tried again: one more failure rests it longer, a
success makes it whole.

Credentials go to the proxy only, as ``Proxy-Authorization`` (:meth:`Proxy.for_request`): in the
CONNECT request for an https target (aiohttp's ``proxy_headers=``); on the request itself for an
http one, which goes to the proxy, where that hop-by-hop header is consumed. :attr:`Proxy.url`, for
``proxy=``, holds none; ``repr()`` and ``str()`` show them as ``***``.

SOCKS proxies (``socks5://``, ``socks5h://``, ``socks4://``, ``socks4a://``) need the ``socks``
extra (aiohttp-socks): :func:`usable_proxies` says so when it is missing, and refuses SOCKS
credentials the protocol cannot carry. Their connections are opened by ``_socks.py``; their
credentials go in the SOCKS handshake (RFC 1929), never in an HTTP header.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import tenacity

from ..errors import ConfigError, FetchError
from ..guards import redact_text
from ._classify import Label

__all__ = [
    "HTTP_SCHEMES",
    "SOCKS_SCHEMES",
    "EnvProxies",
    "NoProxyAvailable",
    "NoProxyRules",
    "Proxy",
    "ProxyArgs",
    "ProxyPool",
    "ProxyState",
    "parse_proxies",
    "parse_proxy",
    "usable_proxies",
]

HTTP_SCHEMES = ("http", "https")
SOCKS_SCHEMES = ("socks5", "socks5h", "socks4", "socks4a")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080, "socks4": 1080, "socks4a": 1080}


@dataclass(frozen=True, slots=True)
class ProxyArgs:
    """For ``session.request(url, proxy=a.proxy, proxy_headers=a.proxy_headers,
    headers={**headers, **a.headers})``."""

    proxy: str
    proxy_headers: dict[str, str]  # sent in the CONNECT request only
    headers: dict[str, str]  # added to the request's own headers (http targets only)


class NoProxyAvailable(FetchError):
    """Every proxy is resting (or there is none), and none came back before the deadline."""

    reason = "no_proxy"


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy. ``url`` has no credentials; :meth:`for_request` places them for the proxy only."""

    scheme: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """For aiohttp's ``proxy=``: no credentials in it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def url_with_credentials(self) -> str:
        """For a browser context, which takes the credentials with the proxy's address."""
        if self.username is None:
            return self.url
        user = quote(self.username, safe="")
        password = quote(self.password or "", safe="")
        return self.url.replace("://", f"://{user}:{password}@", 1)

    @property
    def for_browser(self) -> str | None:
        """The proxy as headless Chromium takes it, or None where it cannot use it.

        Chromium resolves names at a SOCKS proxy whatever the scheme says (``socks5h`` is not a
        scheme it knows), and cannot authenticate to one (Playwright refuses the credentials).
        """
        if not self.is_socks:
            return self.url_with_credentials
        if self.username is not None:
            return None
        return self.url.replace(self.scheme, "socks5" if self.scheme.startswith("socks5") else "socks4", 1)

    @property
    def credentials(self) -> dict[str, str]:
        """``Proxy-Authorization`` for this proxy (empty without credentials)."""
        if self.username is None:
            return {}
        token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode("ascii")
        return {"Proxy-Authorization": f"Basic {token}"}

    def for_request(self, url: str) -> ProxyArgs:
        """What one aiohttp request (one redirect hop) to ``url`` needs to go through this proxy.

        Call it per hop: the credentials go where the target's scheme needs them, and a hop
        from http to https must not carry them inside the tunnel to the site.
        """
        creds = self.credentials
        if url[:6].lower() == "https:":  # a CONNECT tunnel: the credentials go in the CONNECT
            return ProxyArgs(self.url, creds, {})
        # An http target: the request itself goes to the proxy, which consumes this hop-by-hop
        # header. (aiohttp sends proxy_headers= in a CONNECT only, and deprecates proxy_auth=.)
        return ProxyArgs(self.url, {}, creds)

    @property
    def is_socks(self) -> bool:
        return self.scheme in SOCKS_SCHEMES

    def __str__(self) -> str:
        if self.username is None:
            return self.url
        where = self.url.split("://", 1)[1]
        return redact_text(f"{self.scheme}://{self.username}:{self.password or ''}@{where}")

    def __repr__(self) -> str:
        return f"Proxy({str(self)!r})"


def parse_proxy(text: str) -> Proxy:
    """A proxy from ``[scheme://][user[:password]@]host[:port]`` (no scheme: http, as curl)."""
    raw = text.strip()
    if not raw:
        raise ConfigError("empty proxy URL")
    if "://" not in raw:
        raw = "http://" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"unusable proxy URL {redact_text(text)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        known = ", ".join(f"{s}://" for s in (*HTTP_SCHEMES, *SOCKS_SCHEMES))
        raise ConfigError(f"proxy {redact_text(text)!r}: scheme {scheme!r} is not one of {known}")
    if not parts.hostname:
        raise ConfigError(f"proxy {redact_text(text)!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"proxy {redact_text(text)!r}: a proxy URL has no path, query or fragment")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(scheme, parts.hostname, port or _DEFAULT_PORTS[scheme], username, password)


def parse_proxies(entries: Iterable[str], base_dir: Path | None = None) -> list[Proxy]:
    """The ``proxies`` setting: URLs, or ``@file.txt`` naming a file with one per line.

    In a file, blank lines and lines starting with ``#`` are skipped; a relative path is read
    from ``base_dir`` (default: the working directory). The same proxy twice counts once.
    """
    found: dict[Proxy, None] = {}
    for entry in entries:
        entry = entry.strip()
        if entry.startswith("@"):
            path = Path(entry[1:]).expanduser()
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ConfigError(f"cannot read the proxy list {str(path)!r}: {exc.strerror}") from None
            for number, line in enumerate(lines, 1):
                line = line.strip()
                if line and not line.startswith("#"):
                    try:
                        found.setdefault(parse_proxy(line))
                    except ConfigError as exc:
                        raise ConfigError(f"{path}, line {number}: {exc}") from None
        elif entry:
            found.setdefault(parse_proxy(entry))
    return list(found)


def usable_proxies(proxies: Sequence[Proxy]) -> list[Proxy]:
    """``proxies``, or a :class:`ConfigError` naming those this crawl cannot use.

    A SOCKS proxy needs aiohttp-socks (``pip install "crawlkit[socks]"``); its user name and
    password travel in the SOCKS handshake, which carries at most 255 bytes of each (RFC 1929), and
    which the client library encodes as ASCII.
    """
    socks = [p for p in proxies if p.is_socks]
    if not socks:
        return list(proxies)
    for proxy in socks:
        for what, value in (("user name", proxy.username), ("password", proxy.password)):
            if value is not None and (not value.isascii() or len(value) > 255):
                raise ConfigError(f"proxy {proxy}: a SOCKS {what} must be ASCII and at most 255 characters")
    try:
        import aiohttp_socks  # noqa: F401  (imported here only to tell whether it is installed)
    except ImportError:
        names = ", ".join(str(p) for p in socks[:3])
        raise ConfigError(
            f"SOCKS proxies ({names}) need aiohttp-socks: pip install 'crawlkit[socks]'"
        ) from None
    return list(proxies)


# -- the environment, as curl and requests read it ------------------------------------------------


class NoProxyRules:
    """``NO_PROXY``: hosts reached directly. Comma- or space-separated entries, case-insensitive.

    ``*`` alone matches every host. ``example.com``, ``.example.com`` and ``*.example.com`` match
    the domain and every name under it (curl's reading; requests' too). ``host:port`` matches
    that port only. An IP address matches itself; ``10.0.0.0/8``, ``::1/128`` match a network.
    """

    def __init__(self, value: str) -> None:
        self.everything = False
        self._names: list[tuple[str, int | None]] = []
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in value.replace(",", " ").split():
            entry = entry.strip().lower()
            if entry == "*":
                self.everything = True
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name, port = _split_port(entry)
            self._names.append((name.removeprefix("*").removeprefix("."), port))

    def matches(self, host: str, port: int | None = None) -> bool:
        if self.everything:
            return True
        host = host.lower().strip("[]").rstrip(".")
        if self._networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                if any(address in network for network in self._networks):
                    return True
        for name, want in self._names:
            if want is not None and want != port:
                continue
            if host == name or host.endswith("." + name):
                return True
        return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = entry.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return entry, None


class EnvProxies:
    """The proxies the environment names, chosen per URL as curl and requests choose them.

    ``http_proxy`` for http URLs, ``https_proxy`` for https ones, ``all_proxy`` for either when
    the first is unset; each name in lower case first, then upper case; ``no_proxy`` lists the
    hosts reached directly. Like curl, requests and urllib, ``HTTP_PROXY`` in upper case is not
    read where ``REQUEST_METHOD`` is set: a CGI program gets the client's ``Proxy:`` header there.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._by_scheme: dict[str, Proxy | None] = {}
        for scheme in HTTP_SCHEMES:
            value = _env(env, f"{scheme}_proxy", scheme) or _env(env, "all_proxy", scheme)
            self._by_scheme[scheme] = parse_proxy(value) if value else None
        self.no_proxy = NoProxyRules(env.get("no_proxy") or env.get("NO_PROXY") or "")

    @property
    def any(self) -> bool:
        return any(self._by_scheme.values())

    @property
    def named(self) -> list[Proxy]:
        """Every proxy the environment names (``ALL_PROXY=socks5h://...`` is a common one)."""
        return list(dict.fromkeys(p for p in self._by_scheme.values() if p is not None))

    def for_url(self, url: str) -> Proxy | None:
        """The proxy for ``url``, or None to connect directly."""
        parts = urlsplit(url)
        proxy = self._by_scheme.get(parts.scheme.lower())
        if proxy is None or not parts.hostname:
            return None
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            port = None
        return None if self.no_proxy.matches(parts.hostname, port) else proxy


def _env(env: Mapping[str, str], name: str, scheme: str) -> str:
    lower = env.get(name, "").strip()
    if lower:
        return lower
    if name == "http_proxy" and "REQUEST_METHOD" in env:  # httpoxy: the client's Proxy: header
        return ""
    return env.get(name.upper(), "").strip()


# -- the pool ---------------------------------------------------------------------------------------


class ProxyState(StrEnum):
    READY = "ready"
    RESTING = "resting"


@dataclass(slots=True)
class _Health:
    proxy: Proxy
    requests: int = 0
    successes: int = 0
    blocks: int = 0
    proxy_errors: int = 0
    failures: int = 0  # proxy errors in a row
    rests: int = 0  # rests in a row, without a success between: the next one is longer
    resting_until: float = 0.0


class ProxyPool:
    """Proxies, their health, and which is next. Not thread-safe: one event loop uses it.

    ``pick()`` gives the ready proxy that has served the fewest requests (None if all rest);
    ``acquire()`` waits for one, up to a deadline. ``record()`` takes each attempt's label.
    """

    def __init__(
        self,
        proxies: Sequence[Proxy],
        *,
        failures_to_rest: int = 3,
        rest_base: float = 5.0,
        rest_max: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not proxies:
            raise ConfigError("a proxy pool needs at least one proxy")
        self._health = {p: _Health(p) for p in usable_proxies(proxies)}
        self.failures_to_rest = failures_to_rest
        self._clock = clock
        # base * 2^(rests-1), capped, plus up to one base of jitter, so that proxies that
        # failed together (a provider's outage) do not all come back at the same moment.
        self._rest = tenacity.wait_exponential(multiplier=rest_base, max=rest_max) + tenacity.wait_random(
            0, rest_base
        )

    @property
    def proxies(self) -> list[Proxy]:
        return list(self._health)

    def state(self, proxy: Proxy) -> ProxyState:
        health = self._health[proxy]
        return ProxyState.RESTING if health.resting_until > self._clock() else ProxyState.READY

    def ready(self) -> list[Proxy]:
        """The proxies not resting, least used first."""
        now = self._clock()
        ready = [h for h in self._health.values() if h.resting_until <= now]
        return [h.proxy for h in sorted(ready, key=lambda h: h.requests)]

    def pick(self) -> Proxy | None:
        """The ready proxy that has served the fewest requests, or None if every one rests."""
        now = self._clock()
        ready = [h for h in self._health.values() if h.resting_until <= now]
        if not ready:
            return None
        return min(ready, key=lambda h: h.requests).proxy

    async def acquire(self, wait: float | None = None) -> Proxy:
        """A ready proxy; waits while all rest, at most ``wait`` seconds (None: as long as it takes).

        Raises :class:`NoProxyAvailable` at once when no proxy is back within ``wait``: the
        caller can then defer the request rather than hold a slot.
        """
        deadline = None if wait is None else self._clock() + wait
        while True:
            proxy = self.pick()
            if proxy is not None:
                return proxy
            now = self._clock()
            back = min(h.resting_until for h in self._health.values())
            if deadline is not None and back > deadline:
                raise NoProxyAvailable(
                    f"all {len(self._health)} proxies are resting; the first is back in "
                    f"{back - now:.1f} s, after the {wait:.1f} s allowed"
                )
            await asyncio.sleep(max(0.0, back - now))

    def next_ready_in(self) -> float:
        """Seconds until a proxy is ready (0 if one is now)."""
        now = self._clock()
        return max(0.0, min(h.resting_until for h in self._health.values()) - now)

    def record(self, proxy: Proxy, label: Label | str) -> None:
        """Count one attempt made through ``proxy``; rest it after too many proxy errors."""
        health = self._health.get(proxy)
        if health is None:
            return
        health.requests += 1
        label = Label(label)
        if label is Label.PROXY_ERROR:
            health.proxy_errors += 1
            health.failures += 1
            if health.failures >= self.failures_to_rest:
                health.rests += 1
                state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
                state.attempt_number = health.rests
                health.resting_until = self._clock() + float(self._rest(state))
                # Back from its rest, one more failure rests it again (and longer).
                health.failures = self.failures_to_rest - 1
            return
        if label is Label.NETWORK_ERROR:
            return  # the site did not answer: nothing is known of the proxy
        # An answer came through: the proxy works, whatever the site said.
        health.failures = 0
        health.rests = 0
        if label is Label.BLOCKED:
            health.blocks += 1
        elif label is Label.OK:
            health.successes += 1

    def stats(self) -> list[dict[str, object]]:
        """Per proxy, for the summary: its redacted URL, counts and state."""
        now = self._clock()
        return [
            {
                "proxy": str(h.proxy),
                "state": str(ProxyState.RESTING if h.resting_until > now else ProxyState.READY),
                "requests": h.requests,
                "successes": h.successes,
                "blocks": h.blocks,
                "proxy_errors": h.proxy_errors,
                "resting_for": round(max(0.0, h.resting_until - now), 1),
            }
            for h in self._health.values()
        ]
