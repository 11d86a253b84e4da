"""One JSON error shape for every API failure: ``{"error": {"code", "message", "fields"?}}``."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

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

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        response = jsonify(error_body(500, "internal error; the request was logged"))
        response.status_code = 500
        return response
