"""What the demo server sends for a path: one ``Page`` per answer, and the helpers both shop shapes share.

Both shapes (the bookshop of the demo and the tests, the benchmark's homewares shop) build their
pages as ``Page`` values, so one aiohttp application serves either of them.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["HTML_UTF8", "NOT_FOUND", "Page", "escape", "html_page", "pounds", "redirect_page"]

HTML_UTF8 = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Page:
    """One HTTP answer: what the server sends for a path, exactly (``body`` is already encoded)."""

    status: int
    content_type: str
    body: bytes
    location: str | None = None


def pounds(pence: int) -> str:
    return f"£{pence // 100}.{pence % 100:02d}"


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def html_page(text: str, encoding: str = "utf-8") -> Page:
    if encoding == "utf-8":
        return Page(200, HTML_UTF8, text.encode())
    # No charset in the header on purpose: a crawler must find it in the <meta> tag.
    return Page(200, "text/html", text.encode(encoding))


def redirect_page(status: int, target: str) -> Page:
    body = f'<!DOCTYPE html>\n<title>Moved</title>\n<p>Moved to <a href="{target}">{target}</a>.</p>\n'
    return Page(status, HTML_UTF8, body.encode(), location=target)


NOT_FOUND = Page(
    404,
    HTML_UTF8,
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>\n'
    b'<body><h1>Page not found</h1><p><a href="/">Back to the shop</a></p></body></html>\n',
)
