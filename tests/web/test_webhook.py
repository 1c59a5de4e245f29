"""Webhook authentication and abuse handling, through the Flask test client."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from feedsvc.config import load_config
from feedsvc.web import create_app
from feedsvc.web.webhook import DeliveryLog
from feedsvc.web.webhook import sign

from conftest import NotesDir
from conftest import write_config

BODY = b'{"ref": "refs/heads/main"}'


def signature(body: bytes, secret: str = "s3cret") -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("headers", [
    {"X-Hub-Signature-256": signature(BODY)},
    {"X-Gitlab-Token": "s3cret"},
    {"Authorization": "Bearer s3cret"},
    {"Authorization": "bearer s3cret"},
])
def test_each_auth_form_is_accepted(client: Any, app: Any, headers: dict[str, str]) -> None:
    response = client.post("/hooks/refresh", data=BODY, headers=headers)
    assert response.status_code == 202
    assert response.get_json()["status"] in ("started", "queued")
    assert app.extensions["feedsvc"].scanner.wait_idle(10)


@pytest.mark.parametrize("headers", [
    {},
    {"X-Hub-Signature-256": signature(BODY, "wrong")},
    {"X-Hub-Signature-256": signature(BODY + b" ")},
    {"X-Hub-Signature-256": "sha256="},
    {"X-Hub-Signature-256": signature(BODY).upper()},
    {"X-Gitlab-Token": "s3cret "},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Basic czNjcmV0"},
])
def test_missing_or_wrong_signature_is_401(client: Any, app: Any, headers: dict[str, str]) -> None:
    response = client.post("/hooks/refresh", data=BODY, headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {"error": "missing or wrong signature", "status": 401}
    assert app.extensions["feedsvc"].scanner.scans_run == 0


def test_sign_matches_github_format() -> None:
    assert sign("It's a Secret to Everybody", b"Hello, World!") == \
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_no_secret_means_403_unless_allowed(tmp_path: Any, notes: NotesDir) -> None:
    path = write_config(tmp_path, notes.root)
    path.write_text(path.read_text().replace('secret = "s3cret"', ""))
    app = create_app(load_config(path, env={}))
    assert app.test_client().post("/hooks/refresh", data=BODY).status_code == 403
    path.write_text(path.read_text() + "allow_unauthenticated = true\n")
    app = create_app(load_config(path, env={}))
    assert app.test_client().post("/hooks/refresh", data=BODY).status_code == 202
    assert app.extensions["feedsvc"].scanner.wait_idle(10)


def test_oversized_body_is_413_without_reading_it(client: Any) -> None:
    big = b"x" * (1024 * 1024 + 1)
    response = client.post("/hooks/refresh", data=big,
                           headers={"X-Hub-Signature-256": signature(big)})
    assert response.status_code == 413


def test_wrong_method_is_405(client: Any) -> None:
    response = client.get("/hooks/refresh")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_unknown_source_is_404(client: Any) -> None:
    response = client.post("/hooks/refresh?source=nope", data=BODY,
                           headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 404


def test_repeated_delivery_is_acknowledged_but_not_rescanned(client: Any, app: Any) -> None:
    scanner = app.extensions["feedsvc"].scanner
    headers = {"X-Hub-Signature-256": signature(BODY), "X-GitHub-Delivery": "abc-123"}
    assert client.post("/hooks/refresh", data=BODY, headers=headers).get_json()["status"] == "started"
    assert scanner.wait_idle(10)
    again = client.post("/hooks/refresh", data=BODY, headers=headers)
    assert again.status_code == 202 and again.get_json()["status"] == "duplicate"
    gitea = {"Authorization": "Bearer s3cret", "X-Gitea-Delivery": "abc-123"}
    assert client.post("/hooks/refresh", data=BODY, headers=gitea).get_json()["status"] == "started"
    assert scanner.wait_idle(10)
    assert scanner.scans_run == 2


def test_delivery_log_forgets_after_ten_minutes() -> None:
    log = DeliveryLog(ttl_seconds=600)
    assert log.is_repeat("d", now=0.0) is False
    assert log.is_repeat("d", now=599.0) is True
    assert log.is_repeat("d", now=1200.0) is False
    assert log.is_repeat(None) is False


def test_every_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """All three auth forms compare through hmac.compare_digest, never ==."""
    from feedsvc.web import webhook
    from feedsvc.errors import WebhookAuthError
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)
    monkeypatch.setattr(webhook.hmac, "compare_digest", spy)
    with pytest.raises(WebhookAuthError):
        webhook.verify({"X-Hub-Signature-256": "sha256=00", "X-Gitlab-Token": "t",
                        "Authorization": "Bearer b"}, BODY, secret="s3cret",
                       allow_unauthenticated=False)
    assert calls == [(b"sha256=00", signature(BODY).encode()), (b"t", b"s3cret"),
                     (b"b", b"s3cret")]
