"""The engine's hand-off of leased requests to its worker tasks: first in, first out, none lost."""

from __future__ import annotations

import asyncio

from crawlkit.core._handoff import Handoff
from crawlkit.http import Request


def _requests(n: int) -> list[Request]:
    return [Request(f"http://a.test/{i}") for i in range(n)]


def test_waiting_tasks_take_requests_in_order() -> None:
    async def main() -> list[str]:
        handoff = Handoff()
        handoff.loop = asyncio.get_running_loop()
        got: list[str] = []

        async def take() -> None:
            request = await handoff.get()
            assert request is not None
            got.append(request.url)

        takers = [asyncio.create_task(take()) for _ in range(3)]
        await asyncio.sleep(0)
        for request in _requests(3):
            handoff.put_nowait(request)
        await asyncio.wait_for(asyncio.gather(*takers), 5)
        assert handoff.empty()
        return got

    assert asyncio.run(main()) == ["http://a.test/0", "http://a.test/1", "http://a.test/2"]


def test_a_task_woken_and_cancelled_leaves_its_request_to_another() -> None:
    async def main() -> str | None:
        handoff = Handoff()  # no loop set: it finds the running one
        first = asyncio.create_task(handoff.get())
        second = asyncio.create_task(handoff.get())
        await asyncio.sleep(0)
        (request,) = _requests(1)
        handoff.put_nowait(request)  # wakes the first ...
        first.cancel()  # ... which is cancelled before it runs
        await asyncio.gather(first, return_exceptions=True)
        assert first.cancelled()
        taken = await asyncio.wait_for(second, 5)
        return taken.url if taken is not None else None

    assert asyncio.run(main()) == "http://a.test/0"


def test_requests_put_before_anyone_waits_are_kept_for_get_nowait() -> None:
    handoff = Handoff()
    requests = _requests(2)
    for request in requests:
        handoff.put_nowait(request)
    handoff.put_nowait(None)
    assert [handoff.get_nowait(), handoff.get_nowait(), handoff.get_nowait()] == [*requests, None]
    assert handoff.empty()
