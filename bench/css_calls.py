"""What ``response.css()`` costs a spider per call, on the 130 real pages of the readability corpus.

    .venv/bin/python bench/css_calls.py                          # this tree
    .venv/bin/python bench/css_calls.py --compare /tmp/old/src   # against another tree's src/

Each page is parsed once (a spider's callbacks share ``response.tree``), then each operation runs
over every page, ``--rounds`` times; the table gives the best round's microseconds per call,
summed over pages and divided by the page count. With ``--compare``, the other tree runs the same
operations in its own process, rounds alternated, and the table shows both and their ratio.
Operations are those spiders do on every page: take every link's ``href``, the title's text, the
paragraphs' text; the parsel-style forms (``::attr``, ``::text``) where the tree has them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "readability"

OPS: dict[str, Callable[[Any], object]] = {
    "css('a') + attributes['href']": lambda r: [n.attributes.get("href") for n in r.css("a")],
    "css_first('title').text()": lambda r: n.text(strip=True) if (n := r.css_first("title")) else None,
    "css('p') + text()": lambda r: [n.text() for n in r.css("p")],
    "css('a::attr(href)').getall()": lambda r: r.css("a::attr(href)").getall(),
    "css('title::text').get()": lambda r: r.css("title::text").get(),
    "css_first('title::text')": lambda r: r.css_first("title::text"),
    # For scale: parsing the page, which every callback that selects pays once.
    "parse the page (reference)": lambda r: type(r.tree)(r.body),
}


def measure(corpus: Path, rounds: int) -> dict[str, float]:
    from crawlkit import Request, Response

    pages = []
    for path in sorted(corpus.glob("*.html")):
        url = f"http://bench.test/{path.name}"
        response = Response(url, 200, {"Content-Type": "text/html"}, path.read_bytes(), Request(url))
        response.tree  # noqa: B018 - parsed once, outside the timing
        pages.append(response)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, op in OPS.items():
            try:
                op(pages[0])
            except (ValueError, AttributeError):
                continue  # a tree without the parsel forms
            start = time.perf_counter()
            for response in pages:
                op(response)
            elapsed = (time.perf_counter() - start) / len(pages) * 1e6
            best[name] = min(best.get(name, elapsed), elapsed)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--compare", type=Path, help="another tree's src/ directory to measure too")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's answer
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"no corpus at {args.corpus}; nothing to measure")
        return 0
    if args.json:
        print(json.dumps(measure(args.corpus, args.rounds)))
        return 0

    def child(src: Path | None, rounds: int) -> dict[str, float]:
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        cmd = [sys.executable, __file__, "--json", "--corpus", str(args.corpus), "--rounds", str(rounds)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{src or 'this tree'} failed:\n{done.stderr}")
        out = done.stdout
        return {k: float(v) for k, v in json.loads(out).items()}

    this: dict[str, float] = {}
    other: dict[str, float] = {}
    # Alternate the two trees in slices, so that a busy moment of the machine hits both alike.
    for _ in range(max(1, args.rounds // 5)):
        for acc, src in ((this, None), (other, args.compare)) if args.compare else ((this, None),):
            for name, value in child(src, 5).items():
                acc[name] = min(acc.get(name, value), value)
    print(f"{len(list(args.corpus.glob('*.html')))} pages, µs per call (best of {args.rounds} rounds)\n")
    if args.compare:
        print("| operation | this tree | other tree | this / other |\n| --- | ---: | ---: | ---: |")
        for name, value in this.items():
            old = other.get(name)
            if old:
                print(f"| `{name}` | {value:.1f} | {old:.1f} | {value / old:.2f} |")
            else:
                print(f"| `{name}` | {value:.1f} | - | - |")
    else:
        print("| operation | µs per call |\n| --- | ---: |")
        for name, value in this.items():
            print(f"| `{name}` | {value:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
