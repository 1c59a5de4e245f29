"""`git pull --ff-only` at the cost of what the pull brought: git fetches, then the
fast-forward touches only the files the new commits changed.

`git merge` (what `git pull` runs after its fetch) first refreshes the whole index, a stat of
every file of the work tree, and `git read-tree -m -u` walks both trees whole: at 100,000
notes either costs more than half a second for a one-note push. Here the commits' changes
are applied with `git apply --index` to exactly the paths `git diff-tree old new` names,
after checking those paths hold what HEAD holds (no staged or unstaged change, no untracked
file where one is added), and the branch is moved with `git update-ref` (reflog message
"pull: Fast-forward", ORIG_HEAD set, as git's fast-forward does). The ancestry check and
the two diffs of the commits are independent: they run at once, as three processes.
`git maintenance run --auto`, which git fetch would run before it returns, runs after the
pull in the background instead (the next pull of that work tree waits for it to end).

Whatever is not that plain case goes to `git merge --ff-only` of what was fetched, so git's
own rules and messages decide it: a history that does not fast-forward, local changes to a
changed path, a submodule or a type change (file <-> link), a `post-merge` hook (git would run
it), more than one branch to merge. A fetch that cannot say what to merge (detached HEAD, no
upstream configured) falls back to `git pull --ff-only` itself."""

from __future__ import annotations

import atexit
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

GIT_TIMEOUT_SECONDS = 120
FAST_FORWARD_MAX_PATHS = 2000  # a bigger push is left to git merge (one stat pass is cheaper)
_PLAIN_MODES = {"100644", "100755", "120000"}  # blobs: files, executables and symlinks
# git diff-tree reads the index though it compares two commits (22 ms at 100,000 notes):
# pointed at an index that cannot exist, it reads an empty one
_NO_INDEX = {"GIT_INDEX_FILE": os.path.join(os.sep, "nonexistent", "feedsvc", "index")}


@dataclass(frozen=True, slots=True)
class GitRun:
    """One git command's outcome: `ok` with its stdout, or the reason it failed."""

    ok: bool
    out: bytes = b""
    failure: str = ""


def run_git(root: Path, *args: str, stdin: bytes | None = None,
            env: dict[str, str] | None = None) -> GitRun:
    """Run git in `root` with no prompt for credentials (a webhook has nobody to ask)."""
    try:
        result = subprocess.run(_command(root, args), input=stdin, capture_output=True,
                                timeout=GIT_TIMEOUT_SECONDS, env=_environment(env))
    except (OSError, subprocess.TimeoutExpired) as e:
        return GitRun(False, failure=str(e))
    return _outcome(result.returncode, result.stdout, result.stderr)


Command = tuple[tuple[str, ...], dict[str, str] | None]  # git's arguments, extra environment


def run_git_together(root: Path, *commands: Command) -> list[GitRun]:
    """Independent git commands started at once, their outcomes in order: a few short
    processes overlap on two cores where one after the other they add up."""
    started: list[subprocess.Popen[bytes] | GitRun] = []
    for args, env in commands:
        try:
            started.append(subprocess.Popen(_command(root, args), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            env=_environment(env)))
        except OSError as e:
            started.append(GitRun(False, failure=str(e)))
    runs = []
    for proc in started:
        if isinstance(proc, GitRun):
            runs.append(proc)
            continue
        try:
            out, err = proc.communicate(timeout=GIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as e:
            proc.kill()
            proc.communicate()
            runs.append(GitRun(False, failure=str(e)))
            continue
        runs.append(_outcome(proc.returncode, out, err))
    return runs


def _command(root: Path, args: tuple[str, ...]) -> list[str]:
    return ["git", "-C", str(root), *args]


def _environment(env: dict[str, str] | None) -> dict[str, str]:
    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}


def _outcome(code: int, out: bytes, err: bytes) -> GitRun:
    if code != 0:
        message = (err or out).decode("utf-8", "replace").strip().splitlines()
        return GitRun(False, failure=message[-1] if message else f"exit status {code}")
    return GitRun(True, out)


_maintenance: dict[Path, subprocess.Popen[bytes]] = {}  # work tree -> its maintenance run
_maintenance_lock = threading.Lock()


def _maintain_later(root: Path) -> None:
    """`git maintenance run --auto` in the background (git gc --auto when loose objects pile
    up), as git fetch would run it, but after the pull rather than inside it."""
    with _maintenance_lock:
        for tree, proc in list(_maintenance.items()):
            if proc.poll() is not None:
                del _maintenance[tree]  # ended: reaped
        if root in _maintenance:
            return
        try:
            _maintenance[root] = subprocess.Popen(
                _command(root, ("maintenance", "run", "--auto", "--quiet")),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=_environment(None))
        except OSError:
            pass  # the next fetch that runs it is git's own


@atexit.register
def _settle_all() -> None:
    """At exit, wait a little for maintenance still running (left alone after that: git
    finishes it, and a gc lock it holds is git's own to clear)."""
    with _maintenance_lock:
        running = list(_maintenance.values())
        _maintenance.clear()
    for proc in running:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.returncode = 0  # not ours to wait for any longer; Popen would warn at exit


def settle_maintenance(root: Path) -> None:
    """Wait for the work tree's background maintenance to end (it may hold git's locks)."""
    with _maintenance_lock:
        proc = _maintenance.pop(root, None)
    if proc is None:
        return
    try:
        proc.wait(timeout=GIT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True, slots=True)
class PullOutcome:
    """What the pull did: `failure` is git's reason when it failed. `changed` are the
    repository paths the fast-forward applied (() when HEAD did not move), None when git
    merge or git pull did the work (the caller asks git diff)."""

    failure: str = ""
    changed: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class WorkTree:
    """Where a pull happens, as `git rev-parse` tells it before the pull: the top of the work
    tree, HEAD, and the paths of FETCH_HEAD and of the post-merge hook (`--git-path`)."""

    top: Path
    head: str
    fetch_head: Path
    post_merge_hook: Path


def pull_ff_only(tree: WorkTree) -> PullOutcome:
    """`git pull --ff-only` in the work tree."""
    root, old = tree.top, tree.head
    settle_maintenance(root)
    fetched = run_git(root, "fetch", "--quiet", "--write-fetch-head", "--no-auto-maintenance")
    if not fetched.ok:
        return PullOutcome(fetched.failure)
    try:
        return _merge_fetched(tree)
    finally:
        _maintain_later(root)


def _merge_fetched(tree: WorkTree) -> PullOutcome:
    root, old = tree.top, tree.head
    new = _to_merge(tree.fetch_head)
    if new is None:  # git pull knows what to do (or to say) when FETCH_HEAD names no one branch
        pulled = run_git(root, "pull", "--ff-only", "--quiet")
        return PullOutcome(pulled.failure)
    if new == old:
        return PullOutcome(changed=())
    changed = _fast_forward(root, old, new, tree.post_merge_hook)
    if changed is not None:
        return PullOutcome(changed=changed)
    merged = run_git(root, "merge", "--ff-only", "--quiet", new)
    return PullOutcome(merged.failure)


def _to_merge(fetch_head: Path) -> str | None:
    """The one commit FETCH_HEAD marks for merging, None when it marks none or several."""
    try:
        lines = fetch_head.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    chosen = [line.split("\t", 1)[0] for line in lines
              if line.count("\t") >= 2 and line.split("\t")[1] == ""]
    return chosen[0] if len(chosen) == 1 else None


def _fast_forward(root: Path, old: str, new: str, post_merge_hook: Path) -> tuple[str, ...] | None:
    """Move the work tree, index and branch from `old` to `new` touching only the changed
    paths (`root` is the top of the work tree: git apply and pathspecs are relative to where
    git runs); None when this is not the plain case (nothing has been changed then)."""
    if os.access(post_merge_hook, os.X_OK):
        return None
    ancestry, raw = run_git_together(
        root, (("merge-base", "--is-ancestor", old, new), None),
        (("diff-tree", "-r", "-z", "--no-renames", "--raw", old, new), _NO_INDEX))
    if not ancestry.ok or not raw.ok:
        return None
    changes = _parse_raw(raw.out)
    if changes is None or not changes or len(changes) > FAST_FORWARD_MAX_PATHS:
        return None
    paths = [change.path for change in changes]
    if any(c.status == "A" and os.path.lexists(root / c.path) for c in changes):
        return None  # an untracked file is where git would add one: git merge says so
    # each changed path as HEAD has it in the index (ls-files, against the old blobs), checked
    # while the patch is made; that the disk matches the index, git apply --index checks.
    # Not `git diff-index old`: at 100,000 notes its unpack_trees sometimes took 35-45 s.
    staged, patch = run_git_together(
        root, (("--literal-pathspecs", "ls-files", "-s", "-z", "--", *paths), None),
        (("diff-tree", "-r", "-p", "--binary", "--full-index", "--no-renames", "--no-ext-diff",
          "--no-textconv", old, new), _NO_INDEX))
    if not staged.ok or not patch.ok:
        return None
    if _index_entries(staged.out) != {c.path: (c.old_mode, c.old_blob) for c in changes
                                       if c.status != "A"}:
        return None  # a staged change, a conflict, or an entry below a changed path
    if not run_git(root, "apply", "--index", "--whitespace=nowarn", stdin=patch.out).ok:
        return None
    moved = run_git(root, "update-ref", "--stdin", "-m", "pull: Fast-forward",
                    stdin=f"update HEAD {new} {old}\nupdate ORIG_HEAD {old}\n".encode())
    if not moved.ok:  # HEAD moved under us: git merge of the work tree now at `new` sorts it out
        return None
    return tuple(paths)


@dataclass(frozen=True, slots=True)
class Change:
    """One path of `diff-tree --raw`: A, M or D, and the mode and blob it had before."""

    path: str
    status: str
    old_mode: str
    old_blob: str


def _parse_raw(out: bytes) -> list[Change] | None:
    """`diff-tree -z --raw` -> the changes, None when one is not a plain blob edit, add or
    delete (a submodule, a type change: git merge handles those)."""
    fields = out.split(b"\0")
    changes: list[Change] = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        if not meta.startswith(b":"):
            return None
        old_mode, new_mode, old_blob, _, status = meta[1:].decode().split(" ")
        modes = {old_mode, new_mode} - {"000000"}
        if status not in ("A", "M", "D") or not modes <= _PLAIN_MODES or len(modes) > 1 and "120000" in modes:
            return None
        changes.append(Change(os.fsdecode(path), status, old_mode, old_blob))
    return changes


def _index_entries(out: bytes) -> dict[str, tuple[str, str]] | None:
    """`ls-files -s -z` -> {path: (mode, blob)}, None when a path is unmerged (a stage other
    than 0) or listed twice."""
    entries: dict[str, tuple[str, str]] = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, blob, stage = meta.decode().split(" ")
        name = os.fsdecode(path)
        if stage != "0" or name in entries:
            return None
        entries[name] = (mode, blob)
    return entries
