"""GET /healthz: ok or degraded, the last scan, and each source's problems."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify

from feedsvc.web.ext import get_services

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz() -> Response:
    services = get_services()
    last = services.store.last_scan()
    note_problems = services.store.note_problems()
    source_errors: list[dict[str, Any]] = (last or {}).get("source_errors", [])
    sources = []
    for source in services.config.sources:
        errors = [e["reason"] for e in source_errors if e["source"] == source.name]
        problems = [{"path": p.path, "reason": p.reason} for p in note_problems
                    if p.source == source.name]
        sources.append({"name": source.name, "ok": not errors, "errors": errors,
                        "problems": problems})
    # a `web` process answers for what it serves, the store (read above); the sources'
    # folders are the scanner's business, and its /healthz reports on them
    status = "degraded" if source_errors and services.role != "web" else "ok"
    stats = services.websub.stats  # under `feedsvc serve`, the whole serve's (ServeState)
    holder = services.store.lock_holder("scheduler", services.clock())
    answer: dict[str, Any] = {
        "status": status,
        "role": services.role,
        "revision": services.store.revision(),
        "last_scan": None if last is None else {
            "started": last["started"], "finished": last["finished"], "reason": last["reason"],
            "added": len(last["added"]), "updated": len(last["updated"]),
            "removed": len(last["removed"]), "renamed": len(last["renamed"]),
            "unchanged": last["unchanged"], "problems": len(last["problems"]),
        },
        "sources": sources,
        "scheduler": {"lease_holder": holder,
                      "this_process": services.scheduler_owner is not None
                      and holder == services.scheduler_owner,
                      "last_poll": services.store.get_meta("scheduler_last_poll")},
        "websub": {"hubs": len(services.config.websub.hubs), "sent": stats.sent,
                   "failed": stats.failed, "dropped": stats.dropped,
                   "last_error": stats.last_error},
    }
    if services.config.activitypub.enabled:
        depth, oldest = services.store.federation.queue_stats(services.clock())
        answer["activitypub"] = {"queue_depth": depth,
                                 "oldest_pending": oldest.isoformat() if oldest else None,
                                 "followers": services.store.federation.follower_counts()}
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response
