"""What telling blocks from content costs per page, against what parsing the page costs.

    .venv/bin/python bench/classify_cost.py            # the readability corpus
    .venv/bin/python bench/classify_cost.py --corpus PATH

The classifier (``crawlkit.fetch.Classifier``) runs in the event loop once per attempt; the parse
runs in a parser worker. Each page of the corpus (``../shared/corpus/readability`` by default;
without it, the script says so and exits 0) is classified as a 200 ``text/html`` answer: as it is,
gzipped, and with the size gate off (every page's prefix searched, as if every page were small).
The parse is selectolax/Lexbor's, the least a callback does. Best of 5 rounds, µs per page.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from crawlkit.fetch import Classifier

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "readability"
HTML = [("Content-Type", "text/html; charset=utf-8"), ("Server", "nginx"), ("Content-Length", "1")]


def per_page(pages: list[bytes], fn: Callable[[bytes], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            for body in pages:
                fn(body)
        best = min(best, (time.perf_counter() - started) / (repeat * len(pages)))
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.html")) if args.corpus.is_dir() else []
    if not files:
        print(f"no corpus at {args.corpus}: nothing to measure")
        return 0
    pages = [f.read_bytes() for f in files]
    zipped = [gzip.compress(p, 6) for p in pages]
    gated, open_ = Classifier(), Classifier(challenge_max_bytes=1 << 40)
    gz = [("Content-Encoding", "gzip"), *HTML]
    labels = {str(gated.response(200, HTML, p).label) for p in pages}
    rows = [
        ("classify, as shipped", per_page(pages, lambda p: gated.response(200, HTML, p), 20)),
        ("classify, size gate off", per_page(pages, lambda p: open_.response(200, HTML, p), 20)),
        ("classify gzip, as shipped", per_page(zipped, lambda p: gated.response(200, gz, p, "gzip"), 20)),
        ("classify gzip, size gate off", per_page(zipped, lambda p: open_.response(200, gz, p, "gzip"), 20)),
        ("parse (Lexbor) + one css_first", per_page(pages, lambda p: LexborHTMLParser(p).css_first("a"), 2)),
    ]
    print(f"{len(pages)} pages, labels: {sorted(labels)}")
    for name, us in rows:
        print(f"{name:34} {us:9.1f} µs/page")
    return 0


if __name__ == "__main__":
    sys.exit(main())
