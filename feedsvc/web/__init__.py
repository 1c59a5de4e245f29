"""The Flask app factory. Building an app starts nothing: no scheduler, thread or scan."""

from __future__ import annotations

from flask import Flask
from flask import Response

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.content.slugs import slugify
from feedsvc.model import Clock
from feedsvc.model import FeedFormat
from feedsvc.web.feedcache import Publisher
from feedsvc.scan.scanner import Scanner
from feedsvc.scan.scanner import utc_now
from feedsvc.store import Store
from feedsvc.store import open_store
from feedsvc.web import entries
from feedsvc.web import fast
from feedsvc.web import feeds
from feedsvc.web import health
from feedsvc.web import hooks
from feedsvc.web import media
from feedsvc.web import monitoring
from feedsvc.web import tags
from feedsvc.web import updates
from feedsvc.web.errors import register_error_handlers
from feedsvc.web.ext import Services
from feedsvc.web.webhook import DeliveryLog
from feedsvc.web.websub import WebSubNotifier

CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self' https: http: data:; "
                           "style-src 'self' 'unsafe-inline'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")


def create_app(config: Config | None = None, *, store: Store | None = None,
               clock: Clock | None = None, scanner: Scanner | None = None) -> Flask:
    config = config if config is not None else load_config()
    clock = clock or utc_now
    store = store or open_store(config.store_url, keep_per_category=config.store.keep_per_category,
                                tombstone_days=config.feeds.tombstone_days)
    publisher = Publisher(config, store, clock)
    urls = publisher.urls  # with the store's id authority
    websub = WebSubNotifier(config.websub.hubs, urls)
    if scanner is None:
        scanner = Scanner(config, store, clock=clock, on_feeds_changed=websub.notify)
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # "/media/x//etc/passwd" is refused, not redirected
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    scanner.store_listeners.append(publisher.invalidate)
    app.extensions["feedsvc"] = Services(
        config=config, store=store, scanner=scanner, publisher=publisher,
        websub=websub, deliveries=DeliveryLog(), urls=urls, clock=clock)
    for module in (feeds, updates, entries, media, hooks, health, tags, monitoring):
        app.register_blueprint(module.bp)
    monitoring.count_requests(app)
    register_error_handlers(app)
    fast.install(app, app.extensions["feedsvc"])  # /feeds/... answered from prepared responses

    def tag_url(name: str) -> str | None:
        """The tag page of a tag as written in front matter (None if it has no slug)."""
        slug = slugify(name, fallback="")
        return urls.tag(slug) if slug else None

    @app.context_processor
    def site_globals() -> dict[str, object]:
        return {"site": config.site, "urls": urls, "formats": list(FeedFormat),
                "date": config.site.local_date, "tag_url": tag_url}

    @app.after_request
    def security_headers(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
            response.headers["X-Content-Type-Options"] = "nosniff"
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return app

