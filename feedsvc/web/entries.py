"""One page per entry: /entries/<category-slug>/<entry-slug>."""

from __future__ import annotations

from flask import Blueprint
from flask import render_template

from feedsvc.errors import EntryNotFoundError
from feedsvc.web.ext import get_services
from feedsvc.web.params import is_plausible_slug

bp = Blueprint("entries", __name__)


@bp.route("/entries/<category>/<slug>")
def entry(category: str, slug: str) -> str:
    if not (is_plausible_slug(category) and is_plausible_slug(slug)):
        raise EntryNotFoundError(category[:80], slug[:80])
    services = get_services()
    found = services.store.entry(category, slug, services.clock())
    if found is None:
        raise EntryNotFoundError(category, slug)
    return render_template("entries/entry.html", entry=found, feed_slug=category,
                           feed_name=found.category.name)
