"""Pages committed together: those that come while a commit waits join it, whoever waits.

The commit step's own rules, on a real event loop, frontier and output file: each page is acked
exactly once, its items written once, and no page waits for ever when the task that was to commit
it is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson

from crawlkit import Spider
from crawlkit.core._commit import CommitStep
from crawlkit.core._stats import CrawlStats
from crawlkit.exporters import Exporter, PipelineChain, exporter_for, spec_for
from crawlkit.frontier import HostLimits, MemoryFrontier, PushResult
from crawlkit.http import Request
from crawlkit.parsing import ParseOutcome, item_to_json
from crawlkit.settings import Settings


class _GatedFrontier(MemoryFrontier):
    """A memory frontier whose first ``ack_many`` waits for ``gate``; it records every batch."""

    def __init__(self) -> None:
        super().__init__(host_limits=lambda host: HostLimits(concurrency=100, delay=0.0))
        self.gate = asyncio.Event()
        self.batches: list[list[str]] = []

    async def ack_many(self, acks: Sequence[tuple[Request, Sequence[Request]]]) -> PushResult:
        self.batches.append([request.url for request, _ in acks])
        if len(self.batches) == 1:
            await self.gate.wait()
        return await super().ack_many(acks)


class _Spider(Spider):
    name = "commit-group"


async def _leased(frontier: MemoryFrontier, n: int) -> list[Request]:
    requests = [Request(f"http://a.test/{i}") for i in range(n)]
    await frontier.push(requests)
    leased = await frontier.lease(n)
    assert sorted(r.url for r in leased) == sorted(r.url for r in requests)
    return sorted(leased, key=lambda r: int(r.url.rpartition("/")[2]))


def _outcome(request: Request) -> ParseOutcome:
    return ParseOutcome([item_to_json({"url": request.url})], True, [])


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _commit_step(tmp_path: Path, frontier: MemoryFrontier) -> tuple[CommitStep, Exporter]:
    exporter = exporter_for([(spec_for(tmp_path / "out.jsonl", Settings()), "overwrite")])
    await exporter.open()
    spider = _Spider()
    return CommitStep(frontier, exporter, PipelineChain([], spider), spider, CrawlStats()), exporter


def test_pages_that_come_during_a_commit_are_committed_together_once(tmp_path: Path) -> None:
    async def main() -> tuple[list[list[str]], list[bytes]]:
        frontier = _GatedFrontier()
        step, exporter = await _commit_step(tmp_path, frontier)
        first, *rest = await _leased(frontier, 6)
        leader = asyncio.create_task(step.commit(first, _outcome(first)))
        await _settle()  # the first page's ack waits at the gate
        others = [asyncio.create_task(step.commit(r, _outcome(r))) for r in rest]
        await _settle()
        assert step.waiting  # the five wait for the first commit to end
        frontier.gate.set()
        await asyncio.wait_for(asyncio.gather(leader, *others), 10)
        await step.checkpoint(seeded=True)
        await exporter.close()
        return frontier.batches, (tmp_path / "out.jsonl").read_bytes().splitlines()

    batches, lines = asyncio.run(main())
    # One ack for the first page, one for the five that came while it was acked.
    assert [len(batch) for batch in batches] == [1, 5]
    assert sorted(orjson.loads(line)["url"] for line in lines) == [f"http://a.test/{i}" for i in range(6)]


def test_a_cancelled_committer_hands_its_pages_on(tmp_path: Path) -> None:
    async def main() -> tuple[list[list[str]], list[bytes], MemoryFrontier]:
        frontier = _GatedFrontier()
        step, exporter = await _commit_step(tmp_path, frontier)
        first, second, *rest = await _leased(frontier, 5)
        leader = asyncio.create_task(step.commit(first, _outcome(first)))
        await _settle()  # the first commit holds the lock, its ack at the gate
        committer = asyncio.create_task(step.commit(second, _outcome(second)))
        await _settle()  # the second page waits for the lock, to commit what comes meanwhile
        followers = [asyncio.create_task(step.commit(r, _outcome(r))) for r in rest]
        await _settle()
        committer.cancel()
        await asyncio.gather(committer, return_exceptions=True)
        assert committer.cancelled()
        frontier.gate.set()
        # Without a hand-on, the three would wait for the cancelled task for ever.
        await asyncio.wait_for(asyncio.gather(leader, *followers), 10)
        await step.checkpoint(seeded=True)
        await exporter.close()
        return frontier.batches, (tmp_path / "out.jsonl").read_bytes().splitlines(), frontier

    batches, lines, frontier = asyncio.run(main())
    assert batches == [["http://a.test/0"], ["http://a.test/2", "http://a.test/3", "http://a.test/4"]]
    # The cancelled page was neither acked nor written: it is still leased, to go back.
    assert sorted(orjson.loads(line)["url"] for line in lines) == [
        "http://a.test/0",
        "http://a.test/2",
        "http://a.test/3",
        "http://a.test/4",
    ]
    assert frontier.statistics().leased == 1


def test_a_checkpoint_commits_the_waiting_pages_and_wakes_them(tmp_path: Path) -> None:
    async def main() -> list[list[str]]:
        frontier = _GatedFrontier()
        step, exporter = await _commit_step(tmp_path, frontier)
        first, *rest = await _leased(frontier, 4)
        leader = asyncio.create_task(step.commit(first, _outcome(first)))
        await _settle()
        checkpoint = asyncio.create_task(step.checkpoint(seeded=False))
        await _settle()  # the checkpoint waits for the lock, ahead of the pages to come
        others = [asyncio.create_task(step.commit(r, _outcome(r))) for r in rest]
        await _settle()
        frontier.gate.set()
        await asyncio.wait_for(asyncio.gather(leader, checkpoint, *others), 10)
        await exporter.close()
        return frontier.batches

    batches = asyncio.run(main())
    assert [len(batch) for batch in batches] == [1, 3]
