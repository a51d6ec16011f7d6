"""Which browser the impersonating fetcher's TLS and HTTP/2 handshake is a copy of.

curl_cffi names its targets ``chrome131``, ``firefox135``, ``safari184`` (Safari 18.4) and so on,
plus a name per family for its newest (``chrome``, ``firefox``, ``safari``). A session with a real
browser's header profile gets the target nearest its ``User-Agent``: the same family, the newest
version not above the profile's (else the oldest there is), so that the handshake and the headers
tell one story. Edge is Chromium: its handshake is Chrome's of the same version.

curl_cffi is imported here only when a name is checked or chosen, never at import time.
"""

from __future__ import annotations

import functools
import importlib.util
import re

from ..errors import ConfigError
from ._identities import HeaderProfile

__all__ = ["check_target", "require_curl_cffi", "target_for"]

INSTALL_HINT = "pip install 'crawlkit[impersonate]'"
_TARGET = re.compile(r"(chrome|firefox|safari)(\d+)a?")  # desktop targets: no _android, _ios, _macos


def require_curl_cffi() -> None:
    """Raise a ``ConfigError`` saying how to install curl_cffi when it is not installed."""
    if importlib.util.find_spec("curl_cffi") is None:
        raise ConfigError(f'fetcher = "impersonate" needs curl_cffi: {INSTALL_HINT}')


@functools.cache
def _names() -> frozenset[str]:
    from curl_cffi.requests.impersonate import REAL_TARGET_MAP, BrowserType

    return frozenset(REAL_TARGET_MAP) | frozenset(t.value for t in BrowserType)


def check_target(name: str) -> None:
    """Raise a ``ConfigError`` unless curl_cffi is installed and ``name`` is one of its targets."""
    require_curl_cffi()
    if name not in _names():
        families = "chrome, edge, firefox, safari, safari_ios, chrome_android, tor"
        raise ConfigError(
            f"setting 'impersonate' must be a curl_cffi target: a family ({families}) or a version "
            f"such as chrome131 or firefox135; got {name!r}"
        )


@functools.cache
def _desktop_targets() -> dict[str, list[tuple[tuple[int, ...], str]]]:
    """Per family, its versioned targets, oldest first: ``{"chrome": [((131,), "chrome131"), ...]}``."""
    found: dict[str, list[tuple[tuple[int, ...], str]]] = {}
    for name in _names():
        match = _TARGET.fullmatch(name)
        if match is None:
            continue
        family, digits = match.groups()
        found.setdefault(family, []).append((_target_version(family, digits), name))
    return {family: sorted(targets) for family, targets in found.items()}


def _target_version(family: str, digits: str) -> tuple[int, ...]:
    if family != "safari":
        return (int(digits),)
    # safari153 is 15.3, safari184 is 18.4, safari2601 is 26.0.1
    return (int(digits[:2]), *(int(d) for d in digits[2:]))


def _agent_version(family: str, agent: str) -> tuple[int, ...] | None:
    marker = {"chrome": "Chrome/", "firefox": "Firefox/", "safari": "Version/"}[family]
    if marker not in agent:
        return None
    match = re.match(r"[\d.]+", agent.split(marker, 1)[1])
    if match is None:
        return None
    parts = [int(p) for p in match.group().split(".") if p]
    if not parts:
        return None
    return tuple(parts) if family == "safari" else (parts[0],)


def _family(agent: str) -> str | None:
    if "Firefox/" in agent:
        return "firefox"
    if "Chrome/" in agent:  # Chrome, Edge (Edg/), Opera and other Chromium browsers
        return "chrome"
    if "Safari/" in agent and "Version/" in agent:
        return "safari"
    return None


def target_for(profile: HeaderProfile | None, default: str) -> str:
    """The target for a session's header profile; ``default`` (the ``impersonate`` setting) for
    the honest profile, no profile, or a browser curl_cffi has no desktop target of."""
    agent = profile.get("User-Agent") if profile is not None else None
    if not agent:
        return default
    family = _family(agent)
    targets = _desktop_targets().get(family or "")
    version = _agent_version(family, agent) if family is not None else None
    if not targets or version is None:
        return default
    older = [name for target_version, name in targets if target_version <= version]
    return older[-1] if older else targets[0][1]
