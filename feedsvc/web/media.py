"""/media/<source>/<path>: images and other files of a source, never outside it."""

from __future__ import annotations

import mimetypes

from flask import Blueprint
from flask import Response
from flask import send_file

from feedsvc.errors import MediaNotFoundError
from feedsvc.model import is_note_path
from feedsvc.sources import resolve_media_path
from feedsvc.web.ext import get_services

bp = Blueprint("media", __name__)
MEDIA_MAX_AGE = 3600


@bp.route("/media/<source>/<path:rel_path>", methods=["GET", "HEAD"])
def media(source: str, rel_path: str) -> Response:
    services = get_services()
    try:
        src = services.config.source(source)
    except KeyError:
        raise MediaNotFoundError(source, rel_path) from None
    path = None if is_note_path(rel_path) else resolve_media_path(src, rel_path)
    if path is None:
        raise MediaNotFoundError(source, rel_path)
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if mimetype.startswith("text/") or mimetype in ("image/svg+xml", "application/xhtml+xml"):
        mimetype = "text/plain" if mimetype.startswith("text/") else mimetype
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=MEDIA_MAX_AGE,
                         etag=True, last_modified=path.stat().st_mtime)
    response.headers["Cache-Control"] = f"public, max-age={MEDIA_MAX_AGE}"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
