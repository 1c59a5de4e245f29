"""The services one app uses, kept on app.extensions["feedsvc"] (no module globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from feedsvc.config import Config
from feedsvc.model import Clock
from feedsvc.model import ScanRequest
from feedsvc.web.feedcache import Publisher
from feedsvc.scan.scanner import Scanner
from feedsvc.store import Store
from feedsvc.urls import Urls
from feedsvc.web.webhook import DeliveryLog
from feedsvc.web.websub import WebSubNotifier


@dataclass
class Services:
    config: Config
    store: Store
    scanner: Scanner
    publisher: Publisher
    websub: WebSubNotifier
    deliveries: DeliveryLog
    urls: Urls
    clock: Clock
    scheduler_owner: str | None = None  # set by `feedsvc serve`: its scanner's lease owner id
    role: str = "all"  # `feedsvc serve --role`; a `web` process reports only on the store
    # set by `feedsvc serve`: hands requests to the serve's scanner process or the store;
    # None (tests, export): this process's own scanner does the scan
    relay: Callable[[ScanRequest], str] | None = None

    def dispatch(self, source: str | None, paths: tuple[str, ...] | None = None,
                 reason: str = "webhook") -> str:
        """Ask for a scan of `source` (None: all), only `paths` in it when given."""
        request = ScanRequest(source=source, paths=paths, reason=reason)
        if self.relay is not None:
            return self.relay(request)
        return self.scanner.request(request)


def get_services() -> Services:
    services: Services = current_app.extensions["feedsvc"]
    return services
