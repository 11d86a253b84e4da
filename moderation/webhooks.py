"""Signed webhooks: tell a site when one of its comments is published, held, approved or rejected.

Events go through an outbox: `store.enqueue_events` (and, for new comments, the intake
statement itself) writes one row per subscribed endpoint in the same transaction as the
status change, so a crash or restart can never lose an event (nor announce a change that
was rolled back). `deliver_due` (run by `moderation webhooks run`)
sends what is due, at least once, retrying with exponential back-off up to a cap, and
disables an endpoint that keeps failing, saying why. Several dispatchers may run: on
PostgreSQL each claims rows with FOR UPDATE SKIP LOCKED.

Every request carries ``X-Moderation-Signature: t=<unix time>,v1=<hex>``, where v1 is
HMAC-SHA256 with the endpoint's secret over ``"<t>.<raw body>"``. `verify` is the check a
receiver runs (README has the same few lines to copy); it refuses stale timestamps, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moderation.schema import Comment, Delivery, OutboxEvent, WebhookEndpoint, utcnow

EVENTS = ("comment.published", "comment.held", "comment.approved", "comment.rejected")
REPLAY_WINDOW_SECONDS = 300
LEASE = timedelta(seconds=120)  # a claimed event is not claimed again by another dispatcher for this long


class WebhookError(ValueError):
    """A webhook request that cannot be carried out; the message says why, ``field`` what was wrong."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def event_for(new_status: str, *, by_person: bool) -> str:
    """The event a status change announces."""
    if new_status == "pending":
        return "comment.held"
    if new_status == "rejected":
        return "comment.rejected"
    return "comment.approved" if by_person else "comment.published"


def comment_payload(comment) -> dict:
    """What an event says about a comment: ids and outcome, no personal data."""
    return {
        "id": comment.id, "external_id": comment.external_id, "status": comment.status, "decision": comment.decision,
        "reasons": list(comment.reasons or []), "model_version": comment.model_version,
        "article_id": comment.article_id,
    }


# --- endpoints ------------------------------------------------------------------------------


def add_endpoint(session: Session, site: str, url: str, events: list[str] | None = None) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for a site; return it and its signing secret (shown this once)."""
    try:
        parsed = httpx.URL(url) if url else None
    except httpx.InvalidURL:  # control characters, a bad port...: found by tests/test_schemathesis.py
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise WebhookError("the URL must be an http or https address", "url")
    events = list(events or EVENTS)
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise WebhookError(f"unknown event(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(EVENTS)}", "events")
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(site=site, url=url, secret=secret, events=",".join(events), created_at=utcnow(), failures=0)
    session.add(endpoint)
    session.commit()
    return endpoint, secret


def endpoints(session: Session, site: str | None = None) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    return list(session.scalars(query.where(WebhookEndpoint.site == site) if site else query))


def remove_endpoint(session: Session, endpoint_id: int, site: str | None = None) -> bool:
    """Disable for good (its delivery log stays readable)."""
    conditions = [WebhookEndpoint.id == endpoint_id] + ([WebhookEndpoint.site == site] if site else [])
    found = session.execute(update(WebhookEndpoint).where(*conditions).values(disabled_at=utcnow(), disabled_reason="removed")).rowcount
    session.commit()
    return found == 1


def enable_endpoint(session: Session, endpoint_id: int) -> bool:
    found = session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                            .values(disabled_at=None, disabled_reason=None, failures=0)).rowcount
    session.commit()
    return found == 1


def deliveries(session: Session, endpoint_id: int, limit: int = 50) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.endpoint_id == endpoint_id).order_by(Delivery.id.desc()).limit(limit)))


# --- signing ------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: float | None = None, window: int = REPLAY_WINDOW_SECONDS) -> bool:
    """A receiver's check: the signature matches and the timestamp is within ``window`` seconds."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > window:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), parts.get("v1", ""))


# --- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """Retry rules, from configuration."""

    timeout: float = 5.0
    max_attempts: int = 10
    backoff: float = 10.0
    backoff_cap: float = 3600.0
    disable_after: int = 20

    @classmethod
    def from_config(cls, config: dict) -> "Policy":
        return cls(config["WEBHOOK_TIMEOUT_SECONDS"], config["WEBHOOK_MAX_ATTEMPTS"], config["WEBHOOK_BACKOFF_SECONDS"],
                   config["WEBHOOK_BACKOFF_CAP_SECONDS"], config["WEBHOOK_DISABLE_AFTER"])

    def delay(self, attempts: int) -> timedelta:
        """Exponential back-off with jitter (so failed events do not all retry at the same instant)."""
        seconds = min(self.backoff * 2 ** (attempts - 1), self.backoff_cap)
        return timedelta(seconds=seconds * random.uniform(0.8, 1.0))


def _claim(session: Session, now: datetime, batch: int) -> list[int]:
    """Take due events for this dispatcher, pushing their next attempt back by the lease."""
    query = (select(OutboxEvent.id).join(WebhookEndpoint, WebhookEndpoint.id == OutboxEvent.endpoint_id)
             .where(OutboxEvent.delivered_at.is_(None), OutboxEvent.gave_up_at.is_(None), OutboxEvent.next_attempt_at <= now,
                    WebhookEndpoint.disabled_at.is_(None))
             .order_by(OutboxEvent.id).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxEvent)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(next_attempt_at=now + LEASE))
    session.commit()
    return ids


def event_body(event: OutboxEvent, comment) -> bytes:
    """The JSON an endpoint receives: the event (its id lets a receiver ignore a repeat) and the comment's outcome."""
    created = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=timezone.utc)  # SQLite: naive UTC
    payload = {"id": event.id, "type": event.event, "created_at": created.isoformat(),
               "comment": {**comment_payload(comment), "status": event.status}}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _send(client: httpx.Client, endpoint: WebhookEndpoint, event: OutboxEvent, body: bytes, policy: Policy) -> tuple[int | None, str | None, float]:
    headers = {"Content-Type": "application/json", "User-Agent": "comment-moderation-webhooks",
               "X-Moderation-Event": event.event, "X-Moderation-Delivery": str(event.id),
               "X-Moderation-Signature": signature_header(endpoint.secret, body)}
    started = time.perf_counter()
    try:
        response = client.post(endpoint.url, content=body, headers=headers, timeout=policy.timeout)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500], (time.perf_counter() - started) * 1000
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return response.status_code, error, (time.perf_counter() - started) * 1000


def deliver_due(session: Session, client: httpx.Client, policy: Policy, *, batch: int = 20) -> int:
    """Send every due event once; record each attempt; return how many were attempted."""
    ids = _claim(session, utcnow(), batch)
    for event_id in ids:
        event = session.get(OutboxEvent, event_id)
        endpoint = session.get(WebhookEndpoint, event.endpoint_id)
        status, error, duration = _send(client, endpoint, event, event_body(event, session.get(Comment, event.comment_id)), policy)
        now = utcnow()
        session.add(Delivery(endpoint_id=endpoint.id, outbox_id=event.id, attempted_at=now, status_code=status, error=error, duration_ms=duration))
        event.attempts += 1
        if error is None:
            event.delivered_at = now
            endpoint.failures = 0
        else:
            endpoint.failures += 1
            if event.attempts >= policy.max_attempts:
                event.gave_up_at = now
            else:
                event.next_attempt_at = now + policy.delay(event.attempts)
            if endpoint.failures >= policy.disable_after:
                endpoint.disabled_at = now
                endpoint.disabled_reason = f"disabled after {endpoint.failures} failed deliveries in a row; last: {error}"
        session.commit()
    return len(ids)
