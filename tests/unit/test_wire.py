"""The frames between the main process and parser workers, through a real pipe."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import pytest

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
