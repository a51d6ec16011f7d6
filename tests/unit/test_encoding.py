"""crawlkit.http._encoding: charset detection and Content-Encoding decoding."""

from __future__ import annotations

import codecs
import gzip
import tracemalloc
import zlib

import brotli
import pytest

from crawlkit.errors import FetchError, ResponseTooLarge
from crawlkit.http import Request, Response
from crawlkit.http import _charsets as charsets
from crawlkit.http._encoding import accept_encoding, charset_from_content_type, decode_body, detect_encoding

TEXT = "Zoë’s café — “naïve” façade"  # noqa: RUF001
PAGE = f"<!DOCTYPE html><html><head><title>t</title></head><body><p>{TEXT}</p></body></html>"

# -- detect_encoding: BOM, then header, then <meta>, then UTF-8 --------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=utf-8", "utf-8"),
        ("text/html; charset=UTF-8", "utf-8"),
        ("text/html; charset=utf8", "utf-8"),
        ('text/html; charset="utf-8"', "utf-8"),
        ("text/html;charset=windows-1252", "cp1252"),
        ("text/html; charset=iso-8859-2", "iso8859-2"),
        ("text/html; charset=shift_jis", "cp932"),
        ("text/html; charset=gb2312", "gb18030"),
        ("text/html; foo=bar; Charset=koi8-r", "koi8-r"),
    ],
)
def test_header_charset(content_type: str, expected: str) -> None:
    assert detect_encoding(content_type, b"<html></html>") == expected


@pytest.mark.parametrize(
    "label", ["iso-8859-1", "ISO-8859-1", "iso_8859-1", "latin1", "l1", "us-ascii", "ascii"]
)
def test_whatwg_latin1_and_ascii_mean_cp1252(label: str) -> None:
    assert detect_encoding(f"text/html; charset={label}", b"") == "cp1252"
    assert detect_encoding("text/html", f'<meta charset="{label}">'.encode()) == "cp1252"
    # ...so the quotes and dashes that such pages really contain decode right.
    body = PAGE.encode("cp1252")
    assert body.decode(detect_encoding(f"text/html; charset={label}", body)) == PAGE


def test_charset_from_content_type() -> None:
    assert charset_from_content_type("text/html") is None
    assert charset_from_content_type("") is None
    assert charset_from_content_type("text/html; charset=") is None
    assert charset_from_content_type("text/html; charset=no-such-codec") is None
    assert charset_from_content_type("text/html; charset='windows-1252'") == "cp1252"


def test_bom_beats_header_and_meta() -> None:
    # WHATWG order, as browsers do: a byte order mark is surer than a server's configuration.
    body = codecs.BOM_UTF8 + b'<meta charset="shift_jis">' + TEXT.encode("utf-8")
    assert detect_encoding("text/html; charset=windows-1252", body) == "utf-8"


def test_header_beats_meta() -> None:
    body = b'<meta charset="shift_jis">' + TEXT.encode("cp1252")
    assert detect_encoding("text/html; charset=windows-1252", body) == "cp1252"


@pytest.mark.parametrize(
    ("label", "superset", "text"),
    [
        ("gb2312", "gb18030", "\u9676\u5586"),  # 喆 is GBK, not GB2312
        ("euc-kr", "cp949", "\ub620"),  # 똠 has a two-byte code in cp949 (UHC) only
        ("shift_jis", "cp932", "\u2460"),  # ① is cp932 (Windows-31J), not Shift_JIS proper
        ("iso-8859-9", "cp1254", "\u20ac"),  # € is cp1254 at 0x80
        ("tis-620", "cp874", "\u20ac"),  # € is cp874 at 0x80
    ],
)
def test_labels_decode_as_their_whatwg_superset(label: str, superset: str, text: str) -> None:
    data = text.encode(superset)  # what real pages labelled so contain
    # The narrow codec the label names cannot read it: an error, or control characters.
    assert data.decode(label, errors="replace") != text
    assert detect_encoding(f"text/html; charset={label}", b"") == superset
    body = f'<html><head><meta charset="{label}"><title>'.encode() + data + b"</title></head></html>"
    page = Response("http://a.test/", 200, {"Content-Type": "text/html"}, body, Request("http://a.test/"))
    assert page.css_first("title").text() == text


@pytest.mark.parametrize(
    ("bom", "expected"),
    [
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
)
def test_bom_when_header_has_no_charset(bom: bytes, expected: str) -> None:
    body = bom + b'<meta charset="windows-1252">'
    assert detect_encoding("text/html", body) == expected
    assert detect_encoding("text/html; charset=bogus-label", body) == expected


def test_bom_beats_meta() -> None:
    body = codecs.BOM_UTF8 + b'<html><head><meta charset="iso-8859-2"></head></html>'
    assert detect_encoding("text/html", body) == "utf-8"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta charset="windows-1252">', "cp1252"),
        ("<meta charset=iso-8859-2>", "iso8859-2"),
        ("<META CHARSET='Shift_JIS'>", "cp932"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=gb2312">', "gb18030"),
        ('<meta name="x" charset = "utf-8" >', "utf-8"),
    ],
)
def test_meta_charset(head: str, expected: str) -> None:
    body = f"<!DOCTYPE html><html><head>{head}</head><body>x</body></html>".encode()
    assert detect_encoding("text/html", body) == expected
    assert detect_encoding("", body) == expected


def test_meta_late_in_a_long_head_is_honoured() -> None:
    # Browsers change the encoding when the parser meets it, after any amount of inline style.
    style = b"<style>" + b"p { color: red }\n" * 2000 + b"</style>"
    body = b"<html><head>" + style + b'<meta charset="windows-1252"></head><body>\x93</body></html>'
    assert detect_encoding("text/html", body) == "cp1252"


def test_meta_late_in_a_document_still_in_its_head_is_honoured() -> None:
    # No </head> and no <body> yet: to a browser's parser, everything so far is the head.
    body = b"<!-- " + b"x" * 8192 + b' -->\n<meta charset="iso8859-2">\xb1'
    assert detect_encoding("text/html", body) == "iso8859-2"


def test_meta_in_the_body_past_the_prescan_is_not_honoured() -> None:
    body = b"<html><head></head><body>" + b" " * 5000 + b'<meta charset="windows-1252"></body></html>'
    assert detect_encoding("text/html", body) == "utf-8"


def test_meta_utf16_is_ignored() -> None:
    # An ASCII-readable <meta> cannot be in a real UTF-16 body.
    assert detect_encoding("text/html", b'<meta charset="utf-16">') == "utf-8"
    assert detect_encoding("text/html", b'<meta charset="utf-16le">') == "utf-8"


def test_unknown_meta_label_falls_back_to_utf8() -> None:
    assert detect_encoding("text/html", b'<meta charset="klingon">') == "utf-8"


def test_nothing_declared_means_utf8() -> None:
    assert detect_encoding("text/html", PAGE.encode("utf-8")) == "utf-8"
    assert detect_encoding("", b"") == "utf-8"


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        ("cp1252", "Ein schöner Tag für die Gäste: Käse, Brötchen und Kaffee auf der Terrasse. " * 4),
        (
            "iso-8859-2",
            "Příliš žluťoučký kůň úpěl ďábelské ódy. Na počátku bylo slovo a slovo bylo u Boha. "
            "Všichni lidé rodí se svobodní a sobě rovní co do důstojnosti a práv. " * 3,
        ),
        ("gb18030", "中文网页的内容在这里显示\uff0c我们今天讨论字符编码的检测方法。" * 4),
        ("shift_jis", "日本語のページです。文字コードの検出について説明します。" * 4),
    ],
)
def test_undeclared_legacy_bytes_are_detected(codec: str, text: str) -> None:
    # Nothing declares a charset and the body is not UTF-8: without detection it would come out
    # as UTF-8 with replacement characters, garbled.
    body = f"<html><head><title>t</title></head><body><p>{text}</p></body></html>".encode(codec)
    page = Response("http://a.test/", 200, {"Content-Type": "text/html"}, body, Request("http://a.test/"))
    assert page.encoding != "utf-8"
    assert text in page.text
    assert page.css_first("p").text() == text


def test_detection_only_where_nothing_is_declared() -> None:
    # Declared: the declaration wins, even over bytes that look like another encoding.
    body = "Ein schöner Tag für die Gäste".encode("cp1252")
    assert detect_encoding("text/html; charset=utf-8", body) == "utf-8"
    assert detect_encoding("text/html", b'<meta charset="utf-8">' + body) == "utf-8"
    # Valid UTF-8 is UTF-8, whatever a detector would say of it.
    assert detect_encoding("text/html", "Ein schöner Tag".encode()) == "utf-8"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("utf-8", TEXT),
        ("windows-1252", TEXT),
        ("iso-8859-2", "Příliš žluťoučký kůň úpěl ďábelské ódy"),
        ("shift_jis", "日本語のテキスト：こんにちは、世界"),  # noqa: RUF001
        ("gb2312", "中文文本：你好，世界"),  # noqa: RUF001
    ],
)
def test_detected_encoding_round_trips_text(name: str, text: str) -> None:
    page = f"<html><head><meta charset={name}></head><body>{text}</body></html>"
    body = page.encode(name)
    assert body.decode(detect_encoding("text/html", body)) == page
    assert body.decode(detect_encoding(f"text/html; charset={name}", body)) == page


# -- decode_body ----------------------------------------------------------------------------------

DATA = PAGE.encode("utf-8") * 50
LIMIT = 10 * 1024 * 1024


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(DATA)),
        ("x-gzip", gzip.compress(DATA)),
        ("GZIP", gzip.compress(DATA)),
        (" gzip ", gzip.compress(DATA)),
        ("deflate", zlib.compress(DATA)),
        ("deflate", _raw_deflate(DATA)),
        ("br", brotli.compress(DATA)),
        ("", DATA),
        ("identity", DATA),
    ],
    ids=["gzip", "x-gzip", "GZIP", "padded", "deflate", "raw-deflate", "br", "none", "identity"],
)
def test_decode_body(coding: str, body: bytes) -> None:
    assert decode_body(body, coding, LIMIT) == DATA


def test_multi_member_gzip_is_decoded_whole() -> None:
    # RFC 1952 allows a gzip file of several members (servers that concatenate pre-compressed
    # chunks send them; gzip.decompress() reads them all). decode_body stops after the first
    # member and silently drops the rest of the body.
    body = gzip.compress(b"<html><body>part one, ") + gzip.compress(b"part two</body></html>")
    assert decode_body(body, "gzip", LIMIT) == b"<html><body>part one, part two</body></html>"


def test_decode_empty_body() -> None:
    assert decode_body(b"", "gzip", LIMIT) == b""


def test_decode_exactly_at_the_limit() -> None:
    assert decode_body(gzip.compress(DATA), "gzip", len(DATA)) == DATA
    with pytest.raises(ResponseTooLarge):
        decode_body(gzip.compress(DATA), "gzip", len(DATA) - 1)


def test_unsupported_encoding() -> None:
    with pytest.raises(ValueError, match="compress"):
        decode_body(b"xx", "compress", LIMIT)


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_corrupt_body_raises_one_clear_error(coding: str) -> None:
    with pytest.raises(ValueError, match=f"corrupt {coding} body"):
        decode_body(b"definitely not compressed", coding, LIMIT)


def test_accept_encoding_advertises_brotli_and_zstd() -> None:
    # Both decoders are installed with the dev extra; without zstandard, "zstd" is left out.
    assert accept_encoding() == "gzip, deflate, br, zstd"


def _zeros_gzip(size: int) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    parts = [c.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(c.flush())
    return b"".join(parts)


def test_gzip_bomb_raises_response_too_large_without_inflating_it() -> None:
    bomb = _zeros_gzip(64 * 1024 * 1024)
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge) as info:
            decode_body(bomb, "gzip", 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024  # it stopped at the limit instead of inflating 64 MiB
    assert isinstance(info.value, FetchError)
    assert info.value.reason == "too_large"
    assert "1048576" in str(info.value)


def test_deflate_bomb_raises_response_too_large() -> None:
    bomb = zlib.compress(b"\0" * (16 * 1024 * 1024), 9)
    with pytest.raises(ResponseTooLarge):
        decode_body(bomb, "deflate", 1024 * 1024)
    with pytest.raises(ResponseTooLarge):
        decode_body(_raw_deflate(b"\0" * (16 * 1024 * 1024)), "deflate", 1024 * 1024)


def test_brotli_bomb_raises_response_too_large() -> None:
    bomb = brotli.compress(b"\0" * (16 * 1024 * 1024), quality=5)
    with pytest.raises(ResponseTooLarge):
        decode_body(bomb, "br", 1024 * 1024)


def test_brotli_bomb_is_refused_without_inflating_it() -> None:
    # decode_body promises to refuse "to inflate past max_size bytes (gzip bombs)"; for br it
    # inflates the whole body with brotli.decompress() first and checks the size afterwards, so a
    # few KB of br can make it allocate gigabytes. brotli's Decompressor.process() takes an
    # output_buffer_limit that would let it stop at the limit.
    bomb = brotli.compress(b"\0" * (64 * 1024 * 1024), quality=1)
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge):
            decode_body(bomb, "br", 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB while refusing a 1 MiB limit"


# -- only the labels browsers accept ----------------------------------------------------------------


@pytest.mark.parametrize("label", ["hex", "base64", "rot13", "zlib", "uu", "undefined", "idna"])
def test_a_label_naming_a_non_text_codec_is_ignored_not_a_crash(label: str) -> None:
    body = f'<html><head><meta charset="{label}"><title>caf\u00e9</title></head></html>'.encode()
    page = Response(
        "http://a.test/",
        200,
        {"Content-Type": f"text/html; charset={label}"},
        body,
        Request("http://a.test/"),
    )
    assert page.encoding == "utf-8"
    assert page.css_first("title").text() == "caf\u00e9"


@pytest.mark.parametrize("label", ["utf-7", "unicode_escape", "punycode", "cp037", "latin-1"])
def test_codecs_no_browser_accepts_are_ignored(label: str) -> None:
    assert detect_encoding(f"text/html; charset={label}", b"") == "utf-8"
    # UTF-7 would turn this text into markup.
    assert detect_encoding("text/html", f'<meta charset="{label}">+ADw-b+AD4-'.encode()) == "utf-8"


@pytest.mark.parametrize(
    ("label", "codec"),
    [("windows-874", "cp874"), ("x-sjis", "cp932"), ("windows-31j", "cp932"), ("x-cp1252", "cp1252"),
     ("koi8-ru", "koi8-u"), ("x-mac-roman", "mac-roman"), ("cseuckr", "cp949"), ("iso88591", "cp1252")],
)  # fmt: skip
def test_standard_labels_python_does_not_know_are_known(label: str, codec: str) -> None:
    assert detect_encoding(f"text/html; charset={label}", b"") == codec


def test_every_label_maps_to_a_text_codec() -> None:
    labels = list(charsets._CODEC_OF_LABEL)
    for label in labels:
        codec = charsets.codec_for_label(label)
        assert codec is not None and codecs.lookup(codec)._is_text_encoding, label
    assert len(labels) == 221  # the Standard's labels, less replacement and x-user-defined
