"""Flood control: at most RATE_LIMIT comments per author email and per IP address.

Flask-Limiter keeps the counters in RATELIMIT_STORAGE_URI: memory for one process,
Redis when several hosts must share them (RATELIMIT_KEY_PREFIX keeps installations
sharing one Redis apart). If Redis goes away, intake continues with each worker's
in-memory counters (logged on stderr: "Rate limit storage unreachable", and "recovered"
when it is back) rather than failing; a Redis that stops answering costs at most
REDIS_TIMEOUT_SECONDS per request, not a hang. Each app gets its own limiter, so two apps
in one process behave like two hosts.
"""

from __future__ import annotations

import ipaddress
import logging
import sys

from flask import Flask, current_app, request
from flask_limiter import Limiter

LIMITED_ENDPOINTS = ("api.create_comment",)
REDIS_TIMEOUT_SECONDS = 1.0


def _log_limiter_warnings() -> None:
    """Flask-Limiter logs to "flask-limiter" behind a NullHandler, which also keeps Python's
    last-resort handler silent: its lines reach stderr through the root logger's handler
    when one is installed, else through one of our own."""
    logger = logging.getLogger("flask-limiter")
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not any(getattr(handler, "_moderation", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.INFO)  # "storage unreachable" (warning) and "storage recovered" (info)
        handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] %(levelname)s flask-limiter: %(message)s"))
        handler._moderation = True
        logger.addHandler(handler)


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

    uri = app.config["RATELIMIT_STORAGE_URI"]
    options = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS} if uri.startswith(("redis://", "rediss://")) else {}
    _log_limiter_warnings()
    limiter = Limiter(
        key_func=lambda: "unused", app=app, storage_uri=uri, storage_options=options,
        strategy="sliding-window-counter",  # a fixed window would let 2N through across its edge
        headers_enabled=True, swallow_errors=True, in_memory_fallback_enabled=True,
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX") or "",
    )
    app.extensions["moderation.limiter"] = limiter
    by_author = limiter.limit(_limit, key_func=lambda: "author:" + (_author("email") or ""),
                              exempt_when=lambda: _author("email") is None or _is_retry(), scope="author")
    by_ip = limiter.limit(_limit, key_func=lambda: "ip:" + (_author("ip") or ""),
                          exempt_when=lambda: _author("ip") is None or _is_retry(), scope="ip")
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = by_author(by_ip(app.view_functions[endpoint]))

