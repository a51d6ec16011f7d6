"""The in-flight byte budget: waits, wake-ups, and the way out of a deadlock between readers."""

from __future__ import annotations

import asyncio

from crawlkit.fetch._budget import ByteBudget


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_reader_waits_for_room_and_a_release_lets_it_in() -> None:
    async def main() -> None:
        budget = ByteBudget(100)
        first = budget.hold()
        await first.grow(80)
        first.done_reading()
        second = budget.hold()
        task = asyncio.create_task(second.grow(50))
        await settle()
        assert not task.done() and budget.used == 80  # the complete body holds the room
        first.release()
        await asyncio.wait_for(task, 1)
        assert budget.used == 50 and budget.peak == 80 and budget.waits == 1

    asyncio.run(main())


def test_readers_that_block_each_other_let_the_oldest_finish() -> None:
    # Two bodies of unknown length, read chunk by chunk, each holding half the budget and each
    # needing more: waiting would never end, so the oldest reader goes past the limit.
    async def main() -> None:
        budget = ByteBudget(100)
        old, young = budget.hold(), budget.hold()
        await old.grow(50)
        await young.grow(50)
        young_more = asyncio.create_task(young.grow(30))
        await settle()
        assert not young_more.done()
        await asyncio.wait_for(old.grow(30), 1)  # the oldest reader does not wait
        assert budget.used == 130
        old.done_reading()
        await settle()
        assert not young_more.done()  # a complete body holds room now: that room will come back
        old.release()
        await asyncio.wait_for(young_more, 1)
        young.release()
        assert budget.used == 0 and budget.complete == 0

    asyncio.run(main())


def test_no_limit_only_counts() -> None:
    async def main() -> None:
        budget = ByteBudget(0)
        holds = [budget.hold() for _ in range(10)]
        for hold in holds:
            await hold.grow(1000)
        assert budget.used == budget.peak == 10_000 and budget.waits == 0
        for hold in holds:
            hold.release()
            hold.release()  # twice is harmless
        assert budget.used == 0

    asyncio.run(main())


def test_a_short_chunk_gives_back_what_it_did_not_use() -> None:
    async def main() -> None:
        budget = ByteBudget(100)
        hold = budget.hold()
        await hold.grow(64)
        hold.shrink(60)
        assert budget.used == 4 == hold.size

    asyncio.run(main())
