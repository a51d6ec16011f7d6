#!/usr/bin/env python3
"""Generate the benchmark's static shop site, deterministically.

    python bench/site.py OUT --n 10000 --seed 42 [--jobs 2]

Writes under OUT:

* ``index.html`` -- home page; its ``a.view-all`` leads to ``catalogue/page-1.html``
* ``catalogue/page-K.html`` -- listings of 20 products (``article.product_pod h3 a``), chained by
  ``li.next a``; each also has an ``a.view-all`` back to page 1 (a duplicate the crawler must drop)
* ``catalogue/product-ID.html`` -- product pages of 30-60 KB: a head with meta, link and script
  tags, a ~110-link navigation menu, breadcrumb, ``div.product_main`` (``h1``, ``p.price_color``,
  ``p.availability`` with irregular whitespace), ``table#product-info`` (one row is SKU),
  description, reviews, 5 related products (``section.related-products article.product_pod h3 a``),
  footer; titles and text carry non-ASCII characters and HTML entities
* ``X.html.gz`` beside every page (gzip -6, for nginx's ``gzip_static``)
* ``expected.jsonl`` -- the item every product page must yield
* ``manifest.json`` -- written last: n, seed, SKUs, every page path, sizes

Everything depends only on (n, seed): each page has its own ``random.Random`` seeded with a
string, so the bytes are the same whatever ``--jobs`` is.

Crawl contract (what every contender does): start at ``/index.html``; follow ``li.next a``,
``a.view-all`` and ``article.product_pod h3 a``, de-duplicated; from every page that has
``div.product_main`` emit ``{url, title, price, sku, availability, n_related}``. Every other link
(menu, breadcrumb, footer, reviews, images) points at pages that do not exist.

The generator itself lives in ``crawlkit.demo`` (the benchmark's page shape of the demo shop), so
this script runs with the Python that has crawlkit installed (bench/runner.py uses crawlkit's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from crawlkit.demo import BENCH_N_RELATED, write_bench_site


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output folder")
    ap.add_argument("--n", type=int, default=10_000, help="number of products (default 10000)")
    ap.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes (default: one per core)")
    args = ap.parse_args(argv)
    if args.n < BENCH_N_RELATED + 1:
        ap.error(f"--n must be at least {BENCH_N_RELATED + 1}")
    manifest = write_bench_site(args.out, args.n, args.seed, args.jobs)
    print(json.dumps({k: v for k, v in manifest.items() if k not in ("skus", "paths")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
