"""``response.selector``, ``response.xpath()`` and ``response.json()``: what is built only on demand.

parsel (and lxml under it) is imported on the first call, so a spider that selects with CSS
only never loads them: each parser worker stays as small and quick to start as before.
"""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from parsel import Selector

__all__ = ["build_selector", "load_json"]


def _document_type(content_type: str) -> str:
    mime = content_type.partition(";")[0].strip().lower()
    if mime in ("text/xml", "application/xml") or (mime.endswith("+xml") and mime != "application/xhtml+xml"):
        return "xml"
    return "html"


def build_selector(text: str, content_type: str, base_url: str) -> Selector:
    """A parsel ``Selector`` over the decoded page; ``base_url`` is the page's ``<base href>``."""
    from parsel import Selector

    return Selector(text=text, type=_document_type(content_type), base_url=base_url)


def load_json(body: bytes, encoding: str, url: str, content_type: str | None) -> Any:
    """The body parsed as JSON, or a ``ValueError`` that names the page and what it was."""
    if body.startswith(codecs.BOM_UTF8):
        body = body[3:]
    data: bytes | str = body
    if encoding not in ("utf-8", "ascii", "us-ascii") and not body.isascii():
        data = body.decode(encoding, errors="replace")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        kind = f"Content-Type {content_type}" if content_type else "no Content-Type"
        start = body[:60].decode("utf-8", errors="replace")
        raise ValueError(
            f"response.json(): {url} is not JSON ({kind}; {len(body)} bytes starting {start!r}): {exc}"
        ) from None
