"""Pull benchmark: what a `pull = "git"` source's webhook spends on git, one note edited and
committed upstream per round. feedsvc's pull (gitdiff.pull_git_changes: git fetch, then the
fast-forward of gitpull.py applied to the changed files only, and the changed paths) against
`git pull --ff-only` alone, the command a user would run (it refreshes the whole index, a
stat of every file of the work tree). Rounds alternate the two on one clone; prints the
medians and the ratio.

    python bench/gitpull.py --notes 10000 [--rounds 12]
"""

from __future__ import annotations

import argparse
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

from feedsvc.gitdiff import pull_git_changes  # noqa: E402
from feedsvc.model import Source  # noqa: E402

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def repositories(corpus: Path, workdir: Path) -> tuple[Path, Path]:
    """An upstream repository holding the corpus and a clone of it (made once per size)."""
    base = workdir / f"gitpull-{corpus.name}"
    upstream, clone = base / "upstream", base / "clone"
    if not (base / ".complete").exists():
        subprocess.run(["rm", "-rf", str(base)], check=True)
        base.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(corpus), str(upstream)], check=True)
        (upstream / ".complete").unlink(missing_ok=True)  # hard links: edits replace files
        git(upstream, "init", "-q", "-b", "main")
        git(upstream, "add", "-A")
        git(upstream, "commit", "-q", "-m", "corpus")
        git(upstream, "repack", "-adq")  # packed, as a served repository is
        git(base, "clone", "-q", str(upstream), str(clone))
        (base / ".complete").write_text("ok")
    return upstream, clone


def push_one_edit(upstream: Path, notes: list[str], i: int) -> None:
    path = upstream / notes[(i * 7919) % len(notes)]
    text = path.read_bytes() + f"\nedit {i} {time.time_ns()}\n".encode()
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(text)
    os.replace(fresh, path)  # a new inode: the corpus the upstream links to is untouched
    # no auto gc upstream: a repack there would run in the background of the timed pull
    git(upstream, "-c", "gc.auto=0", "commit", "-q", "-am", f"edit {i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    corpus_args(parser)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args()
    upstream, clone = repositories(make_corpus(args), args.workdir)
    notes = git(upstream, "-c", "core.quotepath=off", "ls-files", "*.md").splitlines()
    files = len(git(clone, "ls-files", "-z").split("\0")) - 1
    source = Source(name="notes", root=clone, pull="git")

    def feedsvc() -> None:
        pulled = pull_git_changes(source)
        if pulled.problem is not None or pulled.changed is None or len(pulled.changed) != 1:
            raise SystemExit(f"feedsvc's pull did not pull one file: {pulled}")

    def git_pull() -> None:
        git(clone, "pull", "--ff-only", "--quiet")

    tasks = {"feedsvc pull": feedsvc, "git pull --ff-only": git_pull}
    runs: dict[str, list[float]] = {name: [] for name in tasks}
    edit = 0
    for i in range(args.rounds):
        for name in list(tasks) if i % 2 == 0 else list(reversed(tasks)):
            push_one_edit(upstream, notes, edit)
            edit += 1
            started = time.perf_counter()
            tasks[name]()
            runs[name].append((time.perf_counter() - started) * 1000)
    if git(clone, "status", "--porcelain"):
        raise SystemExit("the clone is not clean after the pulls")
    print(f"clone: {clone} ({files} files), {args.rounds} rounds, one note edited per pull")
    medians = {name: statistics.median(times) for name, times in runs.items()}
    for name, times in runs.items():
        print(f"{name:20s} median {medians[name]:7.1f} ms  (min {min(times):.1f}, "
              f"max {max(times):.1f})")
    print(f"feedsvc / git pull:  {medians['feedsvc pull'] / medians['git pull --ff-only']:.2f}")


if __name__ == "__main__":
    main()
