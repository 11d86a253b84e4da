"""The moderators' review desk: server-rendered pages under /moderate.

Signed-in moderators work the queues, decide comments (alone, in bulk, or a whole group
of near-duplicates), read the audit trail and the dashboard. Every form carries a CSRF
token (Flask-WTF), every response security headers and a strict Content-Security-Policy
(flask-talisman), and comments are always rendered as escaped text.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask, render_template, request
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFError, CSRFProtect

bp = Blueprint("desk", __name__, url_prefix="/moderate", template_folder="templates", static_folder="static")

# No inline script or style anywhere: a comment that smuggles markup past escaping still runs nothing.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def secret_key(config: dict) -> str:
    """The configured SECRET_KEY, else one generated once into INSTANCE_DIR/secret_key (mode 0600).

    Written to a temporary file and linked into place, so workers starting together agree on one key.
    """
    if config.get("SECRET_KEY"):
        return config["SECRET_KEY"]
    path = Path(config["INSTANCE_DIR"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another worker won; use its key
        finally:
            temporary.unlink()
    return path.read_text().strip()


def init_app(app: Flask) -> None:
    """Register the desk with sessions, CSRF protection, security headers and a sign-in rate limit."""
    from moderation import akismet, api, coral, webhook_api
    from moderation.desk import admin, dashboard, pages, queue, signin  # noqa: F401  (routes)

    app.config.update(
        SECRET_KEY=secret_key(app.config),
        SESSION_COOKIE_NAME="moderation_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SESSION_HOURS"]),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the sign-in
    )
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)  # the API authenticates with bearer keys, never cookies
    csrf.exempt(akismet.bp)  # Akismet clients send their key in the form, never cookies
    csrf.exempt(coral.bp)  # Coral signs each request's body
    csrf.exempt(webhook_api.bp)  # bearer keys too
    Talisman(
        app, force_https=app.config["FORCE_HTTPS"], strict_transport_security=app.config["FORCE_HTTPS"],
        session_cookie_secure=app.config["SECURE_COOKIES"], session_cookie_http_only=True,
        content_security_policy=CONTENT_SECURITY_POLICY, frame_options="DENY", referrer_policy="same-origin",
    )
    from moderation.desk import render

    app.jinja_env.filters.update(age=render.age, web_link=render.web_link, percent=render.percent, duration=render.duration,
                                  strength=render.strength, meter_bounds=render.meter_bounds)
    app.register_blueprint(bp)
    limiter = app.extensions["moderation.limiter"]
    app.view_functions["desk.login"] = limiter.limit(
        lambda: app.config["LOGIN_RATE_LIMIT"], methods=["POST"], scope="desk-login", key_func=lambda: "login:" + (request.remote_addr or ""),
    )(app.view_functions["desk.login"])

    @app.errorhandler(CSRFError)
    def _csrf_failed(error: CSRFError):
        return render_template("desk/error.html", title="Form expired", message=(
            "This form was not accepted: its security token is missing or out of date. "
            "Go back, reload the page and try again."
        )), 400
