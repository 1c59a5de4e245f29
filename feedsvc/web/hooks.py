"""POST /hooks/refresh: authenticate, de-duplicate deliveries, ask for a scan, answer 202."""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request

from feedsvc import metrics
from feedsvc.errors import NotFoundError
from feedsvc.errors import PayloadTooLargeError
from feedsvc.errors import QueryParameterError
from feedsvc.errors import WebhookError
from feedsvc.web.webhook import MAX_BODY_BYTES
from feedsvc.web.webhook import delivery_id
from feedsvc.web.webhook import targets_from_payload
from feedsvc.web.webhook import verify
from feedsvc.web.ext import get_services
from feedsvc.web.params import shown
from feedsvc.web.params import text_param

logger = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__)


def _read_body() -> bytes:
    """The raw body, refusing (413) anything over 1 MiB without reading it all."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise PayloadTooLargeError()
    body = request.stream.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError()
    return body


@bp.route("/hooks/refresh", methods=["POST"])
def refresh() -> tuple[Response, int]:
    services = get_services()
    try:
        body = _read_body()
        verify(request.headers, body, secret=services.config.webhook.secret,
               allow_unauthenticated=services.config.webhook.allow_unauthenticated)
    except WebhookError as e:
        logger.warning("webhook refused: remote=%s reason=%s", request.remote_addr, e.message)
        metrics.record_webhook(metrics.webhook_refusal(e))
        raise
    try:
        source = text_param(request, "source")
    except QueryParameterError:
        metrics.record_webhook("bad_request")
        raise
    if source is not None and source not in {s.name for s in services.config.sources}:
        metrics.record_webhook("unknown_source")
        raise NotFoundError(f"source: no source {shown(source)}")
    try:
        targets = targets_from_payload(body, request.headers, services.config.sources, source)
    except NotFoundError:
        metrics.record_webhook("unknown_source")
        raise
    delivery = delivery_id(request.headers)
    if services.deliveries.is_repeat(delivery):
        metrics.record_webhook("duplicate")
        return jsonify({"status": "duplicate", "delivery": delivery}), 202
    if not targets:
        metrics.record_webhook("ignored")
        return jsonify({"status": "ignored", "source": source}), 202
    statuses = [services.dispatch(name, paths=paths, reason="webhook") for name, paths in targets]
    status = "started" if "started" in statuses else statuses[0]
    metrics.record_webhook(status)
    return jsonify({"status": status, "source": source,
                    "targets": [{"source": n, "paths": None if p is None else len(p)}
                                for n, p in targets]}), 202
