"""HTTP caching written once: ETag, Last-Modified, Cache-Control, Vary, 304 (RFC 9110 §13)
and content-coding negotiation over bytes compressed ahead of time."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime
from email.utils import parsedate_to_datetime

from flask import Request
from flask import Response

CODING_SUFFIX = {"gzip": "-gz", "br": "-br"}


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    for suffix in CODING_SUFFIX.values():
        if tag.endswith(suffix):
            return tag[: -len(suffix)]
    return tag


def is_not_modified(request: Request, etag: str, last_modified: dt.datetime) -> bool:
    """If-None-Match (weak comparison, lists, *) wins over If-Modified-Since."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        ours = _opaque(etag)
        return any(_opaque(t) == ours for t in inm.split(",") if t.strip())
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.timezone.utc)
        return last_modified.replace(microsecond=0) <= since
    return False


def pick_coding(request: Request, *, has_br: bool) -> str | None:
    accepted = {}
    for part in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if name:
            accepted[name.strip().lower()] = q
    if has_br and accepted.get("br", 0) > 0:
        return "br"
    if accepted.get("gzip", 0) > 0:
        return "gzip"
    return None


def cached_response(request: Request, *, body: bytes, media_type: str, etag: str,
                    last_modified: dt.datetime, max_age: int, gzip_body: bytes | None = None,
                    br_body: bytes | None = None, extra_headers: dict[str, str] | None = None
                    ) -> Response:
    """A 200 (or 304, or HEAD) response for pre-rendered bytes with every validator set."""
    coding = pick_coding(request, has_br=br_body is not None) if gzip_body is not None else None
    tagged = etag if coding is None else etag[:-1] + CODING_SUFFIX[coding] + '"'
    headers = {
        "ETag": tagged,
        "Last-Modified": format_datetime(last_modified.astimezone(dt.timezone.utc), usegmt=True),
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
        **(extra_headers or {}),
    }
    if is_not_modified(request, etag, last_modified):
        response = Response(status=304, headers=headers)
        response.headers.remove("Content-Type")
        return response
    payload = body
    if coding == "gzip" and gzip_body is not None:
        payload = gzip_body
    elif coding == "br" and br_body is not None:
        payload = br_body
    if coding is not None:
        headers["Content-Encoding"] = coding
    response = Response(b"" if request.method == "HEAD" else payload, headers=headers,
                        content_type=media_type)
    response.headers["Content-Length"] = str(len(payload))
    return response
