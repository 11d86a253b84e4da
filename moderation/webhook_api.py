"""Webhook endpoints through the API, for sites that would rather not ask an operator to run the CLI.

A site key manages only its own endpoints: register one at a public address (the answer
carries the signing secret, the only time it is shown), list them with their state, read an endpoint's
delivery log, and remove one.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from moderation import store, validation, webhooks
from moderation.auth import require
from moderation.db import get_session
from moderation.errors import ApiError
from moderation.schema import WebhookEndpoint

bp = Blueprint("webhook_api", __name__, url_prefix="/api/v1/webhooks")


def endpoint_json(endpoint: WebhookEndpoint) -> dict:
    return {
        "id": endpoint.id, "url": endpoint.url, "events": endpoint.events.split(","),
        "created_at": store.aware(endpoint.created_at).isoformat(), "failures": endpoint.failures,
        "disabled": endpoint.disabled_at is not None, "disabled_reason": endpoint.disabled_reason,
    }


def _own(endpoint_id: int) -> WebhookEndpoint:
    endpoint = get_session().get(WebhookEndpoint, endpoint_id) if endpoint_id <= store.MAX_ID else None
    if endpoint is None or endpoint.site != g.api_key.name:
        raise ApiError(404, f"no webhook {endpoint_id}")  # another site's endpoints do not exist for this key
    return endpoint


@bp.post("")
@require("site")
def add():
    body = validation.json_object(request)
    check = validation.Checker()
    url = check.string(body, "url", "url", max_length=2000, required=True)
    events = body.get("events")
    if events is not None and (not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events)):
        check.fail("events", f"must be a non-empty list of event names: {', '.join(webhooks.EVENTS)}")
        events = None
    check.raise_if_any()
    try:
        # A site key reaches only public addresses: it must not turn this server into a way into its own network.
        endpoint, secret = webhooks.add_endpoint(get_session(), g.api_key.name, url, events, public_only=True)
    except webhooks.WebhookError as error:
        raise ApiError(422, "the request has invalid fields", fields={error.field or "body": str(error)}) from None
    response = jsonify({**endpoint_json(endpoint), "secret": secret})
    response.status_code = 201
    return response


@bp.get("")
@require("site")
def list_():
    return jsonify({"webhooks": [endpoint_json(e) for e in webhooks.endpoints(get_session(), g.api_key.name)]})


@bp.delete("/<int:webhook_id>")
@require("site")
def remove(webhook_id: int):
    webhooks.remove_endpoint(get_session(), _own(webhook_id).id)
    return "", 204


@bp.get("/<int:webhook_id>/deliveries")
@require("site")
def deliveries(webhook_id: int):
    endpoint = _own(webhook_id)
    log = webhooks.deliveries(get_session(), endpoint.id, limit=100)
    return jsonify({"deliveries": [{
        "id": d.id, "event_id": d.outbox_id, "attempted_at": store.aware(d.attempted_at).isoformat(),
        "status_code": d.status_code, "error": d.error, "duration_ms": round(d.duration_ms, 1),
    } for d in log]})
