"""Webhook authentication (GitHub/Gitea HMAC signatures, GitLab tokens and bearer tokens,
compared in constant time) and what a payload asks to scan (targets_from_payload). Knows
nothing of Flask; the hooks blueprint calls verify() and targets_from_payload()."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import Protocol

from feedsvc.errors import NotFoundError
from feedsvc.errors import WebhookAuthError
from feedsvc.errors import WebhookDisabledError
from feedsvc.model import Source
from feedsvc.sources.git import work_tree_root
from feedsvc.sources.paths import clean_rel_path

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class Headers(Protocol):
    """Case-insensitive header lookup (Werkzeug's Headers, or a dict in tests)."""

    def get(self, key: str, /) -> str | None: ...

DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery", "X-Request-Id")


def sign(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value for a body (what GitHub and Gitea send)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(headers: Headers, body: bytes, *, secret: str,
           allow_unauthenticated: bool) -> None:
    """Raise WebhookAuthError / WebhookDisabledError unless the request is authentic."""
    if not secret:
        if allow_unauthenticated:
            return
        raise WebhookDisabledError()
    expected_sig = sign(secret, body).encode()
    signature = headers.get("X-Hub-Signature-256")
    if signature is not None and hmac.compare_digest(signature.strip().encode(), expected_sig):
        return
    token = headers.get("X-Gitlab-Token")
    if token is not None and hmac.compare_digest(token.encode(), secret.encode()):
        return
    auth = headers.get("Authorization") or ""
    if auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(),
                                                             secret.encode()):
        return
    raise WebhookAuthError()


def delivery_id(headers: Headers) -> str | None:
    for name in DELIVERY_HEADERS:
        value = headers.get(name)
        if value:
            return f"{name.lower()}:{value[:200]}"
    return None


class DeliveryLog:
    """Remembers delivery ids for a while, so a redelivered webhook does not scan again."""

    def __init__(self, ttl_seconds: float = 600.0, max_items: int = 10000) -> None:
        self.ttl = ttl_seconds
        self.max_items = max_items
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_repeat(self, delivery: str | None, now: float | None = None) -> bool:
        """True if this id was seen within the ttl; records it otherwise."""
        if delivery is None:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) >= self.max_items:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.ttl}
            seen_at = self._seen.get(delivery)
            if seen_at is not None and now - seen_at < self.ttl:
                return True
            self._seen[delivery] = now
            return False


# -- what a payload asks to scan -------------------------------------------------------

Target = tuple[str | None, tuple[str, ...] | None]  # (source or None = every source, paths or None = walk)
RepoRoot = Callable[[Path], Path | None]


def _ignored(path: object, reason: str) -> None:
    logger.warning("webhook path ignored: path=%r reason=%s", str(path)[:200], reason)


def targets_from_payload(body: bytes, headers: Headers, sources: Sequence[Source],
                         query_source: str | None, *,
                         repo_root: RepoRoot = work_tree_root) -> list[Target]:
    """What a webhook asks to scan: a list of (source, paths) where paths is None for a walk.

    Understands GitHub/Gitea/Forgejo and GitLab pushes (commits[].added/modified/removed,
    relative to the repository root: a source that is a sub-folder of the work tree takes the
    paths under it) and feedsvc's own {"source": name, "paths": [...]} (relative to that
    source; an unknown source raises NotFoundError). A path that is absolute, climbs out or
    names no source is ignored and logged. No list of files (or empty commits) means a walk."""
    names = {s.name for s in sources}
    if query_source is not None and query_source not in names:
        raise NotFoundError(f"no source {query_source!r}")
    walk: list[Target] = [(query_source, None)]
    try:
        payload = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        return walk
    if not isinstance(payload, dict):
        return walk
    if "paths" in payload and "commits" not in payload:
        return _own_targets(payload, names, query_source)
    commits = payload.get("commits")
    if not isinstance(commits, list) or not commits:
        return walk
    total = payload.get("total_commits_count")  # GitLab lists at most 20 commits
    if isinstance(total, int) and total > len(commits):
        return walk
    repo_paths: set[str] = set()
    for commit in commits:
        if not isinstance(commit, dict):
            return walk
        lists = [commit.get(k) for k in ("added", "modified", "removed")]
        if all(v is None for v in lists):
            return walk  # a commit without file lists: we cannot know what changed
        for value in lists:
            for path in value if isinstance(value, list) else ():
                clean, reason = clean_rel_path(path)
                if clean is None:
                    _ignored(path, reason)
                else:
                    repo_paths.add(clean)
    if not repo_paths:
        return walk
    chosen = [s for s in sources if query_source is None or s.name == query_source]
    per_source: dict[str, set[str]] = {}
    claimed: set[str] = set()
    for source in chosen:
        prefix = _prefix_in_repo(source, repo_root)
        if prefix is None:
            continue
        for path in repo_paths:
            if not prefix:
                rel = path
            elif path.startswith(prefix + "/"):
                rel = path[len(prefix) + 1:]
            else:
                continue
            per_source.setdefault(source.name, set()).add(rel)
            claimed.add(path)
    for path in sorted(repo_paths - claimed):
        _ignored(path, "names no source")
    return [(name, tuple(sorted(paths))) for name, paths in sorted(per_source.items())]


def _own_targets(payload: dict[str, Any], names: set[str],
                 query_source: str | None) -> list[Target]:
    source = payload.get("source", query_source)
    if not isinstance(source, str) or source not in names:
        raise NotFoundError(f"no source {source!r}")
    paths = payload.get("paths")
    if not isinstance(paths, list) or not paths:
        return [(source, None)]
    clean_paths: set[str] = set()
    for path in paths:
        clean, reason = clean_rel_path(path)
        if clean is None:
            _ignored(path, reason)
        else:
            clean_paths.add(clean)
    return [(source, tuple(sorted(clean_paths)))] if clean_paths else []


def _prefix_in_repo(source: Source, repo_root: RepoRoot) -> str | None:
    """Where the source sits in its git work tree ("" at the root); a source outside git
    takes the paths as relative to itself."""
    try:
        root = source.root.resolve()
    except OSError:
        return None
    top = repo_root(root)
    if top is None:
        return ""
    try:
        rel = root.relative_to(top).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel
