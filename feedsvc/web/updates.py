"""The "LATEST UPDATES" digest: /updates (HTML) and /updates.json, plus the index page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request

from feedsvc.errors import CategoryNotFoundError
from feedsvc.errors import PageNotFoundError
from feedsvc.model import Entry
from feedsvc.model import FeedFormat
from feedsvc.web.ext import get_services

bp = Blueprint("updates", __name__)


@dataclass(frozen=True, slots=True)
class UpdatesPage:
    entries: list[Entry]
    page: int
    pages: int
    total: int
    category: str | None
    since: str | None


def _load_page() -> UpdatesPage:
    services = get_services()
    now = services.clock()
    category = request.args.get("category") or None
    since_text = request.args.get("since") or None
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        raise PageNotFoundError("page must be a whole number") from None
    if page < 1:
        raise PageNotFoundError(f"no page {page}")
    if category is not None and (category == "all" or services.store.feed_state(category) is None):
        raise CategoryNotFoundError(category)  # a key lookup, not a count over every entry
    since = None
    if since_text is not None:
        try:
            day = dt.date.fromisoformat(since_text)
        except ValueError:
            raise PageNotFoundError("since must be a date, YYYY-MM-DD") from None
        since = dt.datetime(day.year, day.month, day.day, tzinfo=services.config.site.tz)
    size = services.config.updates.page_size
    entries, total = services.store.updates_page(category_slug=category, since=since, page=page,
                                                 page_size=size, now=now)
    pages = max(1, -(-total // size))
    if page > pages:
        raise PageNotFoundError(f"no page {page}; there are {pages}")
    return UpdatesPage(entries, page, pages, total, category, since_text)


@bp.route("/updates")
def updates_html() -> str:
    page = _load_page()
    feed_name = None
    if page.category:
        feed_name = page.entries[0].category.name if page.entries else \
            get_services().publisher.category_name(page.category)
    return render_template("updates/updates.html", p=page, feed_slug=page.category or "all",
                           feed_name=feed_name or page.category)


@bp.route("/updates.json")
def updates_json() -> Response:
    services = get_services()
    page = _load_page()
    urls = services.urls

    def link(n: int) -> str | None:
        if n < 1 or n > page.pages:
            return None
        return urls.updates(page=n, category=page.category, since=page.since, json=True)

    return jsonify({
        "title": services.config.site.title,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
        "page_size": services.config.updates.page_size,
        "category": page.category,
        "since": page.since,
        "next": link(page.page + 1),
        "prev": link(page.page - 1),
        "items": [{
            "id": urls.tag_uri(e.id),
            "title": e.title,
            "url": urls.entry(e.category.slug, e.slug),
            "excerpt": e.excerpt,
            "category": e.category.name,
            "category_slug": e.category.slug,
            "date": services.config.site.local_date(e.published),
            "published": e.published.isoformat(timespec="seconds"),
            "updated": e.updated.isoformat(timespec="seconds"),
            "tags": list(e.tags),
        } for e in page.entries],
    })


@bp.route("/")
def index() -> str:
    services = get_services()
    now = services.clock()
    categories = services.store.categories(now)
    size = services.config.updates.page_size
    latest, total = services.store.updates_page(category_slug=None, since=None, page=1,
                                                page_size=size, now=now)
    return render_template("pages/index.html", categories=categories, latest=latest,
                           total=total, feed_slug="all", formats=list(FeedFormat))
