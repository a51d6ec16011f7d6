"""The frames between the main process and parser workers, through a real pipe."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crawlkit.errors import ParseError
from crawlkit.http import Request
from crawlkit.parsing._callbacks import ParseOutcome
from crawlkit.parsing._wire import FrameReader, encode, encode_parts


@pytest.fixture
def pipe() -> Iterator[tuple[FrameReader, int]]:
    read_end, write_end = os.pipe()
    try:
        yield FrameReader(read_end), write_end
    finally:
        os.close(read_end)
        with contextlib.suppress(OSError):  # the test closed it
            os.close(write_end)


def test_poll_returns_at_once_with_nothing_when_nothing_has_come(pipe: tuple[FrameReader, int]) -> None:
    reader, _ = pipe
    assert reader.poll() == []
    assert not reader.ended


def test_a_frame_that_comes_in_pieces_is_returned_whole_once_complete(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    frame = encode({"body": b"x" * 10_000, "n": 1})
    for cut in (3, 8, 5_000):
        os.write(write_end, frame[:cut])
        assert reader.poll() == []
        frame = frame[cut:]
    os.write(write_end, frame)
    assert reader.poll() == [{"body": b"x" * 10_000, "n": 1}]
    assert reader.poll() == []


def test_several_frames_in_one_read_come_out_in_order(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    os.write(write_end, encode("a") + encode(["b"]) + encode(("c", 3))[:-1])
    assert reader.poll() == ["a", ["b"]]
    os.write(write_end, encode(("c", 3))[-1:])
    assert reader.poll() == [("c", 3)]


def test_wait_blocks_until_a_frame_comes(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    frame = encode("late")

    def write_later() -> None:
        time.sleep(0.2)
        os.write(write_end, frame[:4])
        time.sleep(0.1)
        os.write(write_end, frame[4:])

    writer = threading.Thread(target=write_later)
    began = time.monotonic()
    writer.start()
    try:
        assert reader.wait() == ["late"]
    finally:
        writer.join()
    assert time.monotonic() - began >= 0.3


def test_the_end_of_input_ends_the_wait_and_drops_a_partial_frame(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    os.write(write_end, encode("whole") + encode("cut short")[:6])
    os.close(write_end)
    assert reader.wait() == ["whole"]
    assert reader.wait() == []
    assert reader.ended


def test_a_frame_larger_than_the_pipe_arrives_whole(pipe: tuple[FrameReader, int]) -> None:
    # A batch of big bodies: many times the pipe's capacity, so the writer blocks until the
    # reader drains it, and the frame comes in dozens of reads.
    reader, write_end = pipe
    body = bytes(range(256)) * (12 * 1024)  # 3 MiB
    frame = encode([body, body[::-1]])

    def write_all() -> None:
        view = memoryview(frame)
        while view:
            view = view[os.write(write_end, view) :]

    writer = threading.Thread(target=write_all)
    writer.start()
    try:
        frames = reader.wait()
    finally:
        writer.join()
    assert frames == [[body, body[::-1]]]
    assert not reader.ended


def test_a_frame_in_two_parts_written_by_one_writev_reads_as_one(pipe: tuple[FrameReader, int]) -> None:
    # What the parser pool sends: the header and the pickle apart, never joined in memory.
    reader, write_end = pipe
    tasks = [{"body": bytes([n]) * 20_000, "n": n} for n in range(3)]
    header, payload = encode_parts(tasks)
    assert len(header) == 8
    threading.Thread(target=os.writev, args=(write_end, [header, payload]), daemon=True).start()
    deadline = time.monotonic() + 10
    frames: list[object] = []
    while not frames and time.monotonic() < deadline:
        frames = reader.poll()
    assert frames == [tasks]


def _outcome_with_every_field_set() -> ParseOutcome:
    request = Request("http://a.test/next", "parse_item", meta={"k": 1}, errback="failed")
    values: dict[str, Any] = {
        "items": [b'{"a":1}\n'],
        "items_are_json": True,
        "requests": [request],
        "error": ParseError("it broke", "http://a.test/"),
        "filtered": {"offsite": 2},
        "close_reason": "enough",
        "unserializable": 3,
        "invalid": ["price: not a number"],
        "duplicates": 4,
        "unsendable_requests": ["http://a.test/lock"],
        "unsendable_items": 5,
        "blocked": "cloudflare",
    }
    assert set(values) == {f.name for f in dataclasses.fields(ParseOutcome)}  # a new field is set too
    return ParseOutcome(**values)


def test_an_outcome_crosses_the_pipe_with_every_field(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    sent = _outcome_with_every_field_set()
    os.write(write_end, encode((7, 0, [sent, ParseOutcome([], False, [])], False)))
    [(batch_id, index, [got, empty], is_part)] = reader.wait()
    assert (batch_id, index, is_part) == (7, 0, False)
    for field in dataclasses.fields(ParseOutcome):
        if field.name not in ("requests", "error"):  # compared below: they have no __eq__
            assert getattr(got, field.name) == getattr(sent, field.name), field.name
    [request] = got.requests
    assert (request.url, request.callback, request.meta, request.errback) == (
        "http://a.test/next",
        "parse_item",
        {"k": 1},
        "failed",
    )
    assert got.error is not None
    assert (type(got.error), str(got.error), got.error.url) == (ParseError, str(sent.error), "http://a.test/")
    assert empty == ParseOutcome([], False, [])


def test_poll_sees_the_end_of_input(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    os.write(write_end, encode("last"))
    os.close(write_end)
    assert reader.poll() == ["last"]
    assert reader.poll() == []  # the end is seen by the read after the last bytes
    assert reader.ended


def test_poll_sees_the_end_of_input_with_nothing_before_it(pipe: tuple[FrameReader, int]) -> None:
    reader, write_end = pipe
    assert reader.poll() == []
    assert not reader.ended
    os.close(write_end)
    assert reader.poll() == []
    assert reader.ended
