"""Process-level tuning of `feedsvc serve` (process.py), in a child process of its own: the
heap trimmer hands a burst's freed memory back to the OS once the burst is over, and stays
out of the way while the process keeps working."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BURST = textwrap.dedent("""
    import random, sys, time
    sys.path.insert(0, sys.argv[1])
    from feedsvc import process

    passes = []
    real = process.ctypes.CDLL
    class Counting:
        def __init__(self, name):
            self.lib = real(name)
        def malloc_trim(self, pad):
            passes.append(time.monotonic())
            return self.lib.malloc_trim(pad)
    process.ctypes.CDLL = Counting

    def rss_mib():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    assert process.trim_after_work(check_seconds=0.1) is not None
    busy_until = time.monotonic() + 1.0
    kept, rng = [], random.Random(1)
    while time.monotonic() < busy_until:  # a burst: rendered pages come and go, a few stay
        pages = [bytearray(rng.choice((700, 3000, 9000))) for _ in range(30000)]
        kept.extend(pages[::50])
        del pages
    during = len(passes)
    high = rss_mib()
    time.sleep(1.0)  # idle: the burst is over
    print(during, len(passes), round(high), round(rss_mib()))
""")


def test_the_heap_is_trimmed_once_a_burst_is_over_and_not_during_it() -> None:
    out = subprocess.run([sys.executable, "-c", BURST, str(REPO)], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    during, after, high, rest = (int(x) for x in out)
    assert during == 0  # busy every check interval: no pass, the allocator is never held up
    assert after == 1  # one pass once idle, not one a check
    assert rest < high - 50, f"resident {high} MiB during the burst, {rest} MiB after"
