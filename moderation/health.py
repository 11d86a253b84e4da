"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from moderation.db import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive and answering."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready only with a loaded model and a reachable database; otherwise 503 naming what is missing."""
    service = current_app.extensions["moderation.service"]
    problems = {}
    if service.assessor is None:
        problems["model"] = service.model_error or "no model loaded"
    try:
        get_session().execute(text("SELECT 1"))
    except Exception as error:  # any database failure means not ready
        problems["database"] = type(error).__name__
    body = {"status": "ready" if not problems else "not ready", "model_version": service.assessor.model.version if service.assessor else None}
    if problems:
        body["problems"] = problems
    response = jsonify(body)
    response.status_code = 503 if problems else 200
    if problems:
        response.headers["Retry-After"] = "5"
    return response
