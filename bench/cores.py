"""How much of its cores the machine gives at a given moment: a check taken before each run.

    bench/cores.py              # one check: what the cores did together, against one alone
    bench/cores.py --repeat 10  # ten, a second apart

One process counts loop turns for a fixed time alone, then one process per core counts for the
same time together, then one alone again. The check reports the total counted together over the
better of the two counts alone: about 2.0 on an idle machine with two cores of its own, less when
the cores are shared. On a virtual machine whose cores are threads of a busy host, two busy
processes can get far less than two cores' work, and the guest's clock counts the time its core
was taken away as CPU time spent. A crawl spread over both cores then loses more than one that
keeps to one core (the hand-written loop), and its ratio to that loop says more about the host
than about the crawl. ``bench/run`` takes the check before every run and prints it beside the
run and under the table.
"""

# The output uses typographic characters on purpose (multiplication signs, en dashes).
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

# The counting child: it waits for ``start`` so that the children of one check count over the
# same interval, whenever each of them got going.
_COUNT = """
import sys, time
clock = time.monotonic
start, end = float(sys.argv[1]), float(sys.argv[2])
while clock() < start:
    pass
turns = 0
while clock() < end:
    turns += 1
print(turns)
"""

_SPAWN_S = 0.2  # time for the children to start (Python starts in about 20 ms)


def count_turns(processes: int, duration: float) -> list[int]:
    """The loop turns each of ``processes`` processes counted over the same ``duration`` seconds."""
    start = time.monotonic() + _SPAWN_S
    argv = [sys.executable, "-S", "-c", _COUNT, repr(start), repr(start + duration)]
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    outputs = [child.communicate()[0] for child in children]  # every child ended, even if one failed
    for child in children:
        if child.returncode != 0:
            raise RuntimeError(f"the core check's counting process exited with {child.returncode}")
    return [int(out) for out in outputs]


def cores_given(duration: float = 0.25, cores: int | None = None) -> float:
    """What ``cores`` processes (default: one per CPU) counted together, in units of one alone."""
    before = count_turns(1, duration)[0]
    together = count_turns(cores or os.cpu_count() or 1, duration)
    after = count_turns(1, duration)[0]
    # One process alone is counted before and after, and the better count is what one core
    # does: the host can take a core away during either, and a low count alone would make a
    # disturbed machine look like more than two cores.
    return sum(together) / max(before, after)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="checks to take, a second apart (default 1)")
    ap.add_argument("--duration", type=float, default=0.25, help="seconds each count lasts (default 0.25)")
    args = ap.parse_args(argv)
    checks = []
    for i in range(args.repeat):
        if i:
            time.sleep(1)
        checks.append(cores_given(args.duration))
        print(f"{os.cpu_count()} cores did {checks[-1]:.2f}× the work of one", flush=True)
    if len(checks) > 1:
        print(f"median {statistics.median(checks):.2f}× ({min(checks):.2f}–{max(checks):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
