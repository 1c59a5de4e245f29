"""`pull = "git"` runs git's own `git pull --ff-only`: two clones of one upstream with the same
local state, `git pull --ff-only` in one and sources.git.pull in the other; HEAD, the branch,
`git status`, every file (and what lies outside the work tree) must then be the same, and a
pull git refuses is reported with git's own message. Real git repositories, one per case the
old home-made fast-forward got wrong (issue 26)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.model import Source
from feedsvc.sources import git as sources_git
from feedsvc.store import open_store
from feedsvc.web import create_app

from conftest import write_config

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": "/tmp", "PATH": "/usr/bin:/bin",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}
START = {"NLP/a.md": "a\n", "NLP/b.md": "b\n", "Python/p.md": "p\n", "中文/笔记.md": "中文\n"}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          env=GIT_ENV, text=True).stdout


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


class Repos:
    """An upstream, an author's clone that pushes to it, and two clones to pull into: one by
    git itself, one by feedsvc. Each clone has a sibling folder `<clone>-outside` that lies
    outside its work tree."""

    def __init__(self, tmp_path: Path) -> None:
        self.upstream = tmp_path / "upstream.git"
        git("init", "-q", "--bare", "-b", "main", str(self.upstream), cwd=tmp_path)
        self.author = tmp_path / "author"
        git("clone", "-q", str(self.upstream), str(self.author), cwd=tmp_path)
        for rel, text in START.items():
            write(self.author / rel, text)
        self.push("start")
        self.by_git = self.clone(tmp_path / "by-git")
        self.by_feedsvc = self.clone(tmp_path / "by-feedsvc")

    def clone(self, path: Path) -> Path:
        git("clone", "-q", str(self.upstream), str(path), cwd=path.parent)
        Path(f"{path}-outside").mkdir()
        return path

    def push(self, message: str) -> None:
        git("add", "-A", ".", cwd=self.author)
        git("commit", "-q", "-m", message, cwd=self.author)
        git("push", "-q", "origin", "HEAD:main", cwd=self.author)

    def pull_both(self) -> tuple[subprocess.CompletedProcess[str], sources_git.Pulled]:
        """git's pull in one clone, feedsvc's in the other; both clones end the same."""
        by_git = subprocess.run(["git", "pull", "--ff-only", "--quiet"], cwd=self.by_git,
                                capture_output=True, env=GIT_ENV, text=True)
        pulled = sources_git.pull(Source(name="notes", root=self.by_feedsvc, pull="git"))
        assert state(self.by_feedsvc) == state(self.by_git)
        return by_git, pulled


def files_below(folder: Path) -> dict[str, object]:
    files: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        if path.is_symlink():  # each clone's link names its own outside folder
            files[rel] = ("link", os.readlink(path).replace(folder.name, "<clone>"))
        elif path.is_file():
            files[rel] = path.read_bytes()
    return files


def state(clone: Path) -> dict[str, object]:
    def quiet(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=clone, capture_output=True, env=GIT_ENV, text=True)
        return run.stdout
    return {"head": quiet("rev-parse", "HEAD"), "branch": quiet("symbolic-ref", "HEAD"),
            "status": quiet("status", "--porcelain=v1", "-uall", "--ignored"),
            "staged": quiet("diff", "--cached", "--name-status"),
            "orig_head": quiet("rev-parse", "-q", "--verify", "ORIG_HEAD"),
            "files": files_below(clone), "outside": files_below(Path(f"{clone}-outside"))}


def refused_as_git_refuses(by_git: subprocess.CompletedProcess[str],
                           pulled: sources_git.Pulled) -> None:
    """Both refused, nothing changed (checked by pull_both), git's own message reported."""
    assert by_git.returncode != 0
    assert pulled.changed is None and pulled.problem is not None
    assert pulled.problem.reason == "git pull failed: " + " ".join(by_git.stderr.split())


Local = Callable[[Path], None]


def symlink_in_the_way(clone: Path) -> None:
    os.symlink(f"../{clone.name}-outside", clone / "x")


def ignored_symlink_in_the_way(clone: Path) -> None:
    symlink_in_the_way(clone)
    with open(clone / ".git/info/exclude", "a") as exclude:
        exclude.write("x\n")


def test_a_symlink_where_the_push_writes_is_refused_and_nothing_is_written_outside(
        tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    write(repos.author / "x/y.md", "y\n")
    write(repos.author / "NLP/a.md", "a edited\n")
    repos.push("adds x/y.md")
    for clone in (repos.by_git, repos.by_feedsvc):
        symlink_in_the_way(clone)
    by_git, pulled = repos.pull_both()
    refused_as_git_refuses(by_git, pulled)
    assert files_below(Path(f"{repos.by_feedsvc}-outside")) == {}
    assert (repos.by_feedsvc / "NLP/a.md").read_text() == "a\n"


def test_an_ignored_symlink_in_the_way_is_replaced_inside_the_work_tree(tmp_path: Path) -> None:
    """git treats ignored files as expendable: the link goes, a real folder takes its place,
    and nothing is written where the link pointed."""
    repos = Repos(tmp_path)
    write(repos.author / "x/y.md", "y\n")
    repos.push("adds x/y.md")
    for clone in (repos.by_git, repos.by_feedsvc):
        ignored_symlink_in_the_way(clone)
    by_git, pulled = repos.pull_both()
    assert by_git.returncode == 0 and pulled.changed == ("x/y.md",)
    assert files_below(Path(f"{repos.by_feedsvc}-outside")) == {}
    assert not (repos.by_feedsvc / "x").is_symlink()
    assert (repos.by_feedsvc / "x/y.md").read_text() == "y\n"


def test_a_sparse_checkout_writes_only_the_sparse_set(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    for clone in (repos.by_git, repos.by_feedsvc):
        git("sparse-checkout", "set", "NLP", cwd=clone)
    write(repos.author / "NLP/a.md", "a edited\n")
    write(repos.author / "Python/new.md", "outside the sparse set\n")
    repos.push("two folders")
    by_git, pulled = repos.pull_both()
    assert by_git.returncode == 0 and pulled.problem is None
    assert pulled.changed == ("NLP/a.md", "Python/new.md")  # git names it; the disk has no file
    assert not (repos.by_feedsvc / "Python/new.md").exists()
    assert (repos.by_feedsvc / "NLP/a.md").read_text() == "a edited\n"


def test_attributes_changed_in_the_same_push_apply_to_its_files(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    for clone in (repos.by_git, repos.by_feedsvc):  # a smudge filter, as git-lfs installs one
        git("config", "filter.upper.smudge", "tr a-z A-Z", cwd=clone)
        git("config", "filter.upper.clean", "cat", cwd=clone)
    write(repos.author / ".gitattributes", "*.md text eol=crlf\nloud/*.md filter=upper\n")
    write(repos.author / "NLP/new.md", "line one\nline two\n")
    write(repos.author / "loud/shout.md", "quiet words\n")
    repos.push("attributes and files")
    by_git, pulled = repos.pull_both()
    assert by_git.returncode == 0 and pulled.problem is None
    assert (repos.by_feedsvc / "NLP/new.md").read_bytes() == b"line one\r\nline two\r\n"
    assert (repos.by_feedsvc / "loud/shout.md").read_bytes() == b"QUIET WORDS\r\n"


def test_an_untracked_file_where_the_push_adds_a_folder_changes_nothing(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    write(repos.author / "NLP/a.md", "a edited\n")
    (repos.author / "NLP/b.md").unlink()
    write(repos.author / "Python/sub/z.md", "z\n")
    repos.push("edit, delete, add a folder")
    for clone in (repos.by_git, repos.by_feedsvc):
        write(clone / "Python/sub", "my own file\n")
    by_git, pulled = repos.pull_both()
    refused_as_git_refuses(by_git, pulled)
    assert (repos.by_feedsvc / "NLP/a.md").read_text() == "a\n"
    assert (repos.by_feedsvc / "NLP/b.md").exists()
    assert git("status", "--porcelain", cwd=repos.by_feedsvc) == "?? Python/sub\n"
    # the user's fix is all it takes: the next pull goes through
    for clone in (repos.by_git, repos.by_feedsvc):
        (clone / "Python/sub").unlink()
    by_git, pulled = repos.pull_both()
    assert by_git.returncode == 0 and pulled.changed == ("NLP/a.md", "NLP/b.md", "Python/sub/z.md")


def test_an_unfinished_cherry_pick_is_left_alone(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    write(repos.author / "NLP/b.md", "b upstream\n")
    repos.push("b upstream")
    for clone in (repos.by_git, repos.by_feedsvc):
        git("pull", "-q", "--ff-only", cwd=clone)
        git("switch", "-q", "-c", "side", "HEAD~1", cwd=clone)
        write(clone / "NLP/b.md", "b on the side\n")
        git("commit", "-q", "-am", "side", cwd=clone)
        git("switch", "-q", "main", cwd=clone)
        conflict = subprocess.run(["git", "cherry-pick", "side"], cwd=clone, capture_output=True,
                                  env=GIT_ENV)
        assert conflict.returncode != 0 and (clone / ".git/CHERRY_PICK_HEAD").exists()
    write(repos.author / "NLP/a.md", "a edited\n")
    repos.push("more upstream")
    by_git, pulled = repos.pull_both()
    refused_as_git_refuses(by_git, pulled)
    assert (repos.by_feedsvc / ".git/CHERRY_PICK_HEAD").exists()


def test_verify_signatures_refuses_an_unsigned_commit(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    for clone in (repos.by_git, repos.by_feedsvc):
        git("config", "merge.verifySignatures", "true", cwd=clone)
    write(repos.author / "NLP/a.md", "a unsigned\n")
    repos.push("unsigned")
    by_git, pulled = repos.pull_both()
    refused_as_git_refuses(by_git, pulled)
    assert "signature" in pulled.problem.reason if pulled.problem else False


def test_local_changes_and_a_diverged_history_are_refused(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    write(repos.author / "NLP/a.md", "a upstream\n")
    repos.push("upstream edit")
    for clone in (repos.by_git, repos.by_feedsvc):
        write(clone / "NLP/a.md", "a local, not committed\n")
    refused_as_git_refuses(*repos.pull_both())
    for clone in (repos.by_git, repos.by_feedsvc):
        git("commit", "-q", "-am", "a local commit", cwd=clone)
    refused_as_git_refuses(*repos.pull_both())


def test_a_plain_pull_names_the_changed_files_relative_to_the_source(tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    write(repos.author / "NLP/a.md", "a edited\n")
    (repos.author / "Python/p.md").rename(repos.author / "Python/q.md")
    write(repos.author / "中文/新.md", "新\n")
    repos.push("edit, rename, add")
    by_git, pulled = repos.pull_both()
    assert by_git.returncode == 0 and pulled.problem is None
    assert pulled.changed == ("NLP/a.md", "Python/p.md", "Python/q.md", "中文/新.md")
    assert sources_git.pull(Source(name="notes", root=repos.by_feedsvc, pull="git")).changed == ()
    sub = sources_git.pull(Source(name="nlp", root=repos.by_feedsvc / "NLP", pull="git"))
    assert sub == sources_git.Pulled(())


def test_a_refused_pull_shows_in_healthz_and_the_feeds_keep_the_folder_as_it_is(
        tmp_path: Path) -> None:
    repos = Repos(tmp_path)
    served = repos.by_feedsvc
    write(served / "NLP/a.md", "---\ntitle: A\ndate: 2025-01-01\n---\na\n")  # a local edit
    symlink_in_the_way(served)
    path = write_config(tmp_path, served)
    path.write_text(path.read_text().replace('name = "notes"', 'name = "notes"\npull = "git"'))
    config = load_config(path, env={})
    store = open_store(config.store_url)
    app = create_app(config, store=store)
    client: Any = app.test_client()
    scanner = app.extensions["feedsvc"].scanner
    scanner.run()
    write(repos.author / "x/y.md", "---\ntitle: Outside\ndate: 2025-01-02\n---\ny\n")
    repos.push("adds x/y.md")
    assert client.post("/hooks/refresh", headers={"Authorization": "Bearer s3cret"}).status_code == 202
    assert scanner.wait_idle(30)
    assert files_below(Path(f"{served}-outside")) == {}
    titles = [item["title"] for item in client.get("/updates.json").get_json()["items"]]
    assert "Outside" not in titles and "A" in titles
    health = client.get("/healthz").get_json()
    assert health["status"] == "degraded"
    [source] = health["sources"]
    assert source["ok"] is False
    assert [e.startswith("git pull failed: ") for e in source["errors"]] == [True]
    store.close()
