"""Where the fetch API may go: public http(s) addresses only, checked at every hop and pinned.

A fetch API on a machine inside a network is a way in (SSRF): ``url=http://169.254.169.254/``
reads the cloud's metadata, ``http://127.0.0.1:6379/`` talks to a local Redis. So:

* the URL is parsed as browsers parse it (WHATWG, ada-url), which turns every IPv4 spelling
  (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``) into its dotted form, and IPv6
  (``[::ffff:127.0.0.1]``) into its canonical one; only http and https pass;
* an address is refused unless it is global unicast: loopback, private, link-local (the cloud
  metadata address), unique-local, CGNAT (100.64/10), unspecified, multicast, reserved, and IPv6
  forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that address;
* a host name is resolved, and refused if any answer is refused;
* the connection itself resolves through ``VettingResolver``, which answers only vetted
  addresses, so a name that changes its answer between the check and the connection (DNS
  rebinding) still cannot reach a refused address;
* every redirect hop is checked the same way (the downloader's ``hop_check``).

``NetGuard(public=...)`` names networks to take as public although they are not: tests stand a
"public" site on a second loopback address (127.0.0.2) beside a private one (127.0.0.1). The
command line has no way to set it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import ada_url
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

__all__ = ["AddressRefused", "NetGuard", "VettingResolver", "address_problem"]

_SCHEMES = ("http:", "https:")
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(Exception):
    """A target the fetch API will not fetch; the message says why."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be fetched (``loopback``, ``private``, ...), or ``None``."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            problem = address_problem(inner)
            return f"{problem} (in {ip})" if problem else None
        if ip.is_site_local or ip in ipaddress.ip_network("fc00::/7"):
            return "unique-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "CGNAT"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class VettingResolver(AbstractResolver):
    """aiohttp's resolver, answering only the addresses ``address_problem`` allows."""

    def __init__(self, public: Iterable[IPNetwork] = ()) -> None:
        self._inner = DefaultResolver()
        self._public = tuple(public)

    def problem(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be fetched, or ``None`` (``address_problem``, save the ``public``)."""
        if any(ip in network for network in self._public):
            return None
        return address_problem(ip)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        refused = [a for a in answers if self.problem(ipaddress.ip_address(a["host"]))]
        if refused:
            # Any refused answer refuses the name: a name that mixes a public and a private
            # address is built to slip through.
            bad = refused[0]["host"]
            raise AddressRefused(
                f"{host} resolves to {bad}, a {self.problem(ipaddress.ip_address(bad))} address"
            )
        return answers

    async def close(self) -> None:
        await self._inner.close()


class NetGuard:
    """The fetch API's checks; with ``allow_private`` only the scheme is checked."""

    def __init__(self, *, allow_private: bool, public: Iterable[IPNetwork] = ()) -> None:
        self.allow_private = allow_private
        self.resolver: VettingResolver | None = None if allow_private else VettingResolver(public)

    async def addresses(self, host: str, port: int) -> list[str]:
        """The vetted addresses to connect to for ``host``, or raise ``AddressRefused``.

        For a connection made on the guard's word (the browser's forwarder): it connects to one
        of these, and never resolves the name again."""
        if self.resolver is None:
            raise AddressRefused("no guard: the server runs with --allow-private")
        ip = _literal(host)
        if ip is not None:
            problem = self.resolver.problem(ip)
            if problem:
                raise AddressRefused(f"{host} is a {problem} address")
            return [str(ip)]
        try:
            answers = await self.resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            raise AddressRefused(f"cannot resolve {host}: {exc}") from None
        return [str(answer["host"]) for answer in answers]

    async def check(self, url: str) -> str:
        """``url`` as browsers parse it, or raise ``AddressRefused`` saying why not."""
        try:
            parsed = ada_url.URL(url)
        except ValueError:
            raise AddressRefused(f"not a valid URL: {url!r}") from None
        if parsed.protocol not in _SCHEMES:
            raise AddressRefused(f"only http and https URLs are fetched, not {parsed.protocol[:-1]!r}")
        if self.resolver is None:
            return str(parsed.href)
        port = int(parsed.port or (443 if parsed.protocol == "https:" else 80))
        await self.addresses(parsed.hostname, port)
        return str(parsed.href)

    async def hop_check(self, url: str) -> str | None:
        """For the downloader: why a redirect may not lead to ``url``, or ``None``."""
        try:
            await self.check(url)
        except AddressRefused as exc:
            return f"refused_address_redirect: {exc}"
        return None

    async def browser_check(self, url: str) -> str | None:
        """For the browser's request routing: why the page may not request ``url``, or ``None``."""
        scheme = url.split(":", 1)[0].lower()
        if scheme in _LOCAL_SCHEMES:
            return None  # made in the page, no network
        if scheme in ("ws", "wss"):  # judged as the http(s) URL its handshake goes to
            url = ("http" if scheme == "ws" else "https") + url[len(scheme) :]
        try:
            await self.check(url)
        except AddressRefused as exc:
            return str(exc)
        return None

    async def close(self) -> None:
        if self.resolver is not None:
            await self.resolver.close()

    def connector_resolver(self) -> Any:
        return self.resolver
