"""gitpull.py's fast-forward leaves a work tree as `git pull --ff-only` does: two clones of one
upstream, the same local state in each, `git pull --ff-only` in one and pull_git_changes in
the other; then HEAD, the branch, `git status`, every file and the outcome (pulled or refused)
must be the same. Real git repositories, each case once through the fast path and, where
that is not the plain case, through git merge."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from feedsvc import gitpull
from feedsvc.gitdiff import pull_git_changes
from feedsvc.model import Source

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": "/tmp", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          env=GIT_ENV, text=True).stdout


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


START = {"NLP/a.md": "a\n", "NLP/b.md": "b\n", "NLP/gone.md": "gone\n", "Python/p.md": "p\n",
         "Python/old-name.md": "renamed\n", "中文/笔记.md": "中文\n", "img/x.bin": b"\0\1\2",
         "run.sh": "#!/bin/sh\n",
         "NLP/long.md": "".join(f"line {i}\n" for i in range(30))}


def upstream_change(author: Path) -> None:
    """One push of every plain kind: edit, add, delete, rename, binary, mode, symlink, CJK."""
    write(author / "NLP/a.md", "a edited\n")
    write(author / "NLP/new.md", "new\n")
    (author / "NLP/gone.md").unlink()
    (author / "Python/old-name.md").rename(author / "Python/new-name.md")
    write(author / "img/x.bin", b"\0\3\4\5")
    (author / "run.sh").chmod(0o755)
    os.symlink("NLP/a.md", author / "link.md")
    write(author / "中文/笔记.md", "中文 改\n")
    write(author / "Deep/nested/d.md", "deep\n")
    write(author / "NLP/long.md", "line 0 upstream\n" + "".join(f"line {i}\n" for i in range(1, 30)))


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    upstream = tmp_path / "upstream.git"
    git("init", "-q", "--bare", "-b", "main", str(upstream), cwd=tmp_path)
    author = tmp_path / "author"
    git("clone", "-q", str(upstream), str(author), cwd=tmp_path)
    for rel, text in START.items():
        write(author / rel, text)
    push(author, "start")
    clones = []
    for name in ("by-git", "by-feedsvc"):
        git("clone", "-q", str(upstream), str(tmp_path / name), cwd=tmp_path)
        clones.append(tmp_path / name)
    return author, clones[0], clones[1]


def push(author: Path, message: str) -> None:
    git("add", "-A", ".", cwd=author)
    git("commit", "-q", "-m", message, cwd=author)
    git("push", "-q", "origin", "HEAD:main", cwd=author)


def state(clone: Path) -> dict[str, object]:
    files = {}
    for path in sorted(clone.rglob("*")):
        rel = path.relative_to(clone).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():
            files[rel] = ("link", os.readlink(path))
        elif path.is_file():
            files[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return {"head": git("rev-parse", "HEAD", cwd=clone),
            "branch": git("symbolic-ref", "HEAD", cwd=clone),
            "status": git("status", "--porcelain=v1", "-uall", cwd=clone),
            "staged": git("diff", "--cached", "--name-status", cwd=clone),
            "files": files}


def pull_both(by_git: Path, by_feedsvc: Path) -> tuple[bool, object]:
    """`git pull --ff-only` in one clone, pull_git_changes in the other: outcomes must agree.
    Returns whether the pull went through and what pull_git_changes said changed."""
    pulled = subprocess.run(["git", "pull", "--ff-only", "--quiet"], cwd=by_git,
                            capture_output=True, env=GIT_ENV)
    result = pull_git_changes(Source(name="notes", root=by_feedsvc, pull="git"))
    assert (result.problem is None) == (pulled.returncode == 0), (result, pulled.stderr)
    assert state(by_feedsvc) == state(by_git)
    return pulled.returncode == 0, result.changed


Local = Callable[[Path], None]


def nothing(clone: Path) -> None:
    pass


def unrelated_edit(clone: Path) -> None:
    write(clone / "NLP/b.md", "b local\n")


def unstaged_edit_of_a_changed_file(clone: Path) -> None:
    write(clone / "NLP/a.md", "a local\n")


def staged_edit_of_a_changed_file(clone: Path) -> None:
    write(clone / "NLP/a.md", "a staged\n")
    git("add", "NLP/a.md", cwd=clone)


def staged_edit_then_reverted_on_disk(clone: Path) -> None:
    write(clone / "NLP/gone.md", "staged\n")
    git("add", "NLP/gone.md", cwd=clone)
    write(clone / "NLP/gone.md", "gone\n")


def staged_edit_elsewhere_in_a_changed_file(clone: Path) -> None:
    """A patch of line 0 would still apply over a staged edit of line 29: git refuses."""
    write(clone / "NLP/long.md", "".join(f"line {i}\n" for i in range(29)) + "line 29 staged\n")
    git("add", "NLP/long.md", cwd=clone)


def untracked_file_where_one_is_added(clone: Path) -> None:
    write(clone / "NLP/new.md", "mine\n")


def touched_but_same(clone: Path) -> None:
    path = clone / "NLP/a.md"
    os.utime(path, ns=(path.stat().st_mtime_ns + 5_000_000_000,) * 2)


def local_commit(clone: Path) -> None:
    write(clone / "Python/p.md", "p committed here\n")
    git("commit", "-q", "-am", "local", cwd=clone)


def post_merge_hook(clone: Path) -> None:
    hook = clone / ".git/hooks/post-merge"
    hook.write_text("#!/bin/sh\necho ran > hook-ran.txt\n")
    hook.chmod(0o755)


CASES: dict[str, tuple[Local, bool]] = {  # name: (local state, whether the pull goes through)
    "clean": (nothing, True),
    "unrelated local edit": (unrelated_edit, True),
    "unstaged edit of a changed file": (unstaged_edit_of_a_changed_file, False),
    "staged edit of a changed file": (staged_edit_of_a_changed_file, False),
    "staged edit, reverted on disk": (staged_edit_then_reverted_on_disk, False),
    "staged edit elsewhere in a changed file": (staged_edit_elsewhere_in_a_changed_file, False),
    "untracked file where one is added": (untracked_file_where_one_is_added, False),
    "touched, content unchanged": (touched_but_same, True),
    "diverged: a local commit": (local_commit, False),
    "post-merge hook": (post_merge_hook, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_pull_leaves_the_clone_as_git_pull_does(tmp_path: Path, case: str) -> None:
    local, goes_through = CASES[case]
    author, by_git, by_feedsvc = setup(tmp_path)
    upstream_change(author)
    push(author, "change")
    for clone in (by_git, by_feedsvc):
        local(clone)
    went_through, changed = pull_both(by_git, by_feedsvc)
    assert went_through == goes_through
    if went_through:
        assert changed == tuple(sorted([
            "Deep/nested/d.md", "NLP/a.md", "NLP/gone.md", "NLP/long.md", "NLP/new.md", "Python/new-name.md",
            "Python/old-name.md", "img/x.bin", "link.md", "run.sh", "中文/笔记.md"]))
    if case == "post-merge hook":
        assert (by_feedsvc / "hook-ran.txt").exists()  # git merge ran it


def test_the_plain_case_takes_the_fast_path_and_logs_as_git_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    author, by_git, by_feedsvc = setup(tmp_path)
    upstream_change(author)
    push(author, "change")
    old = git("rev-parse", "HEAD", cwd=by_feedsvc).strip()
    ran: list[tuple[str, ...]] = []
    real = gitpull.run_git

    def recording(root: Path, *args: str, stdin: bytes | None = None,
                  env: dict[str, str] | None = None) -> gitpull.GitRun:
        ran.append(args)
        return real(root, *args, stdin=stdin, env=env)
    monkeypatch.setattr(gitpull, "run_git", recording)
    pull_both(by_git, by_feedsvc)
    commands = [args[0] for args in ran]
    assert "merge" not in commands and "pull" not in commands and "apply" in commands
    assert git("log", "-g", "-1", "--format=%gs", "main", cwd=by_feedsvc).strip() == "pull: Fast-forward"
    assert git("rev-parse", "ORIG_HEAD", cwd=by_feedsvc).strip() == old


def test_nothing_new_upstream_changes_nothing(tmp_path: Path) -> None:
    _, by_git, by_feedsvc = setup(tmp_path)
    went_through, changed = pull_both(by_git, by_feedsvc)
    assert went_through and changed == ()


def test_a_second_push_after_a_fast_forward(tmp_path: Path) -> None:
    """The index the fast-forward wrote is one git trusts: the next pull is plain again."""
    author, by_git, by_feedsvc = setup(tmp_path)
    for i in range(3):
        write(author / "NLP/a.md", f"a {i}\n")
        (author / f"NLP/n{i}.md").write_text(f"n{i}\n")
        push(author, f"push {i}")
        went_through, changed = pull_both(by_git, by_feedsvc)
        assert went_through and changed == ("NLP/a.md", f"NLP/n{i}.md")


def test_git_maintenance_runs_after_the_pull_not_inside_the_fetch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git fetch would run `git maintenance run --auto` (gc --auto) before it returns; the
    pull runs it once, in the background, after the fast-forward (git's trace2 says who
    started what)."""
    author, _, by_feedsvc = setup(tmp_path)
    upstream_change(author)
    push(author, "change")
    trace = tmp_path / "trace2.json"
    monkeypatch.setenv("GIT_TRACE2_EVENT", str(trace))
    pulled = pull_git_changes(Source(name="notes", root=by_feedsvc, pull="git"))
    gitpull.settle_maintenance(by_feedsvc)
    assert pulled.problem is None and pulled.changed
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    maintenance = [e for e in events if e["event"] == "start" and "maintenance" in e["argv"]]
    from_fetch = [e for e in events if e["event"] == "child_start" and "maintenance" in e["argv"]]
    assert len(maintenance) == 1 and from_fetch == []
    assert maintenance[0]["argv"][-3:] == ["run", "--auto", "--quiet"]
    applied = [e["time"] for e in events if e["event"] == "start" and "apply" in e["argv"]]
    assert applied and maintenance[0]["time"] > applied[0]  # after the fast-forward
