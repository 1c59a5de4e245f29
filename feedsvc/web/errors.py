"""The one table from domain errors to HTTP answers: short messages, never a 500 for an
expected error. JSON for API paths, a small page otherwise."""

from __future__ import annotations

import logging

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed

from feedsvc.errors import FeedsvcError
from feedsvc.errors import NotFoundError
from feedsvc.errors import PayloadTooLargeError
from feedsvc.errors import QueryParameterError
from feedsvc.errors import RenderError
from feedsvc.errors import StoreError
from feedsvc.errors import WebhookAuthError
from feedsvc.errors import WebhookDisabledError

logger = logging.getLogger(__name__)

STATUS: list[tuple[type[FeedsvcError], int]] = [
    (NotFoundError, 404),
    (QueryParameterError, 400),
    (WebhookAuthError, 401),
    (WebhookDisabledError, 403),
    (PayloadTooLargeError, 413),
    (StoreError, 503),
    (RenderError, 500),
]


def status_for(error: FeedsvcError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500


def _wants_json() -> bool:
    path = request.path
    return path.endswith(".json") or path.startswith(
        ("/hooks/", "/healthz", "/ap/", "/.well-known/", "/nodeinfo/"))  # machines, not people


def error_response(status: int, message: str) -> Response:
    if _wants_json():
        response = jsonify({"error": message, "status": status})
    else:
        response = Response(render_template("pages/error.html", status=status, message=message),
                            content_type="text/html; charset=utf-8")
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(FeedsvcError)
    def handle_feedsvc_error(error: FeedsvcError) -> Response:
        status = status_for(error)
        if status >= 500:
            logger.error("request failed: path=%s error=%s", request.path, error)
        return error_response(status, error.message)

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException) -> Response:
        response = error_response(error.code or 500, error.description or error.name)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
