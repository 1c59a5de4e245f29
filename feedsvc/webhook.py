"""Webhook authentication: GitHub/Gitea HMAC signatures, GitLab tokens and bearer tokens,
compared in constant time. Knows nothing of Flask; the hooks blueprint calls verify()."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Protocol

from feedsvc.errors import WebhookAuthError
from feedsvc.errors import WebhookDisabledError

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
