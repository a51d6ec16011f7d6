"""Sitemaps: ``sitemap_urls`` on a spider, and the ``Sitemap:`` lines of robots.txt.

A sitemap request is an ordinary request whose callback is the spider's ``_parse_sitemap``, so
the body is parsed in a parser worker, never in the event loop. It is read as a stream: an XML
body is fed to expat 64 KiB at a time and each ``<loc>`` becomes a request as soon as its
element ends, so no list of a sitemap's URLs is ever built. What it may be:

* an XML ``<urlset>``: each ``<url><loc>`` becomes a request for ``sitemap_callback``
  (``parse`` by default), with ``meta["sitemap_lastmod"]`` when the entry has a ``<lastmod>``;
* an XML ``<sitemapindex>``: each ``<sitemap><loc>`` is fetched as a sitemap in turn, at most
  ``sitemap_max_depth`` indexes deep;
* gzip (a ``.xml.gz`` file, whatever its Content-Type): inflated first, at most 64 MiB;
* plain text: one URL a line;
* a robots.txt (its path says so): its ``Sitemap:`` lines are fetched as sitemaps.

A DOCTYPE is refused (sitemaps have none; entity declarations are how XML bombs are built). A
sitemap that is not well-formed yields what came before the error, then fails the page with
the error (counted as ``callback_error``).
"""

from __future__ import annotations

import logging
import re
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..http import Request, decode_body

if TYPE_CHECKING:
    from ..http import Response

__all__ = [
    "SITEMAP_CALLBACK",
    "SitemapEntry",
    "iter_sitemap",
    "robots_sitemaps",
    "sitemap_requests",
    "start_sitemap_requests",
]

log = logging.getLogger("crawlkit.sitemaps")

SITEMAP_CALLBACK = "_parse_sitemap"
MAX_SITEMAP_SIZE = 64 * 1024 * 1024  # the protocol's limit is 50 MB uncompressed
_CHUNK = 64 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_SITEMAP_LINE = re.compile(r"^\s*sitemap\s*:\s*(\S+)", re.IGNORECASE | re.MULTILINE)

# (kind, url, lastmod): kind is "url" (a page) or "sitemap" (another sitemap to fetch).
SitemapEntry = tuple[str, str, str | None]


class SitemapError(ValueError):
    """A sitemap that cannot be read (not well-formed XML, a DOCTYPE)."""


def _local(name: str) -> str:
    # expat with namespace_separator=" " names elements "namespace-uri local-name".
    return name.rpartition(" ")[2].lower()


def _iter_xml(body: bytes) -> Iterator[SitemapEntry]:
    found: list[SitemapEntry] = []
    stack: list[str] = []
    text: list[str] = []
    entry: dict[str, str] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(_local(name))
        if stack[-1] in ("loc", "lastmod"):
            text.clear()

    def end(name: str) -> None:
        tag = stack.pop()
        if tag in ("loc", "lastmod") and stack and stack[-1] in ("url", "sitemap"):
            entry[tag] = "".join(text).strip()
        elif tag in ("url", "sitemap") and len(stack) == 1:
            loc = entry.pop("loc", "")
            if loc:
                found.append(("url" if tag == "url" else "sitemap", loc, entry.get("lastmod") or None))
            entry.clear()

    def chars(data: str) -> None:
        if stack and stack[-1] in ("loc", "lastmod"):
            text.append(data)

    def doctype(*_: Any) -> None:
        raise SitemapError("a sitemap with a DOCTYPE is refused (entities are how XML bombs are built)")

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    view = memoryview(body)
    try:
        for offset in range(0, len(body), _CHUNK):
            parser.Parse(bytes(view[offset : offset + _CHUNK]), False)
            yield from found
            found.clear()
        parser.Parse(b"", True)
    except xml.parsers.expat.ExpatError as exc:
        yield from found
        raise SitemapError(f"not a well-formed sitemap: {exc}") from None
    yield from found


def _iter_text(body: bytes) -> Iterator[SitemapEntry]:
    for line in body.decode("utf-8", errors="replace").splitlines():
        url = line.strip()
        if url.startswith(("http://", "https://")):
            yield ("url", url, None)


def robots_sitemaps(text: str) -> list[str]:
    """The URLs of the ``Sitemap:`` lines of a robots.txt."""
    return [m.group(1) for m in _SITEMAP_LINE.finditer(text)]


def iter_sitemap(url: str, body: bytes) -> Iterator[SitemapEntry]:
    """The entries of one sitemap body (already Content-Decoded), as they are parsed."""
    if body[:2] == _GZIP_MAGIC:
        body = decode_body(body, "gzip", MAX_SITEMAP_SIZE)
    if urlsplit(url).path.endswith("/robots.txt"):
        for loc in robots_sitemaps(body.decode("utf-8", errors="replace")):
            yield ("sitemap", loc, None)
        return
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        yield from _iter_xml(body)
    else:
        yield from _iter_text(body)


def sitemap_requests(spider: Any, response: Response) -> Iterator[Request]:
    """The requests a sitemap response yields: its pages, and the sitemaps it points to."""
    depth = int(response.meta.get("sitemap_depth", 0))
    max_depth = int(getattr(spider, "sitemap_max_depth", 3))
    callback = getattr(spider, "sitemap_callback", "parse") or "parse"
    for kind, loc, lastmod in iter_sitemap(response.url, response.body):
        try:
            url = response.urljoin(loc) if "://" not in loc else loc
        except ValueError:
            continue
        if kind == "sitemap":
            if depth >= max_depth:
                log.warning(
                    "%s: sitemap %s is deeper than sitemap_max_depth (%d); skipped",
                    response.url,
                    url,
                    max_depth,
                )
                continue
            yield sitemap_request(url, depth + 1)
        else:
            yield Request(url, callback, meta={"sitemap_lastmod": lastmod} if lastmod else None)


def sitemap_request(url: str, depth: int = 0) -> Request:
    """A request for a sitemap (or a robots.txt read for its ``Sitemap:`` lines)."""
    # allow_binary: a .xml.gz is often served as application/x-gzip. Never rendered: a browser
    # would hand back its view of the XML, not the file.
    return Request(url, SITEMAP_CALLBACK, meta={"sitemap_depth": depth, "allow_binary": True}, render=False)


def start_sitemap_requests(spider: Any) -> Iterable[Request]:
    """The first sitemap requests of a spider: ``sitemap_urls``, and robots.txt files to read.

    With ``sitemap_follow_robots``, the robots.txt of each start URL's and sitemap URL's
    origin is read for its ``Sitemap:`` lines too.
    """
    urls: list[str] = list(getattr(spider, "sitemap_urls", ()) or ())
    if getattr(spider, "sitemap_follow_robots", False):
        origins = []
        for url in [*getattr(spider, "start_urls", ()), *urls]:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                origin = f"{parts.scheme}://{parts.netloc}/robots.txt"
                if origin not in origins and origin not in urls:
                    origins.append(origin)
        urls += origins
    return [sitemap_request(url) for url in urls]
