"""Flood control: at most RATE_LIMIT comments per author email and per IP address.

Flask-Limiter keeps the counters in RATELIMIT_STORAGE_URI: memory for one process,
Redis when several hosts must share them. If Redis goes away, intake continues with
in-memory counters (and a logged warning) rather than failing.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from flask_limiter import Limiter


def _author(field: str) -> str | None:
    body = request.get_json(silent=True, cache=True)
    author = body.get("author") if isinstance(body, dict) else None
    value = author.get(field) if isinstance(author, dict) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _limit() -> str:
    return current_app.config["RATE_LIMIT"]


limiter = Limiter(key_func=lambda: "unused", headers_enabled=True, swallow_errors=True, in_memory_fallback_enabled=True)


def limit_comments(view):
    """Apply the per-author and per-IP limits to a view (authors or IPs not given are not limited)."""
    by_author = limiter.limit(_limit, key_func=lambda: "author:" + (_author("email") or ""), exempt_when=lambda: _author("email") is None, scope="author")
    by_ip = limiter.limit(_limit, key_func=lambda: "ip:" + (_author("ip") or ""), exempt_when=lambda: _author("ip") is None, scope="ip")
    return by_author(by_ip(view))


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
