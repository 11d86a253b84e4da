"""One JSON error shape for every API failure: ``{"error": {"code", "message", "fields"?}}``.

A database that cannot answer (PostgreSQL gone or restarting, no pooled connection free,
SQLite locked beyond its busy timeout, its disk full) is a 503 with Retry-After, not a
500: the request changed nothing (a comment and its audit entry are written by one
statement), so the client may send it again.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, ServiceUnavailable

log = logging.getLogger(__name__)
DATABASE_RETRY_AFTER = 5  # seconds

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid",
    429: "rate_limited", 500: "internal", 503: "unavailable",
}


class ApiError(Exception):
    """An error to answer in the shared shape. ``fields`` maps a field path to what is wrong with it."""

    def __init__(self, status: int, message: str, *, fields: dict[str, str] | None = None, extra: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields, self.extra, self.headers = status, message, fields, extra or {}, headers or {}


def error_body(status: int, message: str, fields: dict | None = None, extra: dict | None = None) -> dict:
    error = {"code": CODES.get(status, "error"), "message": message}
    if fields:
        error["fields"] = fields
    error.update(extra or {})
    return {"error": error}


def database_unavailable(error: Exception) -> str | None:
    """Say why, when ``error`` means the database cannot answer now; None for any other error."""
    if isinstance(error, sa_exc.TimeoutError):  # the pool had no connection free in time
        return "the database is overloaded (no connection free); retry after Retry-After seconds"
    # PendingRollbackError: an earlier statement of this request lost the connection and its
    # error was swallowed (Flask-Limiter's exempt_when hook asks the database, with swallow_errors).
    if isinstance(error, (sa_exc.DisconnectionError, sa_exc.PendingRollbackError)) or (
            isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated):
        return "the database connection was lost; retry after Retry-After seconds"
    if isinstance(error, sa_exc.OperationalError):
        detail = str(error.orig).lower()
        if "locked" in detail or "busy" in detail:
            return "the database is busy (locked by another writer beyond the busy timeout); retry after Retry-After seconds"
        if "disk is full" in detail or "disk full" in detail or "no space" in detail:
            return "the database's disk is full; nothing was stored; retry after Retry-After seconds"
        if "no such table" in detail or "no such column" in detail:
            return None  # a schema problem, not an outage
        return "the database is unavailable; retry after Retry-After seconds"
    return None


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz") or not request.accept_mimetypes.accept_html


def init_app(app: Flask) -> None:
    """Render `ApiError` and every HTTP error in the shared shape (HTML pages keep Flask's)."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        response = jsonify(error_body(error.status, error.message, error.fields, error.extra))
        response.status_code = error.status
        response.headers.update(error.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if not _wants_json():
            return error
        message = error.description or error.name
        if error.code == 429:
            message = f"too many comments from this author or address (limit: {message}); retry after Retry-After seconds"
        response = jsonify(error_body(error.code or 500, message))
        response.status_code = error.code or 500
        for name, value in error.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(sa_exc.SQLAlchemyError)
    def _database_error(error: sa_exc.SQLAlchemyError):
        reason = database_unavailable(error)
        if reason is None:
            return _unexpected(error)
        log.error("database unavailable (%s %s): %s", request.method, request.path, str(error).splitlines()[0])
        if not _wants_json():  # the desk's pages: an HTML 503
            return ServiceUnavailable(reason, retry_after=DATABASE_RETRY_AFTER)
        response = jsonify(error_body(503, reason))
        response.status_code = 503
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        response = jsonify(error_body(500, "internal error; the request was logged"))
        response.status_code = 500
        return response
