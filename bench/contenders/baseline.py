#!/usr/bin/env python3
"""The "no framework" reference: the benchmark crawl hand-written in about a hundred lines.

    python bench/contenders/baseline.py START_URL OUT.jsonl [--stats STATS.json] [--concurrency 64]

One asyncio process: one aiohttp session (gzip inflated by aiohttp), N tasks taking URLs from an
``asyncio.Queue``, selectolax's Lexbor parser run inline on the event loop (one core), a ``set``
for de-duplication and orjson for the JSON lines. No retries beyond a few for connection errors,
no politeness, no persistence. Crawl contract: see bench/site.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, BinaryIO
from urllib.parse import urljoin

import aiohttp
import orjson
from selectolax.lexbor import LexborHTMLParser

PAGINATION = "li.next a, a.view-all"
PRODUCTS = "article.product_pod h3 a"


def extract(url: str, body: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The item of a page (None if it is not a product page) and the absolute links to follow."""
    tree = LexborHTMLParser(body)
    main = tree.css_first("div.product_main")
    if main is None:
        links = [a.attributes.get("href") for a in tree.css(PAGINATION) + tree.css(PRODUCTS)]
        return None, [urljoin(url, href) for href in links if href]
    related = tree.css("section.related-products " + PRODUCTS)
    sku = None
    for row in tree.css("table#product-info tr"):
        th = row.css_first("th")
        if th is not None and th.text(strip=True) == "SKU":
            td = row.css_first("td")
            sku = td.text(strip=True) if td is not None else None
            break
    h1 = main.css_first("h1")
    price = main.css_first("p.price_color")
    availability = main.css_first("p.availability")
    item = {
        "url": url,
        "title": h1.text(strip=True) if h1 is not None else None,
        "price": price.text(strip=True) if price is not None else None,
        "sku": sku,
        "availability": " ".join(availability.text().split()) if availability is not None else None,
        "n_related": len(related),
    }
    hrefs = [a.attributes.get("href") for a in related]
    return item, [urljoin(url, href) for href in hrefs if href]


async def crawl(start_url: str, out: BinaryIO, concurrency: int) -> dict[str, Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    seen = {start_url}
    queue.put_nowait(start_url)
    counts = {"pages": 0, "items": 0, "errors": 0, "retries": 0}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"Accept-Encoding": "gzip", "User-Agent": "crawlkit-bench-baseline"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

        async def get(url: str) -> bytes:
            for attempt in range(3):
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            raise RuntimeError(f"HTTP {resp.status}")
                        return body
                except (aiohttp.ClientError, TimeoutError):
                    if attempt == 2:
                        raise
                    counts["retries"] += 1
                    await asyncio.sleep(0.1)
            raise AssertionError("unreachable")

        async def worker() -> None:
            while True:
                url = await queue.get()
                try:
                    body = await get(url)
                    counts["pages"] += 1
                    item, links = extract(url, body)
                    if item is not None:
                        out.write(orjson.dumps(item) + b"\n")
                        counts["items"] += 1
                    for link in links:
                        if link not in seen:
                            seen.add(link)
                            queue.put_nowait(link)
                except Exception as exc:
                    counts["errors"] += 1
                    print(f"baseline: {url}: {exc!r}", file=sys.stderr)
                finally:
                    queue.task_done()

        started = time.perf_counter()
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await queue.join()
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {**counts, "crawl_s": round(elapsed, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("start_url")
    ap.add_argument("out")
    ap.add_argument("--stats", help="write the counters as JSON here")
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    with open(args.out, "wb") as out:
        stats = asyncio.run(crawl(args.start_url, out, args.concurrency))
    if args.stats:
        with open(args.stats, "w", encoding="utf-8") as f:
            json.dump(stats, f)
    print(json.dumps(stats), file=sys.stderr)
    return 1 if stats["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
