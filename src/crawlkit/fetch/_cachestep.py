"""The downloader's cache step (step 3, before the network) and the hook where responses are kept.

``HttpCache`` runs in one of these ways, chosen by the crawl:

* ``serve`` (``http_cache``): a stored answer is served, the network is asked only on a miss,
  and what passed the classifier is stored;
* ``offline`` (``--offline``): only stored answers; a miss fails as ``not_cached``;
* ``revalidate`` (``--recrawl``): nothing is served; a page stored by an earlier crawl is asked
  for with ``If-None-Match`` / ``If-Modified-Since``, and a 304, or a body whose digest is the one
  stored, ends the request unparsed (unchanged); a 404 or 410 of such a page ends it as gone;
* ``record`` (``keep_pages``): nothing is served; each page's validators and body digest are
  kept, without the body, so that a later ``--recrawl`` can ask whether it changed.

With ``keep_items``, the items each stored page wrote are kept too (``_cacheitems.py``), given
by the commit step (``items_committed``); a re-crawl with ``recrawl_output = "all"`` then ends an
unchanged page with ``Unchanged(lines)``: its stored items, written as its output. A re-crawl's
rules (``_recrawlrules.py``) end a stored page as unchanged before any request.

A response is keyed by its request's fingerprint (method, canonical URL, a digest of the body).
The ``Vary`` headers it named are kept with the request's values for them: a request that sends
other values is a miss. One variant is kept per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import NotCached
from ..http import Request, accept_encoding
from ._cache import CacheEntry, PageStore, Validators, body_digest
from ._cacheitems import PageItems
from ._recrawlrules import RecrawlRules
from ._verdicts import Ended, Unchanged, Verdict

if TYPE_CHECKING:
    from ..core import CrawlStats
    from ..settings import Settings
    from ._client import Fetched, HopCheck
    from ._politeness import RobotsFetcher

__all__ = ["HttpCache", "RobotsThroughCache"]

log = logging.getLogger("crawlkit.cache")

GONE_STATUSES = (404, 410)
_JUDGED = Ended(None)  # a re-crawl's unchanged or gone page, nothing to write: the cache counted it


class HttpCache:
    """One crawl's use of its job's ``PageStore``."""

    def __init__(
        self,
        store: PageStore,
        settings: Settings,
        stats: CrawlStats,
        *,
        serve: bool,
        offline: bool,
        revalidate: bool,
        bodies: bool,
        items: PageItems | None = None,
        output_all: bool = False,
        rules: RecrawlRules | None = None,
    ) -> None:
        self.store = store
        self.serve = serve or offline
        self.offline = offline
        self.revalidate = revalidate
        self.bodies = bodies
        self.items = items  # keep_items: each stored page's items are kept at its commit
        self.output_all = output_all and revalidate
        self.rules = rules or RecrawlRules(lastmod=False)
        # Pages stored (or served) whose items the commit step is to keep; their parts so far.
        self._awaiting: set[bytes] = set()
        self._parts: dict[bytes, list[bytes]] = {}
        self.max_age = settings.http_cache_max_age
        self._stats = stats
        self._defaults = {k.lower(): v for k, v in settings.default_headers.items()}
        self._defaults["user-agent"] = settings.user_agent
        self._defaults["accept-encoding"] = accept_encoding()

    # -- step 3: before the network ---------------------------------------------------------

    def lookup(self, request: Request) -> Fetched | NotCached | Request | Verdict | None:
        """A stored answer; ``NotCached`` (offline, none); a conditional request to send instead;
        a re-crawl's verdict on a page its rules skip; or None."""
        if self.serve:
            entry = self.store.newest(request.fingerprint)
            if entry is not None and self._servable(request, entry):
                self._stats.cache["hit"] += 1
                if self.items is not None:
                    self._awaiting.add(entry.key)  # parsed again: its items are kept afresh
                return _as_fetched(entry)
            if self.offline:
                self._stats.cache["not_cached"] += 1
                return NotCached("not in the HTTP cache (offline)", request.url)
            self._stats.cache["miss"] += 1
            return None
        if self.revalidate:
            base = self.store.validators(request.fingerprint)
            if base is None or self.rules.always_parsed(request):
                return None  # new, or a sitemap: fetched whole and parsed
            stored = self._stored_items(base) if self.output_all else None
            if self.output_all and stored is None:
                return None  # no items to write for it unparsed: fetched whole and parsed
            reason = self.rules.skip_reason(request, base.stored_at, time.time())
            if reason is not None:
                self._stats.recrawl_skipped[reason] += 1
                self.store.see(base.key, request.url, f"skipped_{reason}")
                return self._unchanged(stored)
            if base.etag or base.last_modified:
                headers = dict(request.headers or {})
                if base.etag:
                    headers["If-None-Match"] = base.etag
                if base.last_modified:
                    headers["If-Modified-Since"] = base.last_modified
                # A copy: the request the frontier holds stays as it was (a retry asks again).
                conditional = request.replace(headers=headers)
                conditional.attempt = request.attempt
                return conditional
        return None

    def _servable(self, request: Request, entry: CacheEntry) -> bool:
        if entry.body is None:
            return False  # a page record without its body (keep_pages)
        if self.max_age > 0 and time.time() - entry.stored_at > self.max_age and not self.offline:
            return False
        if entry.vary:
            return all(self._header(request, name) == value for name, value in entry.vary.items())
        return True

    def _header(self, request: Request, name: str) -> str:
        """The value the fetcher sends for header ``name`` (lower case): the request's, else a default."""
        for key, value in (request.headers or {}).items():
            if key.lower() == name:
                return value
        return self._defaults.get(name, "")

    # -- after the network: what a re-crawl learns -------------------------------------------

    def judge(self, request: Request, fetched: Fetched) -> Verdict | None:
        """For a re-crawl: how an unchanged or gone page ends, unparsed; else None (parse it)."""
        if not self.revalidate or fetched.cached:
            return None
        status = fetched.status
        if status != 304 and status not in GONE_STATUSES and not 200 <= status < 300:
            return None
        key = request.fingerprint
        base = self.store.validators(key)
        if base is None:
            return None
        stats = self._stats
        stored: list[bytes] | None = None
        if status in GONE_STATUSES:
            verdict = "gone"  # its URL goes to JOB/gone.txt when the re-crawl ends
        elif self.rules.always_parsed(request):
            return None
        elif status == 304 or body_digest(fetched.body) == base.digest:
            if self.output_all:
                stored = self._stored_items(base)
                # Asked whole (no items stored): the same body is parsed again for its items.
                if stored is None and status != 304:
                    return None
            if status == 304:
                stats.recrawl["not_modified"] += 1
            verdict = "unchanged"
        else:
            return None
        stats.recrawl[verdict] += 1
        self.store.see(key, request.url, verdict)
        return self._unchanged(stored) if verdict == "unchanged" else _JUDGED

    def _stored_items(self, base: Validators) -> list[bytes] | None:
        if self.items is None:
            return None
        return self.items.stored(base.key, base.gen, self.store.gen)

    def _unchanged(self, stored: list[bytes] | None) -> Verdict:
        if stored is None:
            return _JUDGED
        self._stats.recrawl["items_from_store"] += len(stored)
        return Unchanged(stored)

    # -- the commit step's hooks: the items of the pages kept ---------------------------------

    def items_part(self, request: Request, lines: list[bytes]) -> None:
        """A part of a page's items, written while its callback runs on (``CommitStep.take_part``)."""
        key = request.fingerprint
        if key in self._awaiting:
            self._parts.setdefault(key, []).extend(lines)

    def items_committed(self, request: Request, lines: list[bytes], failed: bool) -> None:
        """A page is committed with ``lines``: kept with its record, if it was stored or served.

        A page whose callback failed keeps nothing: its older items go when the generation
        folds in (they describe another version), and the next re-crawl parses it again.
        """
        key = request.fingerprint
        if key not in self._awaiting:
            return
        self._awaiting.discard(key)
        parts = self._parts.pop(key, None)
        if failed or self.items is None:
            return
        self.items.keep(key, self.store.gen, parts + lines if parts else lines)

    # -- the hook: a response that passed the classifier --------------------------------------

    def keep(self, request: Request, fetched: Fetched) -> None:
        """Store a response that passed (2xx, or a 3xx the spider handles; not blocked, not 5xx)."""
        if fetched.cached or fetched.binary or fetched.status >= 400:
            return
        key = request.fingerprint
        entry = self.entry(key, request, fetched, digest=False)
        if self.revalidate:
            base = self.store.validators(key)
            if base is None:
                verdict = "new"
            elif base.digest == body_digest(fetched.body):
                verdict = "unchanged"
                if not self.rules.always_parsed(request):
                    self._stats.recrawl["parsed_for_items"] += 1  # none were stored to write
            else:
                verdict = "changed"
            self._stats.recrawl[verdict] += 1
            self.store.see(key, request.url, verdict)
        else:
            self.store.see(key, request.url, "new")  # the job's history counts what each crawl stored
        if self.items is not None:
            self._awaiting.add(key)
        # The digest is taken by the writer thread: hashing lets go of the GIL, and on the
        # loop's thread each page would then wait to take it back.
        self.store.store(entry, compress=self.bodies, digest_of=fetched.body)
        self._stats.cache["stored"] += 1

    def entry(self, key: bytes, request: Request, fetched: Fetched, *, digest: bool = True) -> CacheEntry:
        """``fetched`` as a record (``digest=False``: its digest left for ``PageStore.store``)."""
        etag = last_modified = None
        vary: dict[str, str] | None = None
        for name, value in fetched.headers:
            lower = name.lower()
            if lower == "etag":
                etag = value
            elif lower == "last-modified":
                last_modified = value
            elif lower == "vary":
                vary = vary or {}
                for header in value.split(","):
                    header = header.strip().lower()
                    if header and header != "*":
                        vary[header] = self._header(request, header)
        return CacheEntry(
            key=key,
            gen=self.store.gen,
            method=request.method,
            url=request.url,
            final_url=fetched.url,
            status=fetched.status,
            headers=list(fetched.headers),
            vary=vary,
            coding=fetched.content_encoding,
            body=fetched.body if self.bodies else None,
            size=len(fetched.body) if self.bodies else 0,
            stored_at=time.time(),
            etag=etag,
            last_modified=last_modified,
            digest=body_digest(fetched.body) if digest else b"",
            request=request_record(request),
        )


class RobotsThroughCache:
    """The fetcher the politeness gate reads robots.txt with, through the cache.

    Offline, robots.txt comes only from the cache: a robots.txt not stored fails as
    ``not_cached``, which the gate takes as "unavailable", and allows everything (logged once
    per origin). Online with ``http_cache``, a stored robots.txt is served and a fetched one
    stored: any answer but 429 and 5xx, since a 404 means "no rules" as much as a 200 does.
    """

    def __init__(
        self,
        fetcher: RobotsFetcher,
        cache: HttpCache,
        through: Callable[[Request], Awaitable[Fetched]] | None = None,
    ) -> None:
        self._fetcher = fetcher
        self._cache = cache
        self._through = through  # the downloader's way through the crawl's proxies, if it has them

    async def fetch(self, request: Request, hop_check: HopCheck | None = None) -> Fetched:
        cache = self._cache
        if cache.serve:
            entry = cache.store.newest(request.fingerprint)
            if entry is not None and entry.body is not None:
                return _as_fetched(entry)
            if cache.offline:
                raise NotCached("robots.txt not in the HTTP cache (offline)", request.url)
        if self._through is not None:
            fetched = await self._through(request)
        else:
            fetched = await self._fetcher.fetch(request, hop_check)
        if cache.bodies and fetched.status != 429 and fetched.status < 500:
            entry = cache.entry(request.fingerprint, request, fetched)
            entry.request = None  # not a page: a re-crawl does not visit it as one
            cache.store.store(entry, compress=True)
        return fetched


def _as_fetched(entry: CacheEntry) -> Fetched:
    from ._client import Fetched

    assert entry.body is not None
    return Fetched(
        url=entry.final_url,
        status=entry.status,
        headers=list(entry.headers),
        body=entry.body,
        content_encoding=entry.coding,
        cached=True,
    )


def request_record(request: Request) -> dict[str, Any]:
    """``request`` as JSON-ready data, to visit it again in a re-crawl (no pickle in the cache).

    ``meta`` and ``cb_kwargs`` are kept when they are JSON; otherwise they are left out (logged).
    """
    record: dict[str, Any] = {"url": request.url, "method": request.method}
    if request.callback:
        record["callback"] = request.callback
    if request.errback:
        record["errback"] = request.errback
    if request.headers:
        record["headers"] = request.headers
    if request.body:
        record["body"] = request.body.decode("latin-1")
    if request.priority:
        record["priority"] = request.priority
    record["depth"] = request.depth
    for name in ("meta", "cb_kwargs"):
        value = getattr(request, name)
        if value:
            try:
                orjson.dumps(value)
            except TypeError:
                log.debug("%s: its %s is not JSON; a re-crawl visits it without", request.url, name)
                continue
            record[name] = value
    return record


def request_from_record(record: dict[str, Any]) -> Request:
    """The request ``request_record()`` kept."""
    body = record.get("body")
    return Request(
        record["url"],
        method=record.get("method", "GET"),
        headers=record.get("headers"),
        body=body.encode("latin-1") if isinstance(body, str) else b"",
        callback=record.get("callback"),
        errback=record.get("errback"),
        cb_kwargs=record.get("cb_kwargs"),
        meta=record.get("meta"),
        priority=record.get("priority", 0),
        depth=record.get("depth", 0),
    )
