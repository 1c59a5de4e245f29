"""The app a process serves: the web app, plus federation's endpoints when
`[activitypub] enabled`. Web and federation do not import each other, so they meet here;
like create_app, building it starts nothing."""

from __future__ import annotations

from typing import Any

from flask import Flask

from feedsvc.config import Config
from feedsvc.config import load_config
from feedsvc.federation import views as federation_views
from feedsvc.web import create_app


def build_app(config: Config | None = None, **kwargs: Any) -> Flask:
    """web.create_app(config, **kwargs) (store, clock, scanner), with federation installed
    when config.activitypub.enabled."""
    config = config if config is not None else load_config()
    app = create_app(config, **kwargs)
    if config.activitypub.enabled:
        federation_views.install(app)
    return app
