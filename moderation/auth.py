"""API keys: site keys post comments, moderator keys decide. The wrong kind gets 403."""

from __future__ import annotations

import functools

from flask import g, request

from moderation import store
from moderation.db import get_session
from moderation.errors import ApiError

ROLES = ("site", "moderator")


def presented_key() -> str | None:
    """Return the key sent as ``Authorization: Bearer`` or ``X-API-Key``, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip() or None


def current_key():
    """Return the live `ApiKey` this request presented, or None; looked up once per request."""
    if "api_key_lookup" not in g:
        raw = presented_key()
        g.api_key_lookup = store.find_key(get_session(), raw) if raw else None
    return g.api_key_lookup


def require(*roles: str):
    """Let the request through only with a live key of one of ``roles``; sets ``g.api_key``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if presented_key() is None:
                raise ApiError(401, "send an API key as 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"})
            key = current_key()
            if key is None:
                raise ApiError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
            if key.role not in roles:
                raise ApiError(403, f"a {key.role} key cannot do this; it needs a {' or '.join(roles)} key")
            g.api_key = key
            return view(*args, **kwargs)

        return wrapped

    return decorator
