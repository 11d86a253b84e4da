"""Flood control: at most RATE_LIMIT comments per author email and per IP address.

Flask-Limiter keeps the counters in RATELIMIT_STORAGE_URI: memory for one process,
Redis when several hosts must share them. If Redis goes away, intake continues with
in-memory counters (Flask-Limiter logs the failure) rather than failing. Each app gets
its own limiter, so two apps in one process behave like two hosts.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter

LIMITED_ENDPOINTS = ("api.create_comment",)


def _author(field: str) -> str | None:
    body = request.get_json(silent=True, cache=True)
    author = body.get("author") if isinstance(body, dict) else None
    value = author.get(field) if isinstance(author, dict) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _limit() -> str:
    return current_app.config["RATE_LIMIT"]


def init_app(app: Flask) -> None:
    """Attach a limiter to ``app`` and limit comment intake per author and per IP (call after blueprints)."""
    limiter = Limiter(
        key_func=lambda: "unused", app=app, storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        headers_enabled=True, swallow_errors=True, in_memory_fallback_enabled=True,
    )
    app.extensions["moderation.limiter"] = limiter
    by_author = limiter.limit(_limit, key_func=lambda: "author:" + (_author("email") or ""), exempt_when=lambda: _author("email") is None, scope="author")
    by_ip = limiter.limit(_limit, key_func=lambda: "ip:" + (_author("ip") or ""), exempt_when=lambda: _author("ip") is None, scope="ip")
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = by_author(by_ip(app.view_functions[endpoint]))
