"""The turns that order requests of one priority: callbacks take turns, each first in, first out."""

from __future__ import annotations

import pytest

from crawlkit.frontier._turns import Turns


def test_one_callback_is_first_in_first_out() -> None:
    turns = Turns()
    assert [turns.next("parse_item") for _ in range(4)] == [1, 2, 3, 4]


def test_a_callback_with_no_backlog_goes_just_ahead_of_one_with_a_backlog() -> None:
    turns = Turns()
    backlog = [turns.next("parse_item") for _ in range(20)]
    turns.served(backlog[0])
    assert turns.next(None) == 2  # right after the item being served
    turns.served(2)
    assert turns.next("parse") == 3  # None and "parse" are one callback
    assert turns.next("parse_item") == 21  # behind its own backlog


def test_a_callback_that_was_idle_does_not_claim_turns_from_the_past() -> None:
    turns = Turns()
    for _ in range(3):
        turns.next("parse_a")
    turns.served(3)
    assert turns.next("parse_b") == 4  # not 1: it starts at the turn being served


def test_served_only_moves_forward() -> None:
    turns = Turns()
    turns.served(5)
    turns.served(2)  # a higher-priority request with an older turn
    assert turns.serving == 5


def test_state_round_trips_and_drops_callbacks_with_nothing_ahead() -> None:
    turns = Turns()
    for _ in range(5):
        turns.next("parse_item")
    turns.next("parse")
    turns.served(3)
    text = turns.dumps()
    assert text == '{"last":{"parse_item":5},"serving":3}'
    again = Turns.loads(text)
    assert again.next("parse_item") == 6
    assert again.next("parse") == 4


@pytest.mark.parametrize("text", ["", None, "{", "[]", '{"serving": "x", "last": {}}', '{"last": {}}'])
def test_an_unreadable_state_starts_afresh(text: str | None) -> None:
    turns = Turns.loads(text)
    assert turns.serving == 0
    assert turns.next("parse") == 1
