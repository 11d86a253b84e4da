"""API keys: site keys post comments, moderator keys decide, admin keys erase readers' data. The wrong kind gets 403.

Each worker remembers a live key for API_KEY_CACHE_SECONDS after looking it up, which
saves a database round trip on almost every request; so a revoked key keeps working
for at most that long. Unknown and revoked keys are never remembered.
"""

from __future__ import annotations

import functools
import time

from flask import current_app, g, request

from moderation import store
from moderation.db import get_session
from moderation.errors import ApiError

ROLES = ("site", "moderator", "admin")


def presented_key() -> str | None:
    """Return the key sent as ``Authorization: Bearer`` or ``X-API-Key``, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer ") and header[7:].strip():
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip() or None


class KeyCache:
    """Live keys by hash, each trusted until its expiry (monotonic clock); bounded by the live keys."""

    MAX_ENTRIES = 10_000  # far more keys than any installation has; stops growth all the same

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, digest: str):
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry[1]

    def put(self, digest: str, key) -> None:
        if self.seconds <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.seconds, key)


def _lookup(raw: str):
    extensions = current_app.extensions
    if "moderation.key_cache" not in extensions:
        extensions["moderation.key_cache"] = KeyCache(current_app.config["API_KEY_CACHE_SECONDS"])
    cache: KeyCache = extensions["moderation.key_cache"]
    digest = store.hash_key(raw)
    key = cache.get(digest)
    if key is None:
        key = store.find_key(get_session(), raw)
        if key is not None:
            cache.put(digest, key)
    return key


def current_key():
    """Return the live `ApiKey` this request presented, or None; looked up once per request."""
    if "api_key_lookup" not in g:
        raw = presented_key()
        g.api_key_lookup = _lookup(raw) if raw else None
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
