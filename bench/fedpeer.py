"""A fast stand-in for many ActivityPub instances, for bench/federation.py: one asyncio
HTTP/1.1 server on 127.0.0.1 (keep-alive) that answers 202 to any POST and counts it, so one
port stands for many instances (/s/<n>/inbox shared inboxes, /i/<n>/inbox personal ones), and
serves actor documents (GET /users/<name>) for the public keys in --actors. It verifies no
signature (the tests do); it records the CLOCK_MONOTONIC time of each POST, which is the
same clock in every process of the machine, so the benchmark can time webhook -> POST.

    python bench/fedpeer.py --port P [--actors keys.json]

Prints "ready" on stdout once it listens. GET /stats: {"posts", "distinct", "first", "last",
"gets", "bytes" (of POST bodies), "by_prefix"}; GET /times?from=K: the times of POSTs K, K+1,
... Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
from collections import Counter
from typing import Any

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
ACTIVITY_JSON = "application/activity+json"


class Counts:
    """What the server saw: POSTs (time, path) and actor-document GETs."""

    def __init__(self, base: str, actors: dict[str, str]) -> None:
        self.base = base
        self.actors = actors  # name -> public key PEM
        self.times: list[float] = []
        self.paths: set[str] = set()
        self.by_prefix: Counter[str] = Counter()
        self.gets = 0
        self.body_bytes = 0

    def answer(self, method: str, target: str, body: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for one request."""
        path, _, query = target.partition("?")
        if method == "POST":
            self.times.append(time.monotonic())
            self.paths.add(path)
            self.body_bytes += len(body)
            self.by_prefix[path.split("/", 2)[1] if path.count("/") >= 2 else path] += 1
            return 202, b"", "text/plain"
        if path == "/stats":
            return 200, json.dumps({
                "posts": len(self.times), "distinct": len(self.paths),
                "first": self.times[0] if self.times else None,
                "last": self.times[-1] if self.times else None, "gets": self.gets,
                "bytes": self.body_bytes,
                "by_prefix": dict(self.by_prefix)}).encode(), "application/json"
        if path == "/times":
            start = int(urllib.parse.parse_qs(query).get("from", ["0"])[0])
            return 200, json.dumps(self.times[start:]).encode(), "application/json"
        name = path.removeprefix("/users/")
        if path.startswith("/users/") and name in self.actors:
            self.gets += 1
            return 200, json.dumps(self.actor_document(name)).encode(), ACTIVITY_JSON
        return 404, b"", "text/plain"

    def actor_document(self, name: str) -> dict[str, Any]:
        actor = f"{self.base}/users/{name}"
        return {"@context": [AS_CONTEXT, "https://w3id.org/security/v1"], "id": actor,
                "type": "Person", "preferredUsername": name, "inbox": f"{actor}/inbox",
                "outbox": f"{actor}/outbox",
                "publicKey": {"id": f"{actor}#main-key", "owner": actor,
                              "publicKeyPem": self.actors[name]}}


REASONS = {200: "OK", 202: "Accepted", 404: "Not Found"}


async def serve_connection(counts: Counts, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            length, close = 0, version == "HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
            body = await reader.readexactly(length) if length else b""
            status, payload, content_type = counts.answer(method, target, body)
            writer.write(f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}"
                         f"\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload)
            await writer.drain()
            if close:
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
            ValueError):
        pass  # the client went away or sent something this stand-in does not read
    finally:
        writer.close()


async def main_async(port: int, actors: dict[str, str]) -> None:
    counts = Counts(f"http://127.0.0.1:{port}", actors)
    server = await asyncio.start_server(lambda r, w: serve_connection(counts, r, w),
                                        "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--actors", help="JSON file: {name: public key PEM}")
    args = parser.parse_args()
    actors: dict[str, str] = {}
    if args.actors:
        with open(args.actors, encoding="utf-8") as f:
            actors = json.load(f)
    try:
        asyncio.run(main_async(args.port, actors))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
