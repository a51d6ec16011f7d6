"""The query of ``GET /api/fetch``, read and checked: every mistake is a 400 that says what to send.

``url`` (required), ``timeout``; ``render=1`` with ``wait_for``, ``render_timeout`` and
``screenshot=1``; ``session=NAME``; ``proxy=auto|none|HOST:PORT`` (a URL of one's own only with
``--allow-private``). A parameter given twice, one not known, or one that describes a render
without ``render=1`` is refused, never ignored: a client that asked for something gets it, or
hears why not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ..fetch import Proxy, parse_proxy

__all__ = ["AUTO", "DIRECT", "BadOption", "FetchOptions", "ProxyChoice", "choose_proxy", "read_options"]

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 120.0
MARGIN = 1.0  # the deadline ends this long before the client's timeout
MIN_RENDER_TIMEOUT = 1.0

AUTO = "auto"
DIRECT = "none"
ProxyChoice = str | Proxy  # AUTO, DIRECT, or one proxy

KNOWN = ("url", "timeout", "render", "wait_for", "render_timeout", "screenshot", "session", "proxy", "token")
_RENDER_ONLY = ("wait_for", "render_timeout", "screenshot")
_SESSION_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class BadOption(ValueError):
    """A query the fetch API will not serve; the message says what to send instead."""


@dataclass(frozen=True, slots=True)
class FetchOptions:
    url: str
    timeout: float = DEFAULT_TIMEOUT
    render: bool = False
    wait_for: str | None = None
    render_timeout: float | None = None  # None: the render_timeout setting, within the deadline
    screenshot: bool = False
    session: str | None = None
    proxy: str | None = None  # as given: AUTO, DIRECT, HOST:PORT or a URL; None: the default

    @property
    def deadline_s(self) -> float:
        """How long the fetch may take: the client's timeout less the margin."""
        return max(self.timeout - MARGIN, 0.5)


def read_options(query: Mapping[str, Sequence[str]]) -> FetchOptions:
    """The options of one fetch, or ``BadOption``; ``query`` maps each name to its values."""
    unknown = sorted(set(query) - set(KNOWN))
    if unknown:
        known = ", ".join(k for k in KNOWN if k != "token")
        raise BadOption(f"unknown parameters: {', '.join(unknown)} (known: {known})")
    twice = sorted(name for name, values in query.items() if len(values) > 1)
    if twice:
        raise BadOption(f"given more than once: {', '.join(twice)}")
    given = {name: values[0] for name, values in query.items() if values}
    url = given.get("url", "")
    if not url:
        raise BadOption("url is required: /api/fetch?url=https://...")
    timeout = _number(given, "timeout", DEFAULT_TIMEOUT)
    if not 1 <= timeout <= MAX_TIMEOUT:
        raise BadOption(f"timeout must be within 1..{MAX_TIMEOUT:.0f} seconds")
    render = _flag(given, "render")
    if not render:
        named = [name for name in _RENDER_ONLY if name in given]
        if named:
            raise BadOption(f"{', '.join(named)} describe a render: add render=1")
    wait_for = given.get("wait_for")
    if wait_for is not None and not wait_for.strip():
        raise BadOption("wait_for must be a CSS selector (or load, domcontentloaded, networkidle)")
    render_timeout: float | None = None
    if "render_timeout" in given:
        render_timeout = _number(given, "render_timeout", 0.0)
        limit = max(timeout - MARGIN, 0.5)
        if not MIN_RENDER_TIMEOUT <= render_timeout <= limit:
            raise BadOption(
                f"render_timeout must be within {MIN_RENDER_TIMEOUT:.0f}..{limit:g} seconds: the "
                f"render must end before the answer is due (timeout {timeout:g} s, less {MARGIN:.0f} s)"
            )
    session = given.get("session")
    if session is not None and not _SESSION_NAME.fullmatch(session):
        raise BadOption("session must be 1 to 100 letters, digits, '_', '.', ':' or '-'")
    proxy = given.get("proxy")
    if proxy is not None and not proxy.strip():
        raise BadOption("proxy must be auto, none, or the HOST:PORT of one of the server's proxies")
    return FetchOptions(
        url=url,
        timeout=timeout,
        render=render,
        wait_for=wait_for,
        render_timeout=render_timeout,
        screenshot=_flag(given, "screenshot"),
        session=session,
        proxy=proxy,
    )


def choose_proxy(given: str | None, configured: Sequence[Proxy], *, allow_private: bool) -> ProxyChoice:
    """What ``proxy=`` means with the server's ``proxies``: ``AUTO`` (the pool, with its health),
    ``DIRECT``, or one proxy. ``None`` (not given): the pool if there is one, else direct."""
    if given is None:
        return AUTO if configured else DIRECT
    text = given.strip()
    if text.lower() == DIRECT:
        return DIRECT
    if text.lower() == AUTO:
        if not configured:
            raise BadOption("proxy=auto: the server has no proxies (its 'proxies' setting is empty)")
        return AUTO
    try:
        wanted = parse_proxy(text)
    except ConfigError as exc:
        raise BadOption(f"proxy: {exc}") from None
    for proxy in configured:
        if (proxy.host, proxy.port) == (wanted.host, wanted.port) and (
            "://" not in text or proxy.scheme == wanted.scheme
        ):
            return proxy  # the configured one, with its credentials: a client never sends them
    if allow_private:
        return wanted
    names = ", ".join(f"{p.host}:{p.port}" for p in configured) or "none"
    raise BadOption(
        f"proxy {wanted.host}:{wanted.port} is not one of the server's proxies ({names}); a proxy of "
        "the client's own would let it reach any address through it, so only --allow-private takes one"
    )


def _number(given: Mapping[str, str], name: str, default: float) -> float:
    text = given.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadOption(f"{name} must be a number of seconds, not {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise BadOption(f"{name} must be a number of seconds, not {text!r}")
    return value


def _flag(given: Mapping[str, str], name: str) -> bool:
    text = given.get(name)
    if text is None:
        return False
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadOption(f"{name} must be 1 or 0 (true or false), not {text!r}")
