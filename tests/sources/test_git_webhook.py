"""`pull = "git"`: a webhook scan runs `git pull --ff-only` in the source first."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from feedsvc.config import load_config
from feedsvc.store import open_store
from feedsvc.web import create_app
from feedsvc.model import ScanJob

from conftest import write_config

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "HOME": "/tmp", "PATH": "/usr/bin:/bin"}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=GIT_ENV)


def test_webhook_pulls_then_scans(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream.git"
    git("init", "--bare", "-b", "main", str(upstream), cwd=tmp_path)
    author = tmp_path / "author"
    git("clone", str(upstream), str(author), cwd=tmp_path)
    (author / "NLP").mkdir()
    (author / "NLP" / "first.md").write_text("---\ndate: 2025-01-01\n---\nfirst\n")
    git("add", ".", cwd=author)
    git("commit", "-m", "first", cwd=author)
    git("push", "origin", "HEAD:main", cwd=author)
    checkout = tmp_path / "served"
    git("clone", str(upstream), str(checkout), cwd=tmp_path)

    path = write_config(tmp_path, checkout)
    path.write_text(path.read_text().replace('name = "notes"', 'name = "notes"\npull = "git"'))
    config = load_config(path, env={})
    store = open_store(config.store_url)
    app = create_app(config, store=store)
    client: Any = app.test_client()
    scanner = app.extensions["feedsvc"].scanner
    scanner.run()

    (author / "NLP" / "pushed.md").write_text("---\ntitle: Pushed\ndate: 2025-01-02\n---\nnew\n")
    git("add", ".", cwd=author)
    git("commit", "-m", "second", cwd=author)
    git("push", "origin", "HEAD:main", cwd=author)
    assert client.post("/hooks/refresh", headers={"Authorization": "Bearer s3cret"}).status_code == 202
    assert scanner.wait_idle(30)
    assert (checkout / "NLP" / "pushed.md").exists()
    assert [e["title"] for e in client.get("/updates.json").get_json()["items"]] == ["Pushed", "first"]
    store.close()


def test_failed_pull_is_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    (notes / "NLP").mkdir(parents=True)
    (notes / "NLP" / "a.md").write_text("---\ndate: 2025-01-01\n---\na\n")
    path = write_config(tmp_path, notes)  # not a git checkout
    path.write_text(path.read_text().replace('name = "notes"', 'name = "notes"\npull = "git"'))
    config = load_config(path, env={})
    store = open_store(config.store_url)
    scanner = create_app(config, store=store).extensions["feedsvc"].scanner
    report = scanner.run(ScanJob(pull=True))
    assert report.added == ("notes/NLP/a.md",)
    assert [p.reason.startswith("git pull failed") for p in report.source_errors] == [True]
    store.close()
