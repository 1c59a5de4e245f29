"""`pull = "git"` sources: a webhook scan reads just the files the pull changed (git diff
old..new HEAD, renames as delete + add), mapped into a source that is a sub-folder of the
repository; git failing means a full walk and a reported problem. Real git repositories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.sources import git as sources_git
from feedsvc.model import Source
from feedsvc.scan.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.model import ScanJob
from feedsvc.model import ScanRequest

from conftest import write_config

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": "/tmp", "PATH": "/usr/bin:/bin"}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=GIT_ENV)


def note(path: Path, title: str, body: str = "body") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\ntitle: {title}\ndate: 2025-01-01\n---\n{body}\n", encoding="utf-8")


class Repos:
    """An upstream bare repository, an author's clone and the clone feedsvc serves."""

    def __init__(self, tmp_path: Path, files: dict[str, str]) -> None:
        self.upstream = tmp_path / "upstream.git"
        git("init", "--bare", "-b", "main", str(self.upstream), cwd=tmp_path)
        self.author = tmp_path / "author"
        git("clone", str(self.upstream), str(self.author), cwd=tmp_path)
        for rel, title in files.items():
            note(self.author / rel, title)
        self.push("first")
        self.served = tmp_path / "served"
        git("clone", str(self.upstream), str(self.served), cwd=tmp_path)

    def push(self, message: str) -> None:
        git("add", "-A", ".", cwd=self.author)
        git("commit", "-q", "-m", message, cwd=self.author)
        git("push", "-q", "origin", "HEAD:main", cwd=self.author)


def scanner_for(tmp_path: Path, root: Path) -> Scanner:
    path = write_config(tmp_path, root)
    path.write_text(path.read_text().replace('name = "notes"', 'name = "notes"\npull = "git"'))
    config = load_config(path, env={})
    return Scanner(config, open_store(config.store_url))


FILES = {f"NLP/n{i}.md": f"N{i}" for i in range(6)} | {"Python/p.md": "P"}


def webhook_scan(scanner: Scanner) -> Any:
    reports: list[Any] = []
    scanner.listeners.append(reports.append)
    scanner.request(ScanRequest(reason="webhook"))  # no payload: git says what changed
    assert scanner.wait_idle(60)
    scanner.listeners.remove(reports.append)
    return reports[-1]


def test_bare_webhook_reads_only_the_files_the_pull_changed(tmp_path: Path) -> None:
    repos = Repos(tmp_path, FILES)
    scanner = scanner_for(tmp_path, repos.served)
    assert len(scanner.run().added) == 7
    note(repos.author / "NLP/n1.md", "N1 edited")
    note(repos.author / "NLP/new.md", "New")
    (repos.author / "NLP/n2.md").unlink()
    git("mv", "NLP/n3.md", "Python/n3.md", cwd=repos.author)  # a rename: delete + add
    repos.push("edits")
    # a file changed on the served disk but not by the pull: a walk would read it
    note(repos.served / "NLP/n4.md", "N4 local")
    report = webhook_scan(scanner)
    assert report.updated == ("notes/NLP/n1.md",)
    assert report.added == ("notes/NLP/new.md",)
    assert report.removed == ("notes/NLP/n2.md",)
    assert report.renamed == ("notes/NLP/n3.md",)
    assert report.unchanged == 0 and report.source_errors == ()
    # HEAD did not move: nothing to look at
    again = webhook_scan(scanner)
    assert (again.added, again.updated, again.removed, again.unchanged) == ((), (), (), 0)
    # the poll (safety net) still walks everything, and finds the local edit
    polled = scanner.run(ScanJob(reason="poll"))
    assert polled.updated == ("notes/NLP/n4.md",) and polled.unchanged == 6
    scanner.store.close()


def test_payload_paths_and_git_changes_are_united(tmp_path: Path) -> None:
    repos = Repos(tmp_path, FILES)
    scanner = scanner_for(tmp_path, repos.served)
    scanner.run()
    note(repos.author / "NLP/n1.md", "N1 edited")
    repos.push("edit")
    note(repos.served / "Python/p.md", "P local")
    scanner.request(ScanRequest(source="notes", paths=("Python/p.md",), reason="webhook"))
    assert scanner.wait_idle(60)
    last = scanner.store.last_scan()
    assert last is not None
    assert sorted(last["updated"]) == ["notes/NLP/n1.md", "notes/Python/p.md"]
    scanner.store.close()


def test_source_in_a_sub_folder_of_the_repository(tmp_path: Path) -> None:
    repos = Repos(tmp_path, {"site/notes/NLP/a.md": "A", "site/notes/NLP/b.md": "B",
                             "README.md": "readme", "site/other.md": "other"})
    root = repos.served / "site" / "notes"
    source = Source(name="notes", root=root, pull="git")
    note(repos.author / "site/notes/NLP/a.md", "A2")
    note(repos.author / "site/other.md", "other 2")
    note(repos.author / "README.md", "readme 2")
    repos.push("edits")
    pulled = sources_git.pull(source)
    assert pulled.problem is None and pulled.changed == ("NLP/a.md",)

    scanner = scanner_for(tmp_path, root)
    scanner.run()
    note(repos.author / "site/notes/NLP/b.md", "B2")
    note(repos.author / "site/other.md", "other 3")
    repos.push("more")
    report = webhook_scan(scanner)
    assert report.updated == ("notes/NLP/b.md",) and report.unchanged == 0
    scanner.store.close()


def test_git_failure_means_a_full_walk_and_a_problem(tmp_path: Path) -> None:
    repos = Repos(tmp_path, FILES)
    scanner = scanner_for(tmp_path, repos.served)
    scanner.run()
    note(repos.served / "NLP/n4.md", "N4 local")
    # the upstream is gone: the pull fails, the scan walks what is on disk
    os.rename(repos.upstream, tmp_path / "moved.git")
    report = webhook_scan(scanner)
    assert [p.reason.startswith("git pull failed") for p in report.source_errors] == [True]
    assert report.updated == ("notes/NLP/n4.md",) and report.unchanged == 6
    scanner.store.close()


def test_git_that_cannot_tell_head_walks_and_says_why(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    repos = Repos(tmp_path, FILES)
    source = Source(name="notes", root=repos.served, pull="git")
    note(repos.author / "NLP/n1.md", "N1 edited")
    repos.push("edit")
    real = sources_git.run_git

    def broken_diff(root: Path, *args: str, read_only: bool = False) -> sources_git.GitRun:
        if args[0] == "diff":
            return sources_git.GitRun(False, failure="fatal: bad object")
        return real(root, *args, read_only=read_only)
    monkeypatch.setattr(sources_git, "run_git", broken_diff)
    pulled = sources_git.pull(source)
    assert pulled.changed is None and pulled.problem is not None
    assert "git diff" in pulled.problem.reason and "the source is walked" in pulled.problem.reason
    assert (repos.served / "NLP/n1.md").read_text().splitlines()[1] == "title: N1 edited"  # pulled
