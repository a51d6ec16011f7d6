"""robots.txt kept compressed for a later parse: what comes back is what went in."""

from __future__ import annotations

import zlib

import pytest

from crawlkit.fetch._politeness import _pack

SMALL = "User-agent: *\nDisallow: /private/\nDisallow: /cart/\n"
LARGE = "User-agent: *\n" + "".join(f"Disallow: /path/{i}/*?q=\n" for i in range(1_000))
UNICODE = "User-agent: *\nDisallow: /caf\u00e9/\nDisallow: /\u65e5\u672c/\n"


@pytest.mark.parametrize("text", [SMALL, LARGE, UNICODE, ""])
def test_a_packed_file_inflates_to_its_text(text: str) -> None:
    assert zlib.decompress(_pack(text)).decode("utf-8") == text


def test_a_large_file_is_kept_in_a_fraction_of_its_size() -> None:
    packed = _pack(LARGE)
    assert len(packed) < len(LARGE.encode()) // 8
