"""Flood control: at most RATE_LIMIT comments per author email and per IP address.

Flask-Limiter keeps the counters in RATELIMIT_STORAGE_URI: memory for one process,
Redis when several hosts must share them. If Redis goes away, intake continues with
in-memory counters (Flask-Limiter logs the failure) rather than failing. Each app gets
its own limiter, so two apps in one process behave like two hosts.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, current_app, request
from flask_limiter import Limiter

LIMITED_ENDPOINTS = ("api.create_comment",)


def _body() -> dict:
    body = request.get_json(silent=True, cache=True)
    return body if isinstance(body, dict) else {}


def _author(field: str) -> str | None:
    author = _body().get("author")
    value = author.get(field) if isinstance(author, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None
    if field == "ip":
        try:
            return str(ipaddress.ip_address(value.strip()))  # 2001:DB8::1 and 2001:db8:0::1 are one address
        except ValueError:
            return None  # validation will refuse it
    return value.strip().lower()


def _is_retry() -> bool:
    """A retry of a comment we already stored must get its original answer, never 429."""
    from moderation.api import stored_retry

    return stored_retry() is not None


def _limit() -> str:
    return current_app.config["RATE_LIMIT"]


def init_app(app: Flask) -> None:
    """Attach a limiter to ``app`` and limit comment intake per author and per IP (call after blueprints)."""

    # Registered before the limiter's own hook, so it runs after it (Flask runs them in reverse).
    @app.after_request
    def _retry_after_only_when_refused(response):
        # Flask-Limiter sends Retry-After on every limited response; a client honouring
        # it on a 201 would wait for nothing.
        if response.status_code not in (429, 503):
            response.headers.pop("Retry-After", None)
        return response

    limiter = Limiter(
        key_func=lambda: "unused", app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        strategy="sliding-window-counter",  # a fixed window would let 2N through across its edge
        headers_enabled=True, swallow_errors=True, in_memory_fallback_enabled=True,
    )
    app.extensions["moderation.limiter"] = limiter
    by_author = limiter.limit(_limit, key_func=lambda: "author:" + (_author("email") or ""),
                              exempt_when=lambda: _author("email") is None or _is_retry(), scope="author")
    by_ip = limiter.limit(_limit, key_func=lambda: "ip:" + (_author("ip") or ""),
                          exempt_when=lambda: _author("ip") is None or _is_retry(), scope="ip")
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = by_author(by_ip(app.view_functions[endpoint]))

