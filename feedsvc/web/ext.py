"""The services one app uses, kept on app.extensions["feedsvc"] (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from feedsvc.config import Config
from feedsvc.model import Clock
from feedsvc.publishing import Publisher
from feedsvc.scan import Scanner
from feedsvc.store import Store
from feedsvc.urls import Urls
from feedsvc.webhook import DeliveryLog
from feedsvc.websub import WebSubNotifier


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
    scheduler_owner: str | None = None  # set by `feedsvc serve` once its scheduler runs


def get_services() -> Services:
    services: Services = current_app.extensions["feedsvc"]
    return services
