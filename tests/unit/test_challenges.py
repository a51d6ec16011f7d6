"""challenge_vendor: the anchors are found in one pass, and what it finds is what a search for each
marker in turn finds (the reference below is the function as it was before that pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawlkit.http import _challenges as challenges
from crawlkit.http._challenges import PREFIX_BYTES, challenge_vendor

PAGES = Path(__file__).parent.parent / "fixtures" / "challenges"


def _reference(text: bytes) -> str | None:
    """Every anchor searched for on its own, as challenge_vendor did."""
    title = challenges._title(text)
    for words, vendor in challenges._TITLES:
        if words in title:
            return vendor
    if len(text) <= challenges._SMALL_PAGE:
        for marker in challenges._SMALL:
            if marker.needle in text:
                return marker.vendor
    widget: str | None = None
    for anchor, markers in challenges._ANCHORED.items():
        if anchor not in text:
            continue
        for marker in markers:
            if marker.needle in text:
                if not marker.widget:
                    return marker.vendor
                widget = widget or marker.vendor
    if widget is not None and challenges._challenge_wording(text.lower(), title):
        return widget
    return None


@pytest.mark.parametrize("path", sorted(PAGES.glob("*.html")), ids=lambda p: p.stem)
def test_fixture_pages_get_the_reference_verdict(path: Path) -> None:
    text = path.read_bytes()[:PREFIX_BYTES]
    assert challenge_vendor(text) == _reference(text)


# Pieces of challenge pages, to be put together in any order: every marker and anchor, wording,
# titles, pieces that overlap ("captchallenge" holds both anchors in 13 bytes), near misses.
_PIECES = [
    *(marker.needle for markers in challenges._ANCHORED.values() for marker in markers),
    *(marker.needle for marker in challenges._SMALL),
    *challenges._ANCHORED,
    b"captchallenge",
    b"capt",
    b"chall",
    b"CAPTCHA",
    b"Challenge",
    b"<title>",
    b"</title>",
    b"<TITLE>Just a moment...</TITLE>",
    b"verify you are human",
    b"robot",
    b"<p>Lorem ipsum dolor sit amet</p>",
    b" " * 1500,
]


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=12))
def test_any_page_gets_the_reference_verdict(pieces: list[bytes]) -> None:
    text = b"".join(pieces)[:PREFIX_BYTES]
    assert challenge_vendor(text) == _reference(text)


@pytest.mark.parametrize(
    ("page", "vendor"),
    [
        (b"<html>" + b"x" * 5000 + b"captchallenge window._cf_chl_opt", "cloudflare"),
        (b"<html>" + b"x" * 5000 + b'captcha id="px-captcha"', "perimeterx"),
        (b"<html>" + b"x" * 5000 + b"g-recaptcha verify you are human", "recaptcha"),
        (b"<html>" + b"x" * 5000 + b"g-recaptcha, and no words of a challenge", None),
        (b"<html>" + b"x" * 5000 + b"an ordinary page", None),
    ],
)
def test_markers_behind_an_anchor_are_found(page: bytes, vendor: str | None) -> None:
    assert challenge_vendor(page) == vendor
