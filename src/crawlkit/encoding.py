"""Content-Encoding decompression and charset detection for response bodies.

Both run where the body is parsed (a parser worker, normally), never in the event loop.
"""

from __future__ import annotations

import codecs
import re
import zlib

from .errors import ResponseTooLarge

try:  # brotli is optional: without it, crawlkit does not advertise "br"
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

__all__ = ["accept_encoding", "decode_body", "detect_encoding"]

_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# The WHATWG Encoding Standard maps these labels to windows-1252, as every browser does:
# pages that say latin-1 routinely contain cp1252 quotes and dashes.
_WHATWG_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252", "latin-1": "cp1252"}


def accept_encoding() -> str:
    """The Accept-Encoding header value for the decoders available here."""
    return "gzip, deflate, br" if brotli is not None else "gzip, deflate"


def decode_body(body: bytes, content_encoding: str, max_size: int) -> bytes:
    """Undo ``Content-Encoding``, refusing to inflate past ``max_size`` bytes (gzip bombs)."""
    coding = content_encoding.strip().lower()
    if not coding or coding == "identity" or not body:
        return body
    if coding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
        try:
            inflater = zlib.decompressobj(wbits)
            out = inflater.decompress(body, max_size + 1)
        except zlib.error:
            if coding != "deflate":
                raise
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            out = inflater.decompress(body, max_size + 1)
        if len(out) > max_size:
            raise ResponseTooLarge(f"decompressed body exceeds {max_size} bytes")
        return out
    if coding == "br" and brotli is not None:
        out = brotli.decompress(body)
        if len(out) > max_size:
            raise ResponseTooLarge(f"decompressed body exceeds {max_size} bytes")
        return bytes(out)
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")


def _normalise(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _WHATWG_ALIASES.get(name, name)


def charset_from_content_type(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return _normalise(value)
    return None


def detect_encoding(content_type: str, body: bytes) -> str:
    """The body's encoding: HTTP header charset, then BOM, then ``<meta charset>``, then UTF-8."""
    found = charset_from_content_type(content_type)
    if found:
        return found
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    match = _META_CHARSET.search(body, 0, 4096)
    if match:
        found = _normalise(match.group(1).decode("ascii", "replace"))
        # A page cannot really be UTF-16 if an ASCII meta tag was readable in it.
        if found and not found.startswith("utf-16"):
            return found
    return "utf-8"
