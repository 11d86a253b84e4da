"""The tables: comments, their append-only audit log, API keys, the review desk's users, sessions, bans and their history, the model registry, and webhooks with their outbox.

Alembic migrations (moderation/migrations) own the schema in every database; these
classes describe it for queries. JSON columns hold model output as it was at the time.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

PUBLISHED, PENDING, REJECTED = "published", "pending", "rejected"
STATUSES = (PUBLISHED, PENDING, REJECTED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("site", "external_id", name="uq_comments_site_external_id"),
        Index("ix_comments_status_created", "status", "created_at", "id"),
        Index("ix_comments_status_risk", "status", "risk", "id"),
        Index("ix_comments_author_email", "author_email"),
        Index("ix_comments_author_ip", "author_ip"),
        Index("ix_comments_text_hash", "text_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(100))  # name of the site key that sent it
    external_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the normalised text: duplicates
    author_name: Mapped[str | None] = mapped_column(String(200))
    author_email: Mapped[str | None] = mapped_column(String(320))
    author_url: Mapped[str | None] = mapped_column(String(2000))
    author_ip: Mapped[str | None] = mapped_column(String(64))
    author_user_agent: Mapped[str | None] = mapped_column(String(1000))
    article_id: Mapped[str | None] = mapped_column(String(200), index=True)
    article_url: Mapped[str | None] = mapped_column(String(2000))
    article_title: Mapped[str | None] = mapped_column(String(500))
    article_section: Mapped[str | None] = mapped_column(String(200), index=True)
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("comments.id"))
    status: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))  # what the policy decided at intake
    discarded: Mapped[bool] = mapped_column(default=False)  # certain spam: rejected and kept out of every queue
    risk: Mapped[float] = mapped_column()  # highest decision-label score: the queue's sort key
    scores: Mapped[dict] = mapped_column(JSON)
    reasons: Mapped[list] = mapped_column(JSON)
    terms: Mapped[list] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # text and author blanked by `moderation purge`: gone from queues and exports


class AuditEntry(Base):
    """One thing that happened to a comment. Rows are never updated or deleted (triggers enforce it)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_comment", "comment_id", "id"), Index("ix_audit_actor_created", "actor", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    comment_id: Mapped[int] = mapped_column(BigId, ForeignKey("comments.id"))
    actor: Mapped[str] = mapped_column(String(100))  # "model" or the moderator key's name
    action: Mapped[str] = mapped_column(String(20))  # accept/review/reject (model), approve/reject (human)
    reason: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(Text)
    previous_status: Mapped[str | None] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))
    scores: Mapped[dict] = mapped_column(JSON)
    model_version: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # "site" or "moderator"
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the key; the key is never stored
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class User(Base):
    """A person who signs in to the review desk. Passwords are argon2 hashes; never stored in clear."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # "moderator" or "admin"
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failures since the last success
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeskSession(Base):
    """A signed-in browser. The cookie carries a random token; only its sha256 is stored, so sign-out really ends it."""

    __tablename__ = "desk_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Ban(Base):
    """An author (by email or IP address) whose future comments are all held for review.

    Lifting deletes the row; `BanEvent` keeps the history, naming the ban by its id, which
    is never reused (SQLite would reuse the highest after a delete but for AUTOINCREMENT).
    """

    __tablename__ = "bans"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_bans_kind_value"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # "email" or "ip"
    value: Mapped[str] = mapped_column(String(320))
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BanEvent(Base):
    """A ban made or lifted: who, when, why. Rows are never updated or deleted (triggers enforce it).

    Append-only, so it never holds a reader's address: the value is kept masked, and the
    desk shows it in full only while a ban in force or the comment still holds it (erasure
    and retention clear those, and so the history too).
    """

    __tablename__ = "ban_events"
    __table_args__ = (Index("ix_ban_events_ban", "ban_id"), Index("ix_ban_events_comment", "comment_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ban_id: Mapped[int] = mapped_column(BigId)  # the bans row made or lifted (no foreign key: lifting deletes it)
    action: Mapped[str] = mapped_column(String(10))  # "ban" or "lift"
    kind: Mapped[str] = mapped_column(String(10))  # "email" or "ip"
    masked: Mapped[str] = mapped_column(String(320))  # j***@example.org, or the address's network (192.0.2.0/24, 2001:db8:1::/48)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)  # email addresses masked
    comment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("comments.id"))  # the comment the ban was made from (a lift: its ban's)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    """A model bundle kept in the registry (INSTANCE_DIR/models/<version>), live or not."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000))  # bundle folder, relative to the registry folder
    sha256: Mapped[str] = mapped_column(String(64))  # of the joblib file, from the manifest
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)  # e.g. the retrain verdict


class Promotion(Base):
    """Which version went live, when, by whom and why. Append-only: the newest row names the live model."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(100), ForeignKey("model_versions.version"))
    action: Mapped[str] = mapped_column(String(20))  # "promote" or "rollback"
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEndpoint(Base):
    """Where a site wants to hear about its comments' status changes. The secret signs every event."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(100), index=True)  # the site key's name: events of its comments only
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # shared HMAC secret, needed to sign (shown once at creation)
    events: Mapped[str] = mapped_column(String(200))  # comma-separated, so one portable LIKE picks the subscribers
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed deliveries
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)


class OutboxEvent(Base):
    """An event waiting for (or done with) delivery to one endpoint, written in the status change's transaction.

    It names the comment and the status it reached; the body is built from the comment when sent.
    """

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_due", "delivered_at", "next_attempt_at"),
                      Index("ix_webhook_outbox_order", "endpoint_id", "comment_id", "id"))  # an event waits for its comment's earlier ones

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_endpoints.id"), index=True)
    comment_id: Mapped[int] = mapped_column(BigId, ForeignKey("comments.id"))
    event: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # the status the event announces
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gave_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One attempt to deliver an event: the endpoint's delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_endpoints.id"))
    outbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("webhook_outbox.id"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column()
