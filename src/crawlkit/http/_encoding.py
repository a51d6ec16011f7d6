"""Content-Encoding decompression and charset detection for response bodies.

Both run where the body is parsed (a parser worker, normally), never in the event loop; only
``decoded_prefix`` (a bounded start of the body, for the block classifier) runs there.
"""

from __future__ import annotations

import codecs
import re
import types
import zlib
from typing import cast

import cchardet

from ..errors import ResponseTooLarge
from ._charsets import codec_for_label

# Intel's igzip (python-isal) inflates the same streams in less than half zlib's time: about
# 48 against 113 microseconds for a 45 KB page here, a tenth of a parser worker's work per page.
# Its API is zlib's, bounded output included; where it has no wheel, zlib does the job.
_zlib: types.ModuleType
_INFLATE_ERRORS: tuple[type[Exception], ...]
try:
    from isal import isal_zlib

    _zlib = isal_zlib
    # isal's stubs declare ``error`` as an instance; it is the exception class.
    _INFLATE_ERRORS = (zlib.error, cast(type[Exception], isal_zlib.error))
except ImportError:  # pragma: no cover - depends on the platform
    _zlib = zlib
    _INFLATE_ERRORS = (zlib.error,)

try:  # brotli is optional: without it, crawlkit does not advertise "br"
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

# zstd (RFC 8878) is what Chrome and Firefox advertise now, and some CDNs send it when asked. Python
# has it built in from 3.14 only, so it comes from the optional zstandard package (the "zstd" extra):
# without it, crawlkit does not advertise "zstd", and a server has no reason to send it.
_zstd: types.ModuleType | None
try:
    import zstandard

    _zstd = zstandard
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

__all__ = ["accept_encoding", "decode_body", "decoded_prefix", "detect_encoding", "detect_legacy"]

_PRESCAN = 4096  # where a <meta charset> belongs, and where nearly every page has it
_HEAD_LIMIT = 1 << 18  # how far to look for the end of a long <head>
_HEAD_END = re.compile(rb"</head\s*>|<body[\s>]", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.+-]+)""", re.IGNORECASE)
# How much of an undeclared, not-UTF-8 body the detector reads: enough bytes of text to tell
# legacy encodings apart, and a bound on its time for a huge page.
_DETECT_LIMIT = 1 << 16
# Detector names that are no WHATWG label, for the encodings browsers know them as.
_DETECTED_ALIASES = {"uhc": "euc-kr", "cp949": "euc-kr", "iso-2022-jp": "iso-2022-jp"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def accept_encoding() -> str:
    """The Accept-Encoding header value for the decoders available here."""
    codings = ["gzip", "deflate"]
    if brotli is not None:
        codings.append("br")
    if _zstd is not None:
        codings.append("zstd")
    return ", ".join(codings)


def decode_body(body: bytes, content_encoding: str, max_size: int) -> bytes:
    """Undo ``Content-Encoding``, refusing to inflate past ``max_size`` bytes (gzip bombs).

    Raises :class:`ResponseTooLarge` past the limit, and ``ValueError`` for a corrupt body or an
    unsupported coding, whichever library did the decoding.
    """
    coding = content_encoding.strip().lower()
    if not coding or coding == "identity" or not body:
        return body
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate(body, 16 + zlib.MAX_WBITS, max_size)
        if coding == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS, max_size)
            except _INFLATE_ERRORS:
                return _inflate(body, -zlib.MAX_WBITS, max_size)  # raw deflate, as some servers send
        if coding == "br" and brotli is not None:
            return _unbrotli(body, max_size)
        if coding == "zstd" and _zstd is not None:
            return _unzstd(_zstd, body, max_size)
    except _DECODE_ERRORS as exc:
        raise ValueError(f"corrupt {coding} body: {exc}") from exc
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")


def decoded_prefix(body: bytes, content_encoding: str, size: int) -> bytes:
    """At most ``size`` bytes of the decoded body, for a look at its start (the block
    classifier's): never more is inflated, so a bomb costs nothing, and a corrupt or unsupported
    body gives ``b""`` rather than an error (the parser reports it).

    Compressed input is fed a slice at a time: zlib keeps a copy of the input it has not used,
    and copying a whole large body to inflate its first 8 KB would cost more than the rest.
    """
    coding = content_encoding.strip().lower()
    if not coding or coding == "identity":
        return body[:size]
    try:
        if coding in ("gzip", "x-gzip"):
            return _inflate_prefix(body, 16 + zlib.MAX_WBITS, size)
        if coding == "deflate":
            try:
                return _inflate_prefix(body, zlib.MAX_WBITS, size)
            except _INFLATE_ERRORS:
                return _inflate_prefix(body, -zlib.MAX_WBITS, size)
        if coding == "br" and brotli is not None:
            return bytes(brotli.Decompressor().process(body[: size * 2], output_buffer_limit=size))[:size]
    except Exception:  # a corrupt body is the parser's to report; its start tells nothing
        return b""
    return b""


def _inflate_prefix(body: bytes, wbits: int, size: int) -> bytes:
    inflater = _zlib.decompressobj(wbits)
    out = b""
    step = size // 2  # HTML inflates 3-10 times: one slice is nearly always enough
    for at in range(0, len(body), step):
        out += inflater.decompress(body[at : at + step], size - len(out))
        if len(out) >= size or inflater.eof:
            break
    return out


_DECODE_ERRORS: tuple[type[Exception], ...] = (
    *_INFLATE_ERRORS,
    *((brotli.error,) if brotli is not None else ()),
    *((_zstd.ZstdError,) if _zstd is not None else ()),
)


def _too_large(max_size: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"decompressed body exceeds {max_size} bytes")


def _inflate(body: bytes, wbits: int, max_size: int) -> bytes:
    """Inflate every member of a (possibly multi-member) stream, never past ``max_size + 1``."""
    parts: list[bytes] = []
    size = 0
    data = body
    while data:
        inflater = _zlib.decompressobj(wbits)
        chunk = inflater.decompress(data, max_size + 1 - size)
        size += len(chunk)
        parts.append(chunk)
        if size > max_size or inflater.unconsumed_tail:
            raise _too_large(max_size)
        data = inflater.unused_data if inflater.eof else b""
        if data and not data.strip(b"\x00"):  # trailing padding some servers send
            break
    return b"".join(parts)


def _unbrotli(body: bytes, max_size: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = decompressor.process(body, output_buffer_limit=max_size + 1)
    if len(out) > max_size:
        raise _too_large(max_size)
    while not decompressor.can_accept_more_data() and not decompressor.is_finished():
        more = decompressor.process(b"", output_buffer_limit=max_size + 1 - len(out))
        if not more:
            break
        out += more
        if len(out) > max_size:
            raise _too_large(max_size)
    return bytes(out)


def _unzstd(zstd: types.ModuleType, body: bytes, max_size: int) -> bytes:
    """Decompress every frame, never holding more than ``max_size + 1`` bytes of output."""
    reader = zstd.ZstdDecompressor().stream_reader(body, read_across_frames=True)
    parts: list[bytes] = []
    size = 0
    while chunk := reader.read(min(1 << 20, max_size + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > max_size:
            raise _too_large(max_size)
    return b"".join(parts)


def _normalise(label: str | None) -> str | None:
    return codec_for_label(label) if label else None


def charset_from_content_type(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return _normalise(value)
    return None


def detect_encoding(content_type: str, body: bytes) -> str:
    """The body's encoding: BOM, then HTTP header charset, then ``<meta charset>``, then a guess.

    The order is the WHATWG one browsers follow: a byte order mark outranks a server's header.
    Where nothing declares a charset, a body that is valid UTF-8 is UTF-8; one that is not is
    a legacy page, and its encoding is detected from its bytes, as browsers do.
    """
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    found = charset_from_content_type(content_type)
    if found:
        return found
    match = _META_CHARSET.search(body, 0, _PRESCAN)
    if match is None and len(body) > _PRESCAN:
        # Browsers still honour a <meta charset> they meet later in the <head> (the HTML
        # Standard's "change the encoding"), after kilobytes of inline styles or scripts.
        head_end = _HEAD_END.search(body, 0, _HEAD_LIMIT)
        end = head_end.start() if head_end is not None else _HEAD_LIMIT  # no end: all head so far
        if end > _PRESCAN:
            match = _META_CHARSET.search(body, _PRESCAN - 256, end)
    if match:
        found = _normalise(match.group(1).decode("ascii", "replace"))
        # A page cannot really be UTF-16 if an ASCII meta tag was readable in it.
        if found and not found.startswith("utf-16"):
            return found
    if body.isascii():
        return "utf-8"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return detect_legacy(body)
    return "utf-8"


def detect_legacy(body: bytes) -> str:
    """The encoding of a body that declares none and is not UTF-8, detected from its bytes.

    Only encodings browsers know are returned (their WHATWG supersets: ISO-8859-1 is read as
    windows-1252); a guess outside them, or no guess, is UTF-8 with replacement characters.
    """
    guess = cchardet.detect(body[:_DETECT_LIMIT]).get("encoding")
    if not guess:
        return "utf-8"
    label = guess.lower()
    label = _DETECTED_ALIASES.get(label, label)
    codec = codec_for_label(label)
    if codec is None or codec.startswith("utf"):
        return "utf-8"  # not UTF-8 after all (it failed to decode), nor anything else known
    return codec
