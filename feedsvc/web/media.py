"""/media/<source>/<path>: images and other files of a source, never outside it. Served
from the store (the scanner copies media there), so a process without the notes folder
serves them too; a file the store does not hold (not scanned yet, over max_file_bytes) is
served from the source folder when this machine has it."""

from __future__ import annotations

import mimetypes

from flask import Blueprint
from flask import Response
from flask import request
from flask import send_file

from feedsvc.errors import MediaNotFoundError
from feedsvc.model import MediaInfo
from feedsvc.model import is_note_path
from feedsvc.sources.walk import is_safe_media_path
from feedsvc.sources.walk import resolve_media_path
from feedsvc.web.ext import get_services

bp = Blueprint("media", __name__)
MEDIA_MAX_AGE = 3600
MEDIA_HEADERS = {
    "Cache-Control": f"public, max-age={MEDIA_MAX_AGE}",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
}


def served_type(media_type: str) -> str:
    """Never let a source's file run as a page: text of any kind is served as plain text."""
    if media_type.startswith("text/"):
        return "text/plain"
    return media_type


@bp.route("/media/<source>/<path:rel_path>", methods=["GET", "HEAD"])
def media(source: str, rel_path: str) -> Response:
    services = get_services()
    try:
        src = services.config.source(source)
    except KeyError:
        raise MediaNotFoundError(source, rel_path) from None
    if is_note_path(rel_path) or not is_safe_media_path(rel_path):
        raise MediaNotFoundError(source, rel_path)
    for _ in range(2):  # the file may be replaced between the two reads: look once more
        info = services.store.media_info(source, rel_path)
        if info is None:
            break
        data = services.store.media_bytes(info.hash)
        if data is not None:
            return _from_store(info, data)
    path = resolve_media_path(src, rel_path)
    if path is None:
        raise MediaNotFoundError(source, rel_path)
    mimetype = served_type(mimetypes.guess_type(path.name)[0] or "application/octet-stream")
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=MEDIA_MAX_AGE,
                         etag=True, last_modified=path.stat().st_mtime)
    response.headers.update(MEDIA_HEADERS)
    return response


def _from_store(info: MediaInfo, data: bytes) -> Response:
    """The stored bytes with validators from the store: the ETag is the content hash, so
    every web node answers the same ETag and 304 for the same file."""
    response = Response(data, mimetype=served_type(info.media_type))
    response.set_etag(info.hash[:32])
    response.last_modified = info.last_modified
    response.headers.update(MEDIA_HEADERS)
    # If-None-Match / If-Modified-Since -> 304, Range -> 206, HEAD -> no body (as send_file)
    response.make_conditional(request, accept_ranges=True, complete_length=len(data))
    return response
