"""The identity step of an attempt: which proxy and session carry a request, and what its label does.

The downloader asks :meth:`IdentityStep.route` for a :class:`Route` before each attempt and gives
the answer's :class:`Classification` back to :meth:`IdentityStep.record`. Where a request goes:

1. ``meta["proxy"]`` (``Request(proxy=...)``) names its own proxy: that one, for every hop, with
   the crawl's cookie jars (``meta["proxy"] = None`` or ``""``: direct, as in Scrapy);
2. with sessions on: a session from the :class:`SessionPool`, its proxy, jar and header profile;
3. with ``proxies`` and sessions off: the pool's least used ready proxy;
4. else, with ``proxy_from_env``: the environment's proxy for each hop's URL (``NO_PROXY`` obeyed);
5. else direct.

When every proxy rests, :meth:`route` raises :class:`NoProxyAvailable` and the downloader waits
or stops, as ``on_no_proxy`` says; a worker of a shared crawl that holds no session of the
shared pool (:meth:`share_sessions`) gets :class:`NoSessionAvailable`, and waits. Counts per
proxy live in the proxy pools (the configured one, and a pool of one for each proxy a request
named itself), so the summary shows them all alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..http import Request
from ._classify import Classification, Classifier, Label, Rule
from ._identities import BrowserIdentities, HeaderProfile, honest_profile
from ._proxies import (
    EnvProxies,
    NoProxyAvailable,
    Proxy,
    ProxyPool,
    parse_proxies,
    parse_proxy,
    usable_proxies,
)
from ._sessions import Session, SessionPool
from ._sharedsessions import SessionStore, SharedSessions

if TYPE_CHECKING:
    from ..settings import Settings
    from ._client import Fetched

__all__ = ["CAPTCHA_VENDORS", "ROTATIONS_KEY", "IdentityStep", "Route", "is_captcha", "parse_block_rules"]

log = logging.getLogger("crawlkit.fetch")

# Blocks that are CAPTCHAs a solver could answer (the classifier's vendor names).
CAPTCHA_VENDORS = frozenset({"recaptcha", "hcaptcha", "turnstile", "datadome", "perimeterx"})
# Where a request counts the fresh sessions it was given after blocks (a budget of its own).
ROTATIONS_KEY = "session_rotations"
_RULE_KEYS = frozenset({"label", "statuses", "pattern", "selector", "name"})


def parse_block_rules(entries: Iterable[Rule | Mapping[str, Any]]) -> list[Rule]:
    """``block_rules`` (the setting's tables, or a spider's ``Rule`` objects) as rules."""
    rules: list[Rule] = []
    for entry in entries:
        if isinstance(entry, Rule):
            rules.append(entry)
            continue
        if not isinstance(entry, Mapping):
            raise ConfigError(f"a block rule must be a table of {sorted(_RULE_KEYS)}, got {entry!r}")
        unknown = set(entry) - _RULE_KEYS
        if unknown or "label" not in entry:
            why = f"unknown keys {sorted(unknown)}" if unknown else "no label"
            raise ConfigError(f"block rule {dict(entry)!r}: {why} (keys: {', '.join(sorted(_RULE_KEYS))})")
        try:
            rules.append(Rule(**dict(entry)))
        except (ValueError, TypeError, re.error) as exc:
            raise ConfigError(f"block rule {dict(entry)!r}: {exc}") from None
    return rules


@dataclass(slots=True)
class Route:
    """How one attempt goes out. ``used`` is the proxy of the last hop sent (set by the fetcher)."""

    proxy: Proxy | None = None  # for every hop (a session's, the pool's, the request's own)
    session: Session | None = None
    env: EnvProxies | None = None  # else the environment's proxy for each hop's URL
    used: Proxy | None = None

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy of one hop to ``url`` (None: direct); remembered as ``used``."""
        proxy = self.proxy
        if proxy is None and self.env is not None:
            proxy = self.env.for_url(url)
        self.used = proxy
        return proxy


class IdentityStep:
    """One crawl's proxies, sessions and classifier; ``route()`` before, ``record()`` after."""

    def __init__(
        self,
        settings: Settings,
        rules: Iterable[Rule | Mapping[str, Any]] = (),
        *,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
    ) -> None:
        proxies = usable_proxies(parse_proxies(settings.proxies, base_dir))
        self.pool = ProxyPool(proxies) if proxies else None
        self._pooled = frozenset(proxies)
        env = EnvProxies(environ) if settings.proxy_from_env and not proxies else None
        self.env = env if env is not None and env.any else None
        if self.env is not None:
            usable_proxies(self.env.named)  # a SOCKS proxy in ALL_PROXY needs the extra too
        self.sessions: SessionPool | None = None
        self.shared: SharedSessions | None = None
        self._default_size = not settings.session_pool_size
        if settings.sessions == "on" or (settings.sessions == "auto" and proxies):
            self.sessions = SessionPool(
                _profiles(settings),
                size=settings.session_pool_size or max(2, 2 * len(proxies)),
                proxies=self.pool,
                max_uses=settings.session_max_uses or None,
                max_age=settings.session_max_age or None,
                max_score=settings.session_max_score,
            )
        # The spider's rules first (the more specific), then the setting's, then the built-in.
        self.classifier = Classifier(parse_block_rules([*rules, *settings.block_rules]))
        self.max_rotations = settings.max_session_rotations
        self.stop_when_none = settings.on_no_proxy == "stop"
        self._adhoc: dict[str, tuple[Proxy, ProxyPool]] = {}  # meta["proxy"] -> its own pool
        self._all_resting_since: float | None = None

    @property
    def proxied(self) -> bool:
        return self.pool is not None or self.env is not None

    async def route(self, request: Request) -> Route:
        """Where ``request`` goes this attempt; :class:`NoProxyAvailable` when every proxy rests."""
        meta = request.meta
        if "proxy" in meta:
            given = meta["proxy"]
            return Route(proxy=self._adhoc_proxy(str(given))) if given else Route()
        if self.sessions is not None:
            session = await self.sessions.acquire(0)
            return Route(proxy=session.proxy, session=session, env=self.env)
        if self.pool is not None:
            proxy = self.pool.pick()
            if proxy is None:
                raise NoProxyAvailable(f"all {len(self.pool.proxies)} proxies are resting")
            return Route(proxy=proxy)
        return Route(env=self.env) if self.env is not None else Route()

    def classify(self, fetched: Fetched, route: Route, *, leave_challenge: bool = False) -> Classification:
        """The answer's label; ``leave_challenge`` as ``Classifier.response`` says."""
        return self.classifier.response(
            fetched.status,
            fetched.headers,
            fetched.body,
            fetched.content_encoding,
            url=fetched.url,
            via_proxy=route.used is not None,
            leave_challenge=leave_challenge,
        )

    def record(self, route: Route, verdict: Classification) -> None:
        """Count one attempt against its session and its proxy."""
        if route.session is not None and self.sessions is not None:
            self.sessions.record(route.session, verdict)
            if route.session.proxy is not None or route.used is None:
                return  # the session pool counted its proxy
        proxy = route.used
        if proxy is None:
            return
        if proxy in self._pooled and self.pool is not None:
            self.pool.record(proxy, verdict.label)
        else:
            self._pool_of(proxy).record(proxy, verdict.label)

    def can_rotate(self, route: Route) -> bool:
        """Whether another attempt would go out as someone else (a fresh session or proxy)."""
        if route.session is not None:
            return True
        return self.pool is not None and route.proxy is not None and len(self.pool.proxies) > 1

    def next_ready_in(self) -> float:
        """Seconds until a proxy is back; the first time in a row, says so in the log."""
        wait = self.pool.next_ready_in() if self.pool is not None else 0.0
        if self._all_resting_since is None:
            self._all_resting_since = wait
            log.warning(
                "every proxy is resting after errors; requests wait %.1f s for the first back%s",
                wait,
                " (on_no_proxy = 'stop' stops the crawl instead)" if not self.stop_when_none else "",
            )
        return wait

    def proxy_served(self) -> None:
        """A request got a proxy: the next time all rest is logged again."""
        self._all_resting_since = None

    # -- the summary and the checkpoint ----------------------------------------------------------

    def proxy_table(self) -> list[dict[str, object]]:
        """Per proxy: its redacted URL, requests, successes, blocks, proxy errors and state."""
        rows = self.pool.stats() if self.pool is not None else []
        for proxy, pool in self._adhoc.values():
            if proxy not in self._pooled:
                rows.extend(pool.stats())
        return rows

    def session_stats(self) -> dict[str, Any] | None:
        return self.sessions.stats() if self.sessions is not None else None

    def share_sessions(self, store: SessionStore) -> SharedSessions | None:
        """Use the shared pool of a shared crawl instead of sessions of this process's own."""
        if self.sessions is None:
            return None
        self.shared = SharedSessions(
            self.sessions, store, size=self.sessions.size, one_each=self._default_size
        )
        return self.shared

    def state(self) -> dict[str, Any] | None:
        """The live sessions, cookies included, for a checkpoint (None: sessions are off, or
        they live in a shared pool)."""
        if self.sessions is None or self.shared is not None:
            return None
        return self.sessions.to_json()

    def restore(self, state: Mapping[str, Any]) -> None:
        if self.shared is not None:
            log.info("sessions saved by this worker alone are not used: the shared pool's are")
            return
        if self.sessions is not None:
            try:
                self.sessions.restore(state)
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                log.warning("the saved sessions cannot be restored (%s); starting with fresh ones", exc)

    def _adhoc_proxy(self, text: str) -> Proxy:
        known = self._adhoc.get(text)
        if known is None:
            proxy = usable_proxies([parse_proxy(text)])[0]
            known = self._adhoc[text] = (proxy, ProxyPool([proxy]))
        return known[0]

    def _pool_of(self, proxy: Proxy) -> ProxyPool:
        for known, pool in self._adhoc.values():
            if known == proxy:
                return pool
        pool = ProxyPool([proxy])  # an environment's proxy: counted like the others
        self._adhoc[str(proxy)] = (proxy, pool)
        return pool


def _profiles(settings: Settings) -> Callable[[], HeaderProfile]:
    if settings.identities == "browser":
        return BrowserIdentities()
    honest = honest_profile(settings.user_agent)
    return lambda: honest


def is_captcha(verdict: Classification) -> bool:
    """A block whose page is a CAPTCHA a solver could answer."""
    return verdict.label is Label.BLOCKED and (
        verdict.reason in CAPTCHA_VENDORS or "captcha" in verdict.reason.lower()
    )
