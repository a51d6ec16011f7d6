"""The benchmark shop written to a folder, as ``bench/site.py`` does for nginx to serve.

Writes ``index.html``, ``catalogue/page-K.html``, ``catalogue/product-ID.html``, a gzip
``.html.gz`` beside every page (for nginx's ``gzip_static``), ``expected.jsonl`` (the item each
product page must yield) and ``manifest.json`` (written last: its presence marks a complete site).
The bytes are the same for the same (n, seed), whatever the number of processes.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from multiprocessing import Pool

from ._bench_catalogue import PER_PAGE
from ._bench_html import index_page, listing_page, product_page

__all__ = ["GENERATOR", "write_bench_site"]

GENERATOR = "crawlkit-bench-site/1"


def write_page(out: str, rel: str, data: bytes) -> tuple[int, int]:
    """Write ``rel`` and ``rel.gz``; return (plain bytes, gzip bytes)."""
    packed = gzip.compress(data, compresslevel=6, mtime=0)
    path = os.path.join(out, rel)
    with open(path, "wb") as f:
        f.write(data)
    with open(path + ".gz", "wb") as f:
        f.write(packed)
    return len(data), len(packed)


def _write_products(job: tuple[str, int, int, int, int]) -> list[tuple[dict[str, object], int, int]]:
    out, seed, n, lo, hi = job
    done = []
    for pid in range(lo, hi):
        data, expected = product_page(seed, n, pid)
        raw, packed = write_page(out, f"catalogue/product-{pid}.html", data)
        done.append((expected, raw, packed))
    return done


def _write_listings(job: tuple[str, int, int, int, int, int]) -> list[tuple[int, int]]:
    out, seed, n, pages, lo, hi = job
    return [
        write_page(out, f"catalogue/page-{k}.html", listing_page(seed, n, k, pages)) for k in range(lo, hi)
    ]


def write_bench_site(out: str, n: int, seed: int, jobs: int) -> dict[str, object]:
    """Write the shop of ``n`` products into ``out`` with ``jobs`` processes; returns the manifest."""
    started = time.perf_counter()
    os.makedirs(os.path.join(out, "catalogue"), exist_ok=True)
    manifest_path = os.path.join(out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # its presence marks a complete site
    pages = (n + PER_PAGE - 1) // PER_PAGE
    step = 200
    product_jobs = [(out, seed, n, lo, min(n + 1, lo + step)) for lo in range(1, n + 1, step)]
    listing_jobs = [(out, seed, n, pages, lo, min(pages + 1, lo + step)) for lo in range(1, pages + 1, step)]
    raw_total, gz_total = write_page(out, "index.html", index_page(seed, n))
    if jobs > 1:
        with Pool(jobs) as pool:
            listing_sizes = pool.map(_write_listings, listing_jobs)
            product_results = pool.map(_write_products, product_jobs)
    else:
        listing_sizes = [_write_listings(j) for j in listing_jobs]
        product_results = [_write_products(j) for j in product_jobs]
    for chunk in listing_sizes:
        for raw, packed in chunk:
            raw_total += raw
            gz_total += packed
    expected: list[dict[str, object]] = []
    product_sizes: list[int] = []
    for result in product_results:
        for item, raw, packed in result:
            expected.append(item)
            product_sizes.append(raw)
            raw_total += raw
            gz_total += packed
    skus = [str(e["sku"]) for e in expected]
    if len(set(skus)) != len(skus):
        raise SystemExit("two products got the same SKU; use another --seed")
    with open(os.path.join(out, "expected.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in expected)
    paths = (
        ["/index.html"]
        + [f"/catalogue/page-{k}.html" for k in range(1, pages + 1)]
        + [f"/catalogue/product-{pid}.html" for pid in range(1, n + 1)]
    )
    product_sizes.sort()
    manifest: dict[str, object] = {
        "generator": GENERATOR,
        "n": n,
        "seed": seed,
        "per_page": PER_PAGE,
        "listing_pages": pages,
        "pages_total": len(paths),
        "bytes_html": raw_total,
        "bytes_gzip": gz_total,
        "product_bytes": {
            "min": product_sizes[0],
            "median": product_sizes[len(product_sizes) // 2],
            "max": product_sizes[-1],
        },
        "skus": sorted(skus),
        "paths": paths,
    }
    with open(manifest_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f)
    os.replace(manifest_path + ".tmp", manifest_path)
    print(f"site.py: {len(paths)} pages in {time.perf_counter() - started:.1f} s -> {out}", file=sys.stderr)
    return manifest
