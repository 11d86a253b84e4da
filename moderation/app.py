"""The application factory: configuration, model (loaded once per process), database, routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from sqlalchemy.orm import Session

from moderation import bundle, db, errors, limits, live_model, logs, metrics, registry
from moderation.assessor import Assessor
from moderation.config import load_config
from moderation.intake import rules_from_config
from moderation.policy import Rules

log = logging.getLogger(__name__)


@dataclass
class Service:
    """What every request shares: the scorer (None when no model could be loaded) and the rules."""

    assessor: Assessor | None
    rules: Rules
    model_error: str | None = None


def load_service(config: dict) -> Service:
    """Load the model bundle and build the rules; a missing or bad bundle leaves assessor None.

    Serving reads only the bundle's verified scoring arrays (`bundle.load_for_scoring`): no
    unpickling, a fraction of the time and memory of the whole scikit-learn pipeline.
    """
    try:
        model = bundle.load_for_scoring(Path(config["MODEL_DIR"]))
    except bundle.BundleError as error:
        log.error("no model: %s; every comment will be held for review", error)
        return Service(None, rules_from_config(config, config["THRESHOLDS"]), str(error))
    assessor = Assessor.from_config(model, config)
    metrics.MODEL_INFO.labels(model.version).set(1)
    return Service(assessor, rules_from_config(config, assessor.thresholds))


def trust_proxies(app: Flask, hops) -> None:
    """Behind ``hops`` reverse proxies, read the client's address, scheme and host from their X-Forwarded-* headers.

    Only the rightmost ``hops`` values are trusted (each proxy appends one), so a client
    cannot pass for another address by sending its own header. 0 trusts none.
    """
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise ValueError(f"PROXY_HOPS must be the number of reverse proxies in front of the app (0 or more), not {hops!r}")
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def create_app(config: dict | None = None) -> Flask:
    """Build the Flask app. ``config`` overrides every other configuration layer (tests use it).

    Refuses to start (`db.SchemaOutOfDate`) when the database schema is behind the code.
    """
    app = Flask(__name__)
    settings = load_config(config)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["MAX_BODY_BYTES"]
    trust_proxies(app, settings["PROXY_HOPS"])
    app.json.sort_keys = False
    logs.init_app(app)  # first: request ids and redacted JSON lines for everything after
    db.init_app(app)
    db.check_schema(app.extensions["moderation.engine"])
    with Session(app.extensions["moderation.engine"]) as session:  # the registry's live version, else MODEL_DIR
        live_dir = registry.live_bundle_dir(session, settings)
    app.extensions["moderation.service"] = load_service({**settings, "MODEL_DIR": str(live_dir)})
    live_model.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)
    from moderation import akismet, api, coral, health, openapi, webhook_api

    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(webhook_api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(akismet.bp)  # Akismet's wire protocol under /1.1
    app.register_blueprint(coral.bp)  # Coral's external moderation phase
    limits.init_app(app)
    from moderation import desk

    desk.init_app(app)  # after the limiter: the sign-in form has its own limit
    return app
