"""Signed webhooks: tell a site when one of its comments is published, held, approved or rejected.

Events go through an outbox: `store.enqueue_events` (and, for new comments, the intake
statement itself) writes one row per subscribed endpoint in the same transaction as the
status change, so a crash or restart can never lose an event (nor announce a change that
was rolled back). `deliver_due` (run by `moderation webhooks run`)
sends what is due, at least once, retrying with exponential back-off up to a cap, and
disables an endpoint that keeps failing, saying why. An endpoint hears about one comment
in the order things happened to it: an event waits while an earlier one for the same
endpoint and comment is neither delivered nor given up, so a retried "published" can
never arrive after the "rejected" that followed it. Several dispatchers may run: each
claims rows with a conditional UPDATE (and, on PostgreSQL, FOR UPDATE SKIP LOCKED), and
renews its lease on an event just before sending it, so two never send the same event.

Every request carries ``X-Moderation-Signature: t=<unix time>,v1=<hex>``, where v1 is
HMAC-SHA256 with the endpoint's secret over ``"<t>.<raw body>"``. `verify` is the check a
receiver runs (README has the same few lines to copy); it refuses stale timestamps, so a
captured request cannot be replayed later.

Where requests may go (README, "Webhooks"): never to link-local addresses (cloud metadata
services), nor unspecified, multicast or reserved ones, whoever registered the endpoint;
this is checked on the address actually connected to, after every DNS lookup. An endpoint
a site registers with its own key (the API) must also be a public address when it is
registered; the operator (`moderation webhooks add`) may name a private one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpcore
import httpx
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

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


# --- where webhooks may go ----------------------------------------------------------------------

# Cloud metadata services (AWS, GCP and Azure answer on the link-local 169.254.169.254; AWS on IPv6 too; Alibaba
# on a shared-space address): never a webhook receiver, and the classic target of server-side request forgery.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 one carries (mapped ``::ffff:a.b.c.d``, 6to4, NAT64), else the address itself."""
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address


def refusal(address: str, *, public_only: bool = False) -> str | None:
    """Why no webhook may be sent to the IP ``address``, or None. ``public_only``: private and loopback refused too."""
    ip = _embedded(ipaddress.ip_address(address.split("%", 1)[0]))  # an IPv6 scope ("fe80::1%eth0") says nothing
    if ip in METADATA or ip.is_link_local:
        return "a link-local address, where cloud metadata services answer"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "not an address a receiver can have"
    if public_only and not ip.is_global:
        return "not a public address (loopback, private network or reserved for documentation)"
    return None


def _addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal, in any notation, is its own); raise OSError or UnicodeError."""
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def _checked_url(url: str, *, public_only: bool) -> None:
    """Raise `WebhookError` unless ``url`` is an http(s) URL that requests may be sent to."""
    try:
        parsed = httpx.URL(url) if url else None
    except httpx.InvalidURL:  # control characters, a bad port...: found by tests/test_schemathesis.py
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise WebhookError("the URL must be an http or https address", "url")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise WebhookError(f"the URL's port {parsed.port} is not between 1 and 65535", "url")
    if parsed.host.rstrip(".").lower() == "localhost" or parsed.host.lower().endswith(".localhost"):
        found = ["127.0.0.1"]  # RFC 6761: always loopback, whatever a resolver says
    else:
        try:
            found = _addresses(parsed.host, parsed.port or 443)
        except UnicodeError:  # a name IDNA cannot encode ("a..b"): no request could ever be sent
            raise WebhookError(f"the URL's host {parsed.host!r} is not a valid host name", "url") from None
        except OSError:  # does not resolve (yet): accepted; every delivery checks the addresses it connects to
            found = []
    for address in found:
        if (why := refusal(address, public_only=public_only)) is not None:
            raise WebhookError(f"the URL's host {parsed.host} is {address}: {why}; webhooks are never sent there", "url")


class _Deadline(threading.local):
    """When the attempt in progress on this thread must be over (`time.monotonic`), or None."""

    at: float | None = None


_deadline = _Deadline()


def _within_deadline(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the attempt's deadline; raise ``error`` once it has passed."""
    if _deadline.at is None:
        return timeout
    left = _deadline.at - time.monotonic()
    if left <= 0:
        raise error("the endpoint did not answer within WEBHOOK_TIMEOUT_SECONDS in all")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends at the attempt's deadline, so a receiver that trickles
    its answer a byte at a time cannot hold the dispatcher (httpx's timeouts are per read, not in all)."""

    def __init__(self, stream: httpcore.NetworkStream):
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, _within_deadline(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    """Resolve the host once, refuse it if any address is one webhooks never go to, and connect to an address
    that was checked (so a DNS answer that changes between check and connection cannot slip past)."""

    def __init__(self, backend: httpcore.NetworkBackend):
        self.backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        try:
            found = _addresses(host, port)
        except (OSError, UnicodeError) as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
        for address in found:
            if (why := refusal(address)) is not None:
                raise httpcore.ConnectError(f"refused to connect: {host} is {address}, {why}")
        failure: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in found:
            try:
                stream = self.backend.connect_tcp(address, port, _within_deadline(timeout, httpcore.ConnectTimeout), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return _DeadlineStream(stream)
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


def client(policy: "Policy") -> httpx.Client:
    """The HTTP client deliveries go through: address checks on every connection, a deadline of
    ``policy.timeout`` per attempt in all, and redirects never followed (a 3xx is a failed attempt)."""
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)  # httpx keeps its httpcore pool here and offers no other way to set its network backend
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("this httpx version hides its connection pool; the webhook address checks cannot be installed")
    pool._network_backend = _GuardedBackend(pool._network_backend)
    return httpx.Client(transport=transport, follow_redirects=False, timeout=policy.timeout)


# --- endpoints ------------------------------------------------------------------------------


def add_endpoint(session: Session, site: str, url: str, events: list[str] | None = None, *,
                 public_only: bool = False) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint for a site; return it and its signing secret (shown this once).

    ``public_only``: the URL must be a public address (a site registering its own endpoint
    through the API); otherwise only the addresses no webhook ever goes to are refused.
    """
    _checked_url(url, public_only=public_only)
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
    """A receiver's check: the signature matches (compared in constant time) and the timestamp is within ``window`` seconds.

    Any malformed header is refused, never an exception: it comes from whoever sent the request.
    """
    try:
        parts = dict(item.strip().split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > window:
        return False
    # As bytes: hmac.compare_digest raises TypeError on a str with non-ASCII characters.
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), parts.get("v1", "").encode("utf-8", "replace"))


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

    def lease(self) -> timedelta:
        """How long an event is this dispatcher's: LEASE, and never less than twice an attempt's deadline."""
        return max(LEASE, timedelta(seconds=2 * self.timeout))


def _claim(session: Session, now: datetime, batch: int, lease: timedelta = LEASE) -> list[tuple[int, datetime]]:
    """Take due events for this dispatcher: (id, the lease it holds until), oldest first.

    An event is not due while an earlier event for the same endpoint and comment is neither
    delivered nor given up. The UPDATE takes only rows still due when it runs, so of two
    dispatchers that selected the same rows, the second gets none of them.
    """
    earlier = aliased(OutboxEvent)
    waits = exists().where(earlier.endpoint_id == OutboxEvent.endpoint_id, earlier.comment_id == OutboxEvent.comment_id,
                           earlier.id < OutboxEvent.id, earlier.delivered_at.is_(None), earlier.gave_up_at.is_(None))
    due = [OutboxEvent.delivered_at.is_(None), OutboxEvent.gave_up_at.is_(None), OutboxEvent.next_attempt_at <= now]
    query = (select(OutboxEvent.id).join(WebhookEndpoint, WebhookEndpoint.id == OutboxEvent.endpoint_id)
             .where(*due, WebhookEndpoint.disabled_at.is_(None), ~waits)
             .order_by(OutboxEvent.id).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxEvent)
    ids = list(session.scalars(query))
    until = now + lease
    taken = set()
    if ids:
        taken = set(session.scalars(update(OutboxEvent).where(OutboxEvent.id.in_(ids), *due)
                                    .values(next_attempt_at=until).returning(OutboxEvent.id)))
    session.commit()
    return [(event_id, until) for event_id in ids if event_id in taken]


def _renew(session: Session, event_id: int, held_until: datetime, until: datetime) -> bool:
    """Extend this dispatcher's lease on an event just before sending it; False if the lease ran out and another took it."""
    renewed = session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id, OutboxEvent.next_attempt_at == held_until,
                                                         OutboxEvent.delivered_at.is_(None), OutboxEvent.gave_up_at.is_(None))
                              .values(next_attempt_at=until)).rowcount
    session.commit()
    return renewed == 1


def event_body(event: OutboxEvent, comment) -> bytes:
    """The JSON an endpoint receives: the event (its id lets a receiver ignore a repeat) and the comment's outcome."""
    created = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=timezone.utc)  # SQLite: naive UTC
    payload = {"id": event.id, "type": event.event, "created_at": created.isoformat(),
               "comment": {**comment_payload(comment), "status": event.status}}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _send(client: httpx.Client, endpoint: WebhookEndpoint, event: OutboxEvent, body: bytes, policy: Policy) -> tuple[int | None, str | None, float]:
    """POST one event; (status code or None, error or None, milliseconds). The answer's body is never read."""
    headers = {"Content-Type": "application/json", "User-Agent": "comment-moderation-webhooks",
               "X-Moderation-Event": event.event, "X-Moderation-Delivery": str(event.id),
               "X-Moderation-Signature": signature_header(endpoint.secret, body)}
    started = time.perf_counter()
    _deadline.at = time.monotonic() + policy.timeout
    try:
        with client.stream("POST", endpoint.url, content=body, headers=headers, timeout=policy.timeout) as response:
            status = response.status_code
    except Exception as error:  # whatever one endpoint does (or its URL makes the network library do), the others are still served
        return None, f"{type(error).__name__}: {error}"[:500], (time.perf_counter() - started) * 1000
    finally:
        _deadline.at = None
    error = None if 200 <= status < 300 else f"HTTP {status}"
    return status, error, (time.perf_counter() - started) * 1000


def _attempt(session: Session, client: httpx.Client, policy: Policy, event_id: int, held_until: datetime) -> bool:
    """Send one claimed event and record the attempt; False if it was no longer this dispatcher's to send."""
    if not _renew(session, event_id, held_until, utcnow() + policy.lease()):
        return False
    event = session.get(OutboxEvent, event_id)
    endpoint = session.get(WebhookEndpoint, event.endpoint_id)
    if endpoint.disabled_at is not None:  # removed or disabled since the claim: it waits, as the endpoint's other events do
        event.next_attempt_at = utcnow()
        session.commit()
        return False
    status, error, duration = _send(client, endpoint, event, event_body(event, session.get(Comment, event.comment_id)), policy)
    now = utcnow()
    session.add(Delivery(endpoint_id=endpoint.id, outbox_id=event.id, attempted_at=now, status_code=status, error=error, duration_ms=duration))
    event.attempts += 1
    if error is None:
        event.delivered_at = now
        session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id).values(failures=0))
    else:
        if event.attempts >= policy.max_attempts:
            event.gave_up_at = now
        else:
            event.next_attempt_at = now + policy.delay(event.attempts)
        failures = session.scalar(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id)  # counted in SQL: dispatchers share it
                                  .values(failures=WebhookEndpoint.failures + 1).returning(WebhookEndpoint.failures))
        if failures >= policy.disable_after:
            session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.disabled_at.is_(None)).values(
                disabled_at=now, disabled_reason=f"disabled after {failures} failed deliveries in a row; last: {error}"))
    session.commit()
    return True


def deliver_due(session: Session, client: httpx.Client, policy: Policy, *, batch: int = 20) -> int:
    """Send every due event, oldest first, until none is due (an event delivered may let the next
    one for its comment go); record each attempt; return how many were attempted.

    ``client``: `client(policy)` in service; it checks addresses and holds each attempt to its deadline.
    """
    attempted = 0
    while claimed := _claim(session, utcnow(), batch, policy.lease()):
        attempted += sum(_attempt(session, client, policy, event_id, until) for event_id, until in claimed)
    return attempted
