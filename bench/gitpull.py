"""Pull benchmark: what a `pull = "git"` source's webhook spends on git, one note edited and
committed upstream per round. feedsvc runs `git pull --ff-only` itself (sources/git.py, plus
a rev-parse before and after and a `git diff --name-only`), so this times feedsvc's pull
against `git pull --ff-only` alone, and git's pull under git's own settings for big work
trees, each on its own clone of one upstream:

- default: the clone as `git clone` leaves it;
- manyFiles: `feature.manyFiles=true` (index version 4, `index.skipHash`, the untracked cache);
- untrackedCache: `core.untrackedCache=true` alone;
- skipHash: `index.skipHash=true` alone.

Rounds interleave the variants; prints each one's median and its ratio to the default.

    python bench/gitpull.py --notes 10000 [--rounds 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.environ.get("FEEDSVC_CODE", str(Path(__file__).resolve().parents[1])))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import corpus_args  # noqa: E402
from common import make_corpus  # noqa: E402

from feedsvc.model import Source  # noqa: E402
from feedsvc.sources import git as sources_git  # noqa: E402

GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.org"]
SETTINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "default": (),
    "manyFiles": (("feature.manyFiles", "true"),),
    "untrackedCache": (("core.untrackedCache", "true"),),
    "skipHash": (("index.skipHash", "true"),),
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def upstream_for(corpus: Path, workdir: Path) -> Path:
    """An upstream repository holding the corpus (made once per corpus)."""
    upstream = workdir / f"gitpull-{corpus.name}" / "upstream"
    if not (upstream.parent / ".complete").exists():
        subprocess.run(["rm", "-rf", str(upstream.parent)], check=True)
        upstream.parent.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(corpus), str(upstream)], check=True)
        (upstream / ".complete").unlink(missing_ok=True)  # hard links: edits replace files
        git(upstream, "init", "-q", "-b", "main")
        git(upstream, "add", "-A")
        git(upstream, "commit", "-q", "-m", "corpus")
        git(upstream, "repack", "-adq")  # packed, as a served repository is
        (upstream.parent / ".complete").write_text("ok")
    return upstream


def fresh_clone(upstream: Path, name: str) -> Path:
    clone = upstream.parent / f"clone-{name}"
    subprocess.run(["rm", "-rf", str(clone)], check=True)
    git(upstream.parent, "clone", "-q", str(upstream), str(clone))
    for key, value in SETTINGS.get(name, ()):
        git(clone, "config", key, value)
    git(clone, "update-index", "--refresh", "-q")  # the index written under the settings
    git(clone, "status", "--porcelain")  # fills the untracked cache where it is on
    return clone


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
    upstream = upstream_for(make_corpus(args), args.workdir)
    notes = git(upstream, "-c", "core.quotepath=off", "ls-files", "*.md").splitlines()
    clones = {name: fresh_clone(upstream, name) for name in [*SETTINGS, "feedsvc"]}
    files = len(git(clones["default"], "ls-files", "-z").split("\0")) - 1

    def git_pull(clone: Path) -> Callable[[], None]:
        def pull() -> None:
            git(clone, "pull", "--ff-only", "--quiet")
        return pull

    def feedsvc_pull() -> None:
        pulled = sources_git.pull(Source(name="notes", root=clones["feedsvc"], pull="git"))
        if pulled.problem is not None or pulled.changed is None or len(pulled.changed) != 1:
            raise SystemExit(f"feedsvc's pull did not pull one file: {pulled}")

    tasks = {name: git_pull(clones[name]) for name in SETTINGS}
    tasks["feedsvc (default settings)"] = feedsvc_pull
    runs: dict[str, list[float]] = {name: [] for name in tasks}
    for i in range(args.rounds):
        push_one_edit(upstream, notes, i)  # every clone pulls the same one-note push
        for name in list(tasks) if i % 2 == 0 else list(reversed(tasks)):
            started = time.perf_counter()
            tasks[name]()
            runs[name].append((time.perf_counter() - started) * 1000)
    for clone in clones.values():
        if git(clone, "status", "--porcelain"):
            raise SystemExit(f"{clone} is not clean after the pulls")
    print(f"{files} files, {args.rounds} rounds, one note edited per pull; git pull --ff-only:")
    base = statistics.median(runs["default"])
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"  {name:28s} median {median:7.1f} ms  (min {min(times):.1f}, max {max(times):.1f})"
              f"  {median / base:.2f}x default")


if __name__ == "__main__":
    main()
