"""The allocator tuning keeps freed memory for reuse instead of faulting it in again per page."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt() is glibc's"
)

# A page's worth of churn, scaled up: 8 MiB of blocks allocated, written and freed, 50 times.
_CHURN = textwrap.dedent(
    """
    import resource, sys
    if sys.argv[1] == "tuned":
        from crawlkit.guards._tuning import tune_malloc
        assert tune_malloc()

    def churn():
        blocks = [bytearray(256 << 10) for _ in range(32)]
        del blocks

    churn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        churn()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True, timeout=60
    )
    return int(out.stdout)


def test_tuned_allocator_reuses_freed_memory_instead_of_faulting_it_in_again() -> None:
    untuned = _faults("default")
    tuned = _faults("tuned")
    # Untuned, glibc returns the freed top of the heap to the kernel each round: ~2,000 faults a
    # round. Tuned, the memory stays and is reused.
    assert untuned > 50 * 1000
    assert tuned < untuned // 20
