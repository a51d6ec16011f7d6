"""The Chromium guard removes an abandoned profile even while something still writes into it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from crawlkit.fetch._chromium_guard import _remove


def test_a_profile_written_to_while_it_is_removed_is_gone_in_the_end(tmp_path: Path) -> None:
    profile = tmp_path / "playwright_chromiumdev_profile-x"
    (profile / "Default").mkdir(parents=True)
    stop = time.monotonic() + 0.3
    written = threading.Event()

    def helper_still_flushing() -> None:
        # Files keep coming for 0.3 s, into a "Default" made again if it is gone: one rmtree is not
        # enough. Once the profile itself is gone the helper's writes fail, as a real one's would
        # (making the profile again would be a folder no removal could ever be sure of).
        n = 0
        while time.monotonic() < stop:
            try:
                (profile / "Default").mkdir(exist_ok=True)
                (profile / "Default" / f"journal-{n}").write_bytes(b"x" * 1024)
            except (FileNotFoundError, FileExistsError):  # raced with the removal
                if not profile.exists():
                    break
                continue
            n += 1
            written.set()
        written.set()

    writer = threading.Thread(target=helper_still_flushing)
    writer.start()
    written.wait()
    try:
        _remove(str(profile), patience=5.0)
    finally:
        writer.join()
    assert not profile.exists()


def test_removal_gives_up_after_its_patience(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    profile.mkdir()
    running = True

    def writer() -> None:
        while running:
            profile.mkdir(exist_ok=True)
            time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        began = time.monotonic()
        _remove(str(profile), patience=0.2)
        assert time.monotonic() - began < 2.0  # bounded: the guard must exit
    finally:
        running = False
        thread.join()
