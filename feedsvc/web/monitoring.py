"""GET /metrics: the Prometheus text exposition of feedsvc.metrics, behind a bearer token when
`metrics.token` is set; and the hooks that count every request by route and status."""

from __future__ import annotations

import time

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import g
from flask import request

from feedsvc import metrics
from feedsvc.web.ext import get_services

bp = Blueprint("monitoring", __name__)


@bp.route("/metrics")
def metrics_endpoint() -> Response:
    token = get_services().config.metrics.token
    if not metrics.is_authorized(request.headers.get("Authorization"), token):
        return Response("metrics: missing or wrong bearer token\n", status=401,
                        content_type="text/plain; charset=utf-8",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    services = get_services()
    if services.config.activitypub.enabled:  # from the store: right whichever process answers
        now = services.clock()
        depth, oldest = services.store.federation.queue_stats(now)
        metrics.set_federation_state(depth, (now - oldest).total_seconds() if oldest else 0.0,
                                     services.store.federation.follower_counts())
    return Response(metrics.exposition(), content_type=metrics.CONTENT_TYPE,
                    headers={"Cache-Control": "no-store"})


def count_requests(app: Flask) -> None:
    """Count every answer (errors included: after_request runs for handled errors and 500s)
    under its route rule, so label values stay few whatever paths clients send."""

    @app.before_request
    def start_timer() -> None:
        g.feedsvc_request_started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        if request.environ.get("feedsvc.internal"):
            return response  # the fast path preparing its answers (web/fast.py)
        started = g.get("feedsvc_request_started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        sent = 0
        if request.method != "HEAD" and response.status_code != 304:
            sent = response.content_length or 0
        metrics.record_request(request.url_rule.rule if request.url_rule else None,
                               request.method, response.status_code, sent, seconds)
        return response
