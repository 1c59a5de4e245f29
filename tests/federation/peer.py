"""A second ActivityPub server for the tests: its own RSA keys, actors with inboxes, a shared
inbox, and an HTTP-signature implementation of its own (draft-cavage-12 as Mastodon speaks it,
written here with `cryptography` and nothing from feedsvc), so feedsvc's signatures and this
peer's check each other. It serves on 127.0.0.1, records every activity it receives after
verifying its signature (fetching the signer's actor document, as Mastodon does), and signs
what it sends."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import http.server
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
ACTIVITY_JSON = "application/activity+json"


def http_date(moment: dt.datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)


def signing_string(method: str, target: str, headers: dict[str, str], names: list[str]) -> str:
    lines = []
    lower = {k.lower(): v for k, v in headers.items()}
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        else:
            lines.append(f"{name}: {lower[name]}")
    return "\n".join(lines)


@dataclass
class Received:
    """An activity that reached one of the peer's inboxes, and what its signature said."""

    inbox: str
    activity: dict[str, Any]
    signer: str  # the keyId that signed it
    verified: bool
    reason: str


@dataclass
class PeerActor:
    name: str
    key: rsa.RSAPrivateKey
    shared_inbox: bool = True

    @property
    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class Peer:
    """The server; `with Peer() as peer:` starts it on a free port."""

    status: int = 202  # what its inboxes answer after a verified POST
    actors: dict[str, PeerActor] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    gets: list[str] = field(default_factory=list)  # the paths fetched from it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                with peer.lock:
                    peer.gets.append(path)
                name = path.rsplit("/", 1)[-1]
                if path.startswith("/users/") and name in peer.actors:
                    body = json.dumps(peer.actor_document(name)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", ACTIVITY_JSON)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                verified, reason, signer = peer.verify(self.command, self.path,
                                                       dict(self.headers.items()), body)
                try:
                    activity = json.loads(body)
                except ValueError:
                    activity = {}
                with peer.lock:
                    peer.received.append(Received(inbox=self.path, activity=activity,
                                                  signer=signer, verified=verified, reason=reason))
                self.send_response(peer.status if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Peer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    # -- its actors --------------------------------------------------------------------

    def add_actor(self, name: str, *, shared_inbox: bool = True) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.actors[name] = PeerActor(name=name, key=key, shared_inbox=shared_inbox)
        return self.actor_id(name)

    def actor_id(self, name: str) -> str:
        return f"{self.base}/users/{name}"

    def actor_document(self, name: str) -> dict[str, Any]:
        actor = self.actors[name]
        doc: dict[str, Any] = {
            "@context": [AS_CONTEXT, "https://w3id.org/security/v1"],
            "id": self.actor_id(name), "type": "Person", "preferredUsername": name,
            "inbox": f"{self.actor_id(name)}/inbox", "outbox": f"{self.actor_id(name)}/outbox",
            "publicKey": {"id": f"{self.actor_id(name)}#main-key", "owner": self.actor_id(name),
                          "publicKeyPem": actor.public_pem},
        }
        if actor.shared_inbox:
            doc["endpoints"] = {"sharedInbox": f"{self.base}/inbox"}
        return doc

    # -- signatures: its own implementation ----------------------------------------------

    def signed_headers(self, name: str, method: str, url: str, body: bytes | None,
                       now: dt.datetime | None = None) -> dict[str, str]:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Host": parts.netloc, "Date": http_date(now or dt.datetime.now(dt.timezone.utc))}
        names = ["(request-target)", "host", "date"]
        if body is not None:
            headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
            headers["Content-Type"] = ACTIVITY_JSON
            names.append("digest")
        text = signing_string(method, target, headers, names)
        signature = self.actors[name].key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        headers["Signature"] = (
            f'keyId="{self.actor_id(name)}#main-key",algorithm="rsa-sha256",'
            f'headers="{" ".join(names)}",signature="{base64.b64encode(signature).decode()}"')
        return headers

    def verify(self, method: str, target: str, headers: dict[str, str],
               body: bytes) -> tuple[bool, str, str]:
        """Check a received POST as Mastodon does: (verified, reason, keyId)."""
        lower = {k.lower(): v for k, v in headers.items()}
        params = dict(part.split("=", 1) for part in
                      lower.get("signature", "").split(",") if "=" in part)
        params = {k.strip(): v.strip().strip('"') for k, v in params.items()}
        key_id = params.get("keyId", "")
        names = params.get("headers", "").split()
        if not key_id or not {"(request-target)", "host", "date", "digest"} <= set(names):
            return False, f"signed headers {names} lack one of (request-target) host date digest", key_id
        digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if lower.get("digest") != digest:
            return False, "digest does not match the body", key_id
        sent = email.utils.parsedate_to_datetime(lower.get("date", ""))
        if abs((dt.datetime.now(dt.timezone.utc) - sent).total_seconds()) > 12 * 3600:
            return False, "date too far from now", key_id
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    key_id.split("#", 1)[0], headers={"Accept": ACTIVITY_JSON}), timeout=10) as r:
                actor = json.loads(r.read())
            key = serialization.load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(base64.b64decode(params["signature"]),
                       signing_string(method, target, lower, names).encode(),
                       padding.PKCS1v15(), hashes.SHA256())
        except Exception as e:  # any failure is a failed verification, recorded as such
            return False, f"{type(e).__name__}: {e}", key_id
        return True, "ok", key_id

    # -- what it sends ---------------------------------------------------------------------

    def post(self, name: str, inbox: str, activity: dict[str, Any],
             now: dt.datetime | None = None) -> tuple[int, bytes]:
        """A signed POST of `activity` by actor `name` to `inbox`: (status, body)."""
        body = json.dumps(activity).encode()
        request = urllib.request.Request(inbox, data=body, method="POST",
                                         headers=self.signed_headers(name, "POST", inbox, body, now))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def follow(self, name: str, target_actor: str, inbox: str) -> tuple[int, str]:
        activity_id = f"{self.actor_id(name)}/follows/{len(self.received)}-{target_actor[-12:]}"
        status, _ = self.post(name, inbox, {"@context": AS_CONTEXT, "id": activity_id,
                                            "type": "Follow", "actor": self.actor_id(name),
                                            "object": target_actor})
        return status, activity_id

    def verified(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The activities received with a valid signature (of one type, if given)."""
        with self.lock:
            return [r.activity for r in self.received
                    if r.verified and (kind is None or r.activity.get("type") == kind)]
