"""Which responses are text a callback can parse, and which are binary files.

Decided from the ``Content-Type`` header alone, in the event loop, before the body is read: a
crawl that meets a link to a 700 MB ISO image must not download it to find out. A response
without a Content-Type is taken as text (HTML is what an unlabelled page usually is).
"""

from __future__ import annotations

__all__ = ["BINARY_TYPE_PREFIXES", "is_binary_type"]

# Text-like families: parsed as usual.
_TEXT_PREFIXES = ("text/",)
_TEXT_TYPES = frozenset(
    {
        "application/xhtml+xml",
        "application/xml",
        "application/json",
        "application/ld+json",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "application/rss+xml",
        "application/atom+xml",
        "application/x-www-form-urlencoded",
    }
)
# Everything else with one of these prefixes is binary; another unknown application/* type is
# too (pdf, zip, octet-stream, msword, vnd.*), unless it is +xml or +json.
BINARY_TYPE_PREFIXES = ("image/", "audio/", "video/", "font/", "model/", "application/")


def is_binary_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names a binary file (an image, a PDF, an archive, media...)."""
    if not content_type:
        return False
    mime = content_type.partition(";")[0].strip().lower()
    if not mime or mime.startswith(_TEXT_PREFIXES) or mime in _TEXT_TYPES:
        return False
    if mime.endswith(("+xml", "+json")):
        return False
    return mime.startswith(BINARY_TYPE_PREFIXES)
