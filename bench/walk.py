"""Walk benchmark: what a bare webhook's scan spends most of its time on, the lstat of every
note and media file, by feedsvc's walk (one os.scandir walk) against GNU find printing the
same (size, mtime) of every file (`find -printf`: what a shell script would use). Rounds
interleave the two; prints the medians and the ratio.

    python bench/walk.py --notes 10000 [--rounds 21]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("FEEDSVC_CODE", str(Path(__file__).resolve().parents[1])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.model import Source  # noqa: E402
from feedsvc.sources.walk import walk_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    corpus_args(parser)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    root = make_corpus(args)
    source = Source(name="notes", root=root)
    # a heap like the scanner's after its start-up scan (a fork per walk paid for its size)
    ballast = [walk_source(source) for _ in range(3)]
    files = len(ballast[0].notes) + len(ballast[0].media_stats)

    def one() -> None:
        walk_source(source)

    def find() -> None:
        subprocess.run(["find", str(root), "-name", ".*", "-prune", "-o", "-type", "f",
                        "-printf", "%s %T@ %P\n"], check=True, stdout=subprocess.DEVNULL)

    runs: dict[str, list[float]] = {"feedsvc walk": [], "find -printf": []}
    tasks = {"feedsvc walk": one, "find -printf": find}
    gc.collect()
    for i in range(args.rounds):
        names = list(tasks) if i % 2 == 0 else list(reversed(tasks))
        for name in names:
            started = time.perf_counter()
            tasks[name]()
            runs[name].append(time.perf_counter() - started)
    print(f"walk of {files} files ({args.notes} notes), {args.rounds} interleaved rounds, medians:")
    base = statistics.median(runs["find -printf"])
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"  {name:14} {median * 1000:7.1f} ms   {median / base:5.2f}x find")


if __name__ == "__main__":
    main()
