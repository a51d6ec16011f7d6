"""Memory and throughput of the SQLite frontier with a million pending requests.

Pushes ``--requests`` requests (default 1,000,000) over ``--hosts`` hosts into a SqliteFrontier in
a temporary directory, in chunks, with a checkpoint every ``--checkpoint-every`` requests; then
leases and acks pages: first leaf pages (no new links), then pages that each bring ``--links``
new links. Prints throughput, main-thread CPU per page, and the peak RSS of the process.

    python bench/frontier_memory.py [--requests 1000000] [--hosts 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from crawlkit.frontier import HostLimits
from crawlkit.frontier.sqlite import SqliteFrontier
from crawlkit.http import Request


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def url(i: int, hosts: int) -> str:
    return f"https://www.site{i % hosts}.example/section/{i // hosts}/page.html?id={i}"


async def bench(args: argparse.Namespace, directory: Path) -> None:
    frontier = SqliteFrontier(
        directory / "frontier.sqlite",
        lambda host: HostLimits(concurrency=args.per_host),
        spider_name="bench",
        cache_mib=args.cache_mib,
    )
    await frontier.open()
    start_rss = rss_mib()
    print(f"RSS after open: {start_rss:.1f} MiB")

    # -- push -------------------------------------------------------------------------------
    # Requests and their fingerprints are made outside the timings: in a crawl, parser worker
    # processes make them. "main thread" is the event loop's CPU time inside frontier calls.
    total = args.requests
    wall = cpu = 0.0
    since_checkpoint = 0
    for start in range(0, total, args.chunk):
        batch = [Request(url(i, args.hosts)) for i in range(start, min(total, start + args.chunk))]
        for r in batch:
            r.fingerprint  # noqa: B018
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        await frontier.push(batch)
        since_checkpoint += len(batch)
        if since_checkpoint >= args.checkpoint_every:
            await frontier.checkpoint(0, b"{}", False)
            since_checkpoint = 0
        wall += time.perf_counter() - wall0
        cpu += time.thread_time() - cpu0
    await frontier.checkpoint(0, b"{}", True)
    stats = frontier.statistics()
    print(
        f"push: {total:,} requests in {wall:.1f} s = {total / wall:,.0f}/s "
        f"(main thread {cpu / total * 1e6:.1f} us/request); pending={stats.pending:,}"
    )
    print(
        f"RSS after push: {rss_mib():.1f} MiB (+{rss_mib() - start_rss:.1f}), peak {peak_rss_mib():.1f} MiB"
    )

    made = 0

    def links(n: int) -> list[Request]:
        nonlocal made
        out = []
        for _ in range(n):
            child = Request(f"https://www.site{made % args.hosts}.example/new/{made}", depth=1)
            child.fingerprint  # noqa: B018
            out.append(child)
            made += 1
        return out

    # -- lease and ack, one page at a time ----------------------------------------------------
    async def sequential(pages: int, n_links: int) -> None:
        done = 0
        wall = cpu = 0.0
        since = 0
        while done < pages:
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            batch = await frontier.lease(min(args.lease_batch, pages - done))
            wall += time.perf_counter() - wall0
            cpu += time.thread_time() - cpu0
            if not batch:
                raise SystemExit(f"nothing to lease after {done} pages; stats {frontier.statistics()}")
            for request in batch:
                children = links(n_links)
                wall0, cpu0 = time.perf_counter(), time.thread_time()
                await frontier.ack(request, children)
                wall += time.perf_counter() - wall0
                cpu += time.thread_time() - cpu0
            done += len(batch)
            since += len(batch)
            if since >= args.checkpoint_every // 10:
                await frontier.checkpoint(0, b"{}", True)
                since = 0
        print(
            f"sequential lease+ack, {n_links} new links/page: {pages / wall:,.0f} pages/s, "
            f"main thread {cpu / pages * 1e6:.0f} us/page; RSS {rss_mib():.1f} MiB"
        )

    # -- lease and ack as the engine does: a feeder and many concurrent workers ---------------
    async def concurrent(pages: int, n_links: int, workers: int) -> None:
        queue: asyncio.Queue[Request | None] = asyncio.Queue()
        in_flight = 0
        done = 0
        wake = asyncio.Event()

        async def worker() -> None:
            nonlocal in_flight, done
            while (request := await queue.get()) is not None:
                await asyncio.sleep(0)  # the fetch and the parse would be here
                await frontier.ack(request, links(n_links))
                in_flight -= 1
                done += 1
                wake.set()

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        leased = 0
        while leased < pages:
            free = min(workers - in_flight, pages - leased)
            batch = await frontier.lease(free) if free > 0 else []
            for request in batch:
                queue.put_nowait(request)
            in_flight += len(batch)
            leased += len(batch)
            if not batch:
                wake.clear()
                await wake.wait()
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - wall0
        cpu = time.thread_time() - cpu0  # here: everything on the loop, links made included
        await frontier.checkpoint(0, b"{}", True)
        print(
            f"concurrent ({workers} workers) lease+ack, {n_links} new links/page: "
            f"{done / wall:,.0f} pages/s, event loop {cpu / done * 1e6:.0f} us/page "
            f"(making the links included); RSS {rss_mib():.1f} MiB"
        )

    await sequential(args.leaf_pages, 0)
    await sequential(args.link_pages, args.links)
    await concurrent(args.leaf_pages, 0, 32)
    await concurrent(args.link_pages, args.links, 32)
    stats = frontier.statistics()
    print(f"stats: {stats}")
    await frontier.close()
    size = sum(entry.stat().st_size for entry in os.scandir(directory)) / 2**20
    print(f"database: {size:.0f} MiB; peak RSS of the process: {peak_rss_mib():.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--chunk", type=int, default=10_000)
    parser.add_argument("--checkpoint-every", type=int, default=100_000)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--lease-batch", type=int, default=16)
    parser.add_argument("--leaf-pages", type=int, default=100_000)
    parser.add_argument("--link-pages", type=int, default=30_000)
    parser.add_argument("--links", type=int, default=10)
    parser.add_argument("--cache-mib", type=int, default=16, help="SQLite page cache")
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temporary directory)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="crawlkit-frontier-bench-", dir=args.dir))
    try:
        asyncio.run(bench(args, directory))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
