"""What a webhook payload asks to scan (targets_from_payload): GitHub/Gitea/Forgejo and GitLab
pushes, feedsvc's own {"source", "paths"}, path containment; and a real HTTP webhook naming
one file, whose change shows in the category JSON feed without a walk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from feedsvc.scan import scope as scope_module
from feedsvc.errors import NotFoundError
from feedsvc.model import Source
from feedsvc.web.webhook import sign
from feedsvc.web.webhook import targets_from_payload

from conftest import LiveServer
from conftest import NotesDir


def sources(tmp_path: Path) -> list[Source]:
    (tmp_path / "repo" / "notes").mkdir(parents=True, exist_ok=True)
    (tmp_path / "repo" / "blog").mkdir(exist_ok=True)
    return [Source(name="notes", root=tmp_path / "repo" / "notes"),
            Source(name="blog", root=tmp_path / "repo" / "blog")]


def targets(tmp_path: Path, payload: Any, query_source: str | None = None) -> Any:
    repo = (tmp_path / "repo").resolve()
    return targets_from_payload(json.dumps(payload).encode(), {}, sources(tmp_path), query_source,
                                repo_root=lambda folder: repo)


def push(*commits: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"ref": "refs/heads/main", "commits": list(commits), **extra}


def test_github_and_gitea_push_paths_map_into_each_source(tmp_path: Path) -> None:
    payload = push({"added": ["notes/NLP/a.md"], "modified": ["blog/post.md"], "removed": []},
                   {"added": [], "modified": ["notes/NLP/a.md", "README.md"],
                    "removed": ["notes/old.md"]})
    assert targets(tmp_path, payload) == [("blog", ("post.md",)),
                                          ("notes", ("NLP/a.md", "old.md"))]
    assert targets(tmp_path, payload, "notes") == [("notes", ("NLP/a.md", "old.md"))]


def test_gitlab_push_with_more_commits_than_listed_walks(tmp_path: Path) -> None:
    listed = push({"added": ["notes/a.md"], "modified": [], "removed": []})
    assert targets(tmp_path, listed | {"total_commits_count": 1}) == [("notes", ("a.md",))]
    assert targets(tmp_path, listed | {"total_commits_count": 25}) == [(None, None)]


def test_push_without_file_lists_or_commits_walks(tmp_path: Path) -> None:
    assert targets(tmp_path, push({"id": "abc"})) == [(None, None)]
    assert targets(tmp_path, {"ref": "x", "commits": []}, "notes") == [("notes", None)]
    assert targets(tmp_path, "not an object") == [(None, None)]


def test_own_payload_names_a_source_and_its_paths(tmp_path: Path) -> None:
    assert targets(tmp_path, {"source": "notes", "paths": ["NLP/a.md", "NLP//b.md"]}) == [
        ("notes", ("NLP/a.md", "NLP/b.md"))]
    assert targets(tmp_path, {"source": "notes", "paths": []}) == [("notes", None)]
    assert targets(tmp_path, {"paths": ["x.md"]}, "blog") == [("blog", ("x.md",))]
    with pytest.raises(NotFoundError):
        targets(tmp_path, {"source": "nope", "paths": ["x.md"]})


def test_paths_that_climb_out_or_are_absolute_are_dropped(tmp_path: Path) -> None:
    payload = {"source": "notes", "paths": ["../blog/x.md", "/etc/passwd", "a/../../b.md",
                                            "C:/x.md", "a\\b.md", "ok.md", 7]}
    assert targets(tmp_path, payload) == [("notes", ("ok.md",))]
    assert targets(tmp_path, {"source": "notes", "paths": ["../x.md"]}) == []
    outside = push({"added": ["elsewhere/x.md", "../notes/y.md"], "modified": [], "removed": []})
    assert targets(tmp_path, outside) == []


def test_webhook_naming_one_file_shows_in_the_category_feed_over_http(
        live_server: LiveServer, notes: NotesDir, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        notes.write(f"NLP/n{i}.md", f"正文 {i}", title=f"N{i}", date=f"2025-01-0{i + 1}")
    scanner = live_server.app.extensions["feedsvc"].scanner
    scanner.run()
    walks: list[Any] = []
    real = scope_module.snapshot_source
    monkeypatch.setattr("feedsvc.scan.scope.snapshot_source",
                        lambda s, *a: walks.append(s) or real(s, *a))  # type: ignore[func-returns-value]
    notes.write("NLP/n2.md", "改过", title="N2 edited", date="2025-01-03")
    body = json.dumps({"source": "notes", "paths": ["NLP/n2.md"]}).encode()
    response = requests.post(f"{live_server.url}/hooks/refresh", data=body, timeout=10,
                             headers={"X-Hub-Signature-256": sign("s3cret", body),
                                      "Content-Type": "application/json"})
    assert response.status_code == 202
    assert scanner.wait_idle(15)
    items = requests.get(f"{live_server.url}/feeds/nlp.json", timeout=10).json()["items"]
    assert "N2 edited" in [item["title"] for item in items]
    assert walks == []
    last = scanner.store.last_scan()
    assert last is not None and last["updated"] == ["notes/NLP/n2.md"] and last["unchanged"] == 0
