"""Sessions: a proxy, a cookie jar and a header profile that go together, and the pool of them.

A site sees a visitor as an address, a set of cookies and a browser. A :class:`Session` keeps the
three together for its whole life: it never changes its proxy or its profile, and its cookies are
its own. When the site shows that it has seen through a session (a block), the session is retired
and a fresh one takes its place, with a proxy of its own, an empty jar and a new profile; a
retired session is never used again.

A session is retired after ``max_uses`` attempts, after ``max_age`` seconds, or when its error
score reaches ``max_score``: a block adds 1, an ok answer takes 0.25 off (down to 0); other labels
leave it (a rate limit rests the host, not the identity; a proxy's failure is the proxy's, and
its pool rests it). With the default ``max_score = 1``, a block retires the session at once.

Cookies travel with the session and not through aiohttp's session-wide jar, so that one
``aiohttp.ClientSession`` (with a ``DummyCookieJar``) serves every crawlkit session:
:meth:`Session.cookie_header` before each hop, :meth:`Session.store_cookies` after it.

The pool's state (live sessions, cookies included, and their counts) goes to and from JSON, so a
resumed crawl goes on as the same visitors. Proxy credentials are not written: a session names its
proxy without them, and finds it again among the configured proxies (a session whose proxy is no
longer configured is dropped).

In a shared (Redis) crawl the pool is one for all workers (``_sharedsessions.py``): it makes no
session on its own, but uses those leased to this worker, and tells the shared pool what it
retires.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from http.cookies import Morsel
from typing import TYPE_CHECKING, Any, cast

import orjson
from yarl import URL

from ..errors import ConfigError
from ._classify import Classification, Label
from ._identities import HeaderProfile
from ._proxies import NoProxyAvailable, Proxy, ProxyArgs, ProxyPool, ProxyState

if TYPE_CHECKING:
    from ._cookies import BoundedCookieJar
    from ._sharedsessions import SharedSessions

__all__ = ["NoSessionAvailable", "Pick", "Session", "SessionPool", "dump_cookies", "load_cookies"]

STATE_VERSION = 1
_BLOCK_SCORE = 1.0
_OK_CREDIT = 0.25


class NoSessionAvailable(NoProxyAvailable):
    """A shared crawl's worker holds no session: the shared pool's are all held by others."""

    reason = "no_session"


class Pick(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_USED = "least_used"


class Session:
    """One identity: ``proxy`` (or None: direct), ``profile`` and ``jar``, for life."""

    def __init__(
        self,
        sid: str,
        proxy: Proxy | None,
        profile: HeaderProfile,
        created: float,
        jar: BoundedCookieJar | None = None,
    ) -> None:
        self.id = sid
        self._proxy = proxy
        self._profile = profile
        if jar is None:
            # Imported here: the jar is aiohttp's, which the engine loads in a thread while the
            # parser workers start (fetch.load_client); sessions are made only after that.
            from ._cookies import BoundedCookieJar

            jar = BoundedCookieJar(unsafe=True)
        self.jar = jar
        self.created = created  # wall-clock time: an age that survives a resume
        self.uses = 0
        self.score = 0.0
        self.retired: str | None = None  # why, once retired
        self.in_flight = 0  # requests sent and not yet answered: a shared pool hands it on at 0

    # Read-only: a session never changes its proxy or its profile.
    @property
    def proxy(self) -> Proxy | None:
        return self._proxy

    @property
    def profile(self) -> HeaderProfile:
        return self._profile

    def headers(self, own: Mapping[str, str] | None = None) -> dict[str, str]:
        """The profile's headers in its order, then the request's own (which win by name)."""
        mine = {k.lower() for k in own or ()}
        merged = {k: v for k, v in self._profile.headers if k.lower() not in mine}
        merged.update(own or {})
        return merged

    def proxy_args(self, url: str) -> ProxyArgs | None:
        """For one hop to ``url`` through this session's proxy (None: direct)."""
        return None if self._proxy is None else self._proxy.for_request(url)

    def cookie_header(self, url: str) -> str | None:
        """The ``Cookie`` header this session sends to ``url`` (None if it has none for it)."""
        cookies = self.jar.filter_cookies(URL(url))
        if not cookies:
            return None
        return "; ".join(f"{name}={morsel.coded_value}" for name, morsel in cookies.items())

    def store_cookies(self, set_cookie: Iterable[str], url: str) -> None:
        """Keep the ``Set-Cookie`` headers of an answer from ``url``."""
        headers = list(set_cookie)
        if headers:
            self.jar.update_cookies_from_headers(headers, URL(url))

    def __repr__(self) -> str:
        state = f"retired: {self.retired}" if self.retired else f"{self.uses} uses"
        return f"<Session {self.id} via {self._proxy or 'direct'} as {self._profile.name!r}, {state}>"


class SessionPool:
    """``size`` live sessions; ``acquire()`` picks one, ``record()`` takes each attempt's verdict.

    ``profiles`` makes the profile of each new session (``honest_profile`` bound to the crawl's
    User-Agent, or a ``BrowserIdentities``). With ``proxies``, each new session takes the ready
    proxy that has served least, and a session whose proxy rests is skipped until it is back.
    Not thread-safe: one event loop uses it.
    """

    def __init__(
        self,
        profiles: Callable[[], HeaderProfile],
        *,
        size: int = 1,
        proxies: ProxyPool | None = None,
        max_uses: int | None = None,
        max_age: float | None = None,
        max_score: float = 1.0,
        pick: Pick | str = Pick.ROUND_ROBIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if size < 1:
            raise ConfigError("a session pool needs at least one session")
        self._profiles = profiles
        self.size = size
        self.proxies = proxies
        self.max_uses = max_uses
        self.max_age = max_age
        self.max_score = max_score
        self.pick_by = Pick(pick)
        self._clock = clock
        self._live: list[Session] = []
        self._next_id = 1
        self._turn = 0
        self.retired: dict[str, int] = {}  # sessions retired, by reason
        # In a shared crawl: the worker's side of the shared pool, and the sessions used since
        # its last sync (their documents go with the next one).
        self.shared: SharedSessions | None = None
        self.touched: set[Session] = set()

    @property
    def live(self) -> list[Session]:
        return list(self._live)

    async def acquire(self, wait: float | None = None) -> Session:
        """A live session to send one request with (new ones made to fill retired places).

        With proxies: a session whose proxy rests is skipped. When every live session's proxy
        rests and another proxy is ready, the longest-resting session gives its place to a new
        session on that proxy; when none is ready, this waits up to ``wait`` seconds for one,
        else raises :class:`NoProxyAvailable`.
        """
        self._expire()
        while True:
            self._fill()
            usable = self._usable()
            if usable:
                if self.pick_by is Pick.LEAST_USED:
                    return min(usable, key=lambda s: s.uses)
                self._turn += 1
                return usable[self._turn % len(usable)]
            # A shared pool fills this worker's places at a sync: one now, for every caller.
            if self.shared is not None and await self.shared.refill():
                continue
            if self.proxies is not None and self.proxies.ready() and self._live:
                self.retire(self._live[0], "proxy_resting")
                continue
            if self.shared is not None and (self.proxies is None or self.proxies.ready()):
                if await self.shared.wait_for_session():
                    continue
                raise self.shared.starved()
            assert self.proxies is not None  # without proxies every session is usable
            await self.proxies.acquire(wait)

    def record(self, session: Session, verdict: Classification | Label) -> None:
        """Count one attempt of ``session``; retire it when the site has seen through it."""
        label = verdict.label if isinstance(verdict, Classification) else Label(verdict)
        session.uses += 1
        if self.shared is not None:
            self.touched.add(session)
        if self.proxies is not None and session.proxy is not None:
            self.proxies.record(session.proxy, label)
        if label is Label.BLOCKED:
            session.score += _BLOCK_SCORE
        elif label is Label.OK:
            session.score = max(0.0, session.score - _OK_CREDIT)
        if session.score >= self.max_score:
            self.retire(session, "blocked")
        elif self.max_uses is not None and session.uses >= self.max_uses:
            self.retire(session, "uses")

    def retire(self, session: Session, why: str) -> None:
        """Never use ``session`` again; a new one takes its place at the next ``acquire()``."""
        if session.retired is not None:
            return
        session.retired = why
        self.retired[why] = self.retired.get(why, 0) + 1
        if session in self._live:
            self._live.remove(session)
        if self.shared is not None:
            self.shared.note_retired(session.id, why)

    def stats(self) -> dict[str, Any]:
        return {"live": len(self._live), "retired": dict(self.retired)}

    def _new(self, proxy: Proxy | None) -> Session:
        sid = f"s{self._next_id}"
        self._next_id += 1
        return Session(sid, proxy, self._profiles(), self._clock())

    def _fill(self) -> None:
        if self.shared is not None:
            return  # places are filled from the shared pool, at its syncs
        while len(self._live) < self.size:
            proxy = None
            if self.proxies is not None:
                ready = self.proxies.ready()
                if not ready:
                    return  # the live sessions serve meanwhile
                # The ready proxy with the fewest live sessions (then the least used one).
                taken = [s.proxy for s in self._live]
                proxy = min(ready, key=taken.count)
            self._live.append(self._new(proxy))

    # -- a shared pool's places -------------------------------------------------------------

    def adopt(self, sid: str, document: bytes | None) -> Session | None:
        """Take a session of the shared pool: one from its document, or a new one for the place
        ``sid`` (None: its proxy is not among this worker's, so it cannot be used here)."""
        if document is not None:
            session = self._from_json(orjson.loads(document))
            if session is None:
                return None
        else:
            session = Session(sid, self._proxy_for_new(sid), self._profiles(), self._clock())
            self.touched.add(session)  # its document goes with the next sync
        self._live.append(session)
        return session

    def drop(self, session: Session) -> None:
        """Stop using ``session`` here, without retiring it (it was given back, or lost)."""
        if session in self._live:
            self._live.remove(session)

    def document(self, session: Session) -> bytes:
        return orjson.dumps(_session_json(session))

    def _proxy_for_new(self, sid: str) -> Proxy | None:
        """The ready proxy with the fewest of this worker's sessions; ties go round the proxies
        by the session's number, so that workers making sessions at once spread them too."""
        if self.proxies is None:
            return None
        ready = self.proxies.ready() or list(self.proxies.proxies)
        order = {proxy: i for i, proxy in enumerate(self.proxies.proxies)}
        number = int(sid[1:]) if sid[1:].isdigit() else 0
        taken = [s.proxy for s in self._live]
        count = len(order)
        return min(ready, key=lambda p: (taken.count(p), (order.get(p, 0) - number) % count))

    def _usable(self) -> list[Session]:
        if self.proxies is None:
            return list(self._live)
        pool = self.proxies
        return [s for s in self._live if s.proxy is None or pool.state(s.proxy) is ProxyState.READY]

    def _expire(self) -> None:
        if self.max_age is None:
            return
        now = self._clock()
        for session in list(self._live):
            if now - session.created >= self.max_age:
                self.retire(session, "age")

    # -- persistence --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The live sessions and the pool's counts, as JSON-ready data (no proxy password in it)."""
        return {
            "version": STATE_VERSION,
            "next_id": self._next_id,  # ids stay unique across a resume
            "retired": dict(self.retired),
            "sessions": [_session_json(s) for s in self._live],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the sessions of :meth:`to_json` (made by a pool of the same settings).

        A session whose proxy is not among this pool's proxies is dropped: its cookies belong to
        an address the crawl no longer uses.
        """
        if state.get("version") != STATE_VERSION:
            raise ConfigError(
                f"session state of version {state.get('version')!r}; this crawlkit reads {STATE_VERSION}"
            )
        self._live = []
        for item in state["sessions"]:
            session = self._from_json(item)
            if session is not None:
                self._live.append(session)
        self._live = self._live[: self.size]
        self._next_id = int(state["next_id"])
        self.retired = {str(k): int(v) for k, v in state.get("retired", {}).items()}

    def _from_json(self, item: Mapping[str, Any]) -> Session | None:
        """A session of :func:`_session_json` (None: its proxy is not one of this pool's)."""
        proxy = None
        if item["proxy"] is not None:
            known = {_proxy_key(p): p for p in self.proxies.proxies} if self.proxies is not None else {}
            proxy = known.get(tuple(item["proxy"]))
            if proxy is None:
                return None
        session = Session(item["id"], proxy, HeaderProfile.from_json(item["profile"]), float(item["created"]))
        session.uses = int(item["uses"])
        session.score = float(item["score"])
        load_cookies(session.jar, item["cookies"], self._clock())
        return session


def _session_json(session: Session) -> dict[str, Any]:
    """One session as JSON-ready data: its proxy named without its password."""
    return {
        "id": session.id,
        "proxy": _proxy_key(session.proxy),
        "profile": session.profile.to_json(),
        "created": session.created,
        "uses": session.uses,
        "score": session.score,
        "cookies": dump_cookies(session.jar),
    }


def _proxy_key(proxy: Proxy | None) -> tuple[str, str, int, str | None] | None:
    return None if proxy is None else (proxy.scheme, proxy.host, proxy.port, proxy.username)


# -- cookies as JSON --------------------------------------------------------------------------------


def dump_cookies(jar: BoundedCookieJar) -> list[dict[str, Any]]:
    """Every cookie of ``jar``, with what restoring it needs: its scope and its deadline.

    Host-only cookies (no ``Domain`` attribute) are marked, or they would come back as domain
    cookies, sent to every subdomain. aiohttp keeps both facts on the jar, not the cookie:
    ``host_only_cookies`` (public from aiohttp 3.13) and the deadlines (a private table, read if
    there; without it, a cookie's own ``Expires`` is kept).
    """
    marked = getattr(jar, "host_only_cookies", None)
    if marked is None:  # aiohttp before 3.13
        marked = getattr(jar, "_host_only_cookies", ())
    host_only = frozenset(cast(Iterable[tuple[str, str, str]], marked))
    deadlines: Mapping[tuple[str, str, str], float] = getattr(jar, "_expirations", {})
    out = []
    for morsel in jar:
        domain, path, name = morsel["domain"], morsel["path"], morsel.key
        key = (domain, path.rstrip("/"), name)  # as aiohttp's jar keys it: "/" is ""
        expires = deadlines.get(key)
        if expires is None and morsel["expires"]:
            parsed = email.utils.parsedate_to_datetime(morsel["expires"])
            expires = parsed.timestamp() if parsed else None
        out.append(
            {
                "name": name,
                "value": morsel.value,
                "coded_value": morsel.coded_value,
                "domain": domain,
                "path": path,
                "host_only": key in host_only,
                "secure": bool(morsel["secure"]),
                "httponly": bool(morsel["httponly"]),
                "samesite": morsel["samesite"] or "",
                "expires": expires,
            }
        )
    return out


def load_cookies(
    jar: BoundedCookieJar, cookies: Iterable[Mapping[str, Any]], now: float | None = None
) -> None:
    """Put back the cookies of :func:`dump_cookies` (those expired since are left out)."""
    now = time.time() if now is None else now
    for item in cookies:
        expires = item.get("expires")
        if expires is not None and float(expires) <= now:
            continue
        morsel: Morsel[str] = Morsel()
        morsel.set(item["name"], item["value"], item["coded_value"])
        if item["path"]:
            morsel["path"] = item["path"]
        if not item["host_only"]:
            morsel["domain"] = item["domain"]
        if item["secure"]:
            morsel["secure"] = True
        if item["httponly"]:
            morsel["httponly"] = True
        if item["samesite"]:
            morsel["samesite"] = item["samesite"]
        if expires is not None:
            morsel["expires"] = email.utils.formatdate(float(expires), usegmt=True)
        origin = URL.build(scheme="https" if item["secure"] else "http", host=item["domain"])
        jar.update_cookies({item["name"]: morsel}, origin)
