"""The cookie jar, with crawlkit's own bounds on what a site can make it hold and send.

aiohttp's jar keeps cookies per domain and path, as browsers do, but how many it keeps for one
host has changed between its versions (older ones keep every cookie a site sets). A hostile site
could then make each request to it carry megabytes of ``Cookie``, and the jar grow without end.
These bounds hold whatever aiohttp version is installed:

* :data:`MAX_COOKIES_PER_HOST` distinct cookie names accepted from one host; a cookie that
  replaces one of them is always accepted, a new name past the bound is dropped.
* :data:`MAX_COOKIE_HEADER_BYTES` in one ``Cookie`` header: the cookies past it are not sent.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from http.cookies import BaseCookie, SimpleCookie
from typing import Any

import aiohttp
from yarl import URL

__all__ = ["MAX_COOKIES_PER_HOST", "MAX_COOKIE_HEADER_BYTES", "BoundedCookieJar", "jar_state", "restore_jar"]

# Browsers keep about 180 per domain; RFC 6265 asks for at least 50. Crawled sites need few.
MAX_COOKIES_PER_HOST = 50
# Below the 8 KB a header line that most servers accept (nginx, Apache), with room for one
# 4 KB cookie, the least RFC 6265 asks a client to store.
MAX_COOKIE_HEADER_BYTES = 6 * 1024

_NO_URL = URL()  # aiohttp's default: cookies for no URL in particular


class BoundedCookieJar(aiohttp.CookieJar):
    """An ``aiohttp.CookieJar`` that holds :data:`MAX_COOKIES_PER_HOST` names per host at most."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Names accepted per host of the response that set them. A name stays counted after its
        # cookie expires: the count only gates new names, and a host cannot renew past the bound.
        self._names: dict[str, set[str]] = {}

    def update_cookies(self, cookies: Any, response_url: URL = _NO_URL) -> None:
        # Older aiohttp versions store a response's cookies through this method.
        pairs = list(cookies.items() if isinstance(cookies, Mapping) else cookies)
        kept = [(name, value) for name, value in pairs if self._admit(response_url, str(name))]
        if kept:
            super().update_cookies(kept, response_url)

    def update_cookies_from_headers(self, headers: Sequence[str], response_url: URL) -> None:
        kept = [h for h in headers if self._admit(response_url, _set_cookie_name(h))]
        if kept:
            super().update_cookies_from_headers(kept, response_url)

    def filter_cookies(self, request_url: URL = _NO_URL) -> BaseCookie[str]:
        if not len(self):  # no cookie in play, the common case: aiohttp asks at every request
            return BaseCookie()
        cookies = super().filter_cookies(request_url)
        size = 0
        for name, morsel in cookies.items():
            size += len(name) + len(morsel.coded_value) + 2  # "name=value; "
            if size > MAX_COOKIE_HEADER_BYTES:
                return _first(cookies, MAX_COOKIE_HEADER_BYTES)
        return cookies

    def _admit(self, url: URL, name: str) -> bool:
        names = self._names.setdefault(url.host or "", set())
        if name in names:
            return True
        if len(names) >= MAX_COOKIES_PER_HOST:
            return False
        names.add(name)
        return True


def _set_cookie_name(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[0].strip()


def _first(cookies: BaseCookie[str], limit: int) -> BaseCookie[str]:
    """The cookies, in order, that fit in ``limit`` bytes of header."""
    kept: BaseCookie[str] = BaseCookie()
    size = 0
    for name, morsel in cookies.items():
        size += len(name) + len(morsel.coded_value) + 2
        if size > limit:
            break
        dict.__setitem__(kept, name, morsel)  # the morsel as it is, not parsed again
    return kept


def jar_state(jar: aiohttp.abc.AbstractCookieJar) -> list[dict[str, Any]]:
    """The jar's live cookies as JSON-ready records, for a checkpoint.

    What aiohttp keeps beside each morsel (whether it is host-only, when it expires) is read
    where aiohttp keeps it; a version that keeps it elsewhere saves domain cookies that expire
    at the end of the crawl, which is what a resumed crawl would then have.
    """
    host_only = getattr(jar, "_host_only_cookies", ())
    expirations = getattr(jar, "_expirations", {})
    records = []
    for morsel in jar:  # iterating drops the expired ones first
        domain, path, name = morsel["domain"], morsel["path"], morsel.key
        record: dict[str, Any] = {"name": name, "value": morsel.value, "domain": domain, "path": path}
        if (domain, path, name) in host_only:
            record["host_only"] = True
        expires = expirations.get((domain, path, name))
        if expires is not None:
            record["expires"] = float(expires)
        for flag in ("secure", "httponly"):
            if morsel[flag]:
                record[flag] = True
        records.append(record)
    return records


def restore_jar(jar: aiohttp.abc.AbstractCookieJar, records: list[dict[str, Any]]) -> None:
    """Put back cookies saved by :func:`jar_state`, as if their hosts had just set them."""
    now = time.time()
    for record in records:
        expires = record.get("expires")
        if expires is not None and expires <= now:
            continue  # the site expired it meanwhile: not sent again
        cookie: SimpleCookie = SimpleCookie()
        cookie[record["name"]] = record["value"]
        morsel = cookie[record["name"]]
        domain = str(record["domain"])
        morsel["path"] = record.get("path") or "/"
        if not record.get("host_only"):
            morsel["domain"] = domain
        if expires is not None:
            morsel["expires"] = email.utils.formatdate(expires, usegmt=True)
        for flag in ("secure", "httponly"):
            if record.get(flag):
                morsel[flag] = True
        jar.update_cookies(cookie, URL.build(scheme="http", host=domain.lstrip(".")))
