"""What a parser worker drops as sent before, and what it must keep (crawlkit.parsing._sentlinks)."""

from __future__ import annotations

import pytest

from crawlkit.http import Request
from crawlkit.parsing._callbacks import ParseOutcome
from crawlkit.parsing._sentlinks import SentLinks


def outcome(*urls: str, depth: int = 1, dont_filter: bool = False) -> ParseOutcome:
    requests = []
    for url in urls:
        request = Request(f"http://127.0.0.1:1{url}", dont_filter=dont_filter)
        request.depth = depth
        requests.append(request)
    return ParseOutcome([], True, requests)


def paths(o: ParseOutcome) -> list[str]:
    return [r.url.removeprefix("http://127.0.0.1:1") for r in o.requests]


def test_links_sent_before_are_dropped_and_counted() -> None:
    links = SentLinks(100)
    first = outcome("/a", "/b")
    links.drop_sent([first])
    links.note_sent([first])
    second = outcome("/a", "/c", "/b#frag", "/B")  # the fragment is not part of the fingerprint
    links.drop_sent([second])
    assert paths(second) == ["/c", "/B"]
    assert second.duplicates == 2 and first.duplicates == 0


def test_a_link_is_kept_once_within_one_frame() -> None:
    links = SentLinks(100)
    batch = [outcome("/a", "/a"), outcome("/b", "/a")]
    links.drop_sent(batch)
    assert [paths(o) for o in batch] == [["/a"], ["/b"]]
    assert [o.duplicates for o in batch] == [1, 1]


def test_links_of_a_frame_that_was_not_sent_are_not_remembered() -> None:
    links = SentLinks(100)
    links.drop_sent([outcome("/a")])  # the frame failed: note_sent() is never called
    again = outcome("/a")
    links.drop_sent([again])
    assert paths(again) == ["/a"] and len(links) == 0


def test_dont_filter_requests_are_never_dropped_nor_remembered() -> None:
    links = SentLinks(100)
    sent = outcome("/a", dont_filter=True)
    links.note_sent([sent])
    again = outcome("/a", "/a", dont_filter=True)
    links.drop_sent([again])
    assert paths(again) == ["/a", "/a"] and len(links) == 0


def test_links_over_the_depth_limit_are_left_to_the_frontier() -> None:
    # The frontier counts a link over the limit as filtered by depth, and does not remember it:
    # dropping it here would count it as a duplicate instead.
    links = SentLinks(100, depth_limit=2)
    deep = outcome("/a", depth=3)
    links.drop_sent([deep])
    links.note_sent([deep])
    assert len(links) == 0
    shallow = outcome("/a", depth=2)
    links.note_sent([shallow])
    deep_again = outcome("/a", depth=3)
    links.drop_sent([deep_again])
    assert paths(deep_again) == ["/a"] and deep_again.duplicates == 0
    within = outcome("/a", depth=1)
    links.drop_sent([within])
    assert paths(within) == [] and within.duplicates == 1


def test_memory_is_two_generations_and_the_oldest_is_forgotten() -> None:
    links = SentLinks(4)
    for i in range(9):
        links.note_sent([outcome(f"/{i}")])
        assert len(links) <= 8
    # /0 to /3 filled the first generation, /4 to /7 the second; /8 started a third, and the first
    # was forgotten. A forgotten link is sent again (the frontier drops it), never lost.
    probe = outcome(*(f"/{i}" for i in range(9)))
    links.drop_sent([probe])
    assert paths(probe) == ["/0", "/1", "/2", "/3"] and probe.duplicates == 5


def test_generations_turn_over_within_one_frame() -> None:
    links = SentLinks(4)
    links.note_sent([outcome("/0", "/1", "/2"), outcome("/3", "/4", "/5"), outcome("/6", "/7", "/8")])
    assert len(links) == 5  # /4 to /7 old, /8 young: /0 to /3 forgotten
    probe = outcome(*(f"/{i}" for i in range(9)))
    links.drop_sent([probe])
    assert paths(probe) == ["/0", "/1", "/2", "/3"] and probe.duplicates == 5
    links.note_sent([outcome("/9")])
    assert len(links) == 6  # the young generation taken on after the turn is the one kept


def test_a_generation_must_hold_something() -> None:
    with pytest.raises(ValueError):
        SentLinks(0)
