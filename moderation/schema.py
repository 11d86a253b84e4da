"""The tables: comments, their append-only audit log, API keys, the review desk's users, sessions and bans, and the model registry.

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
    """An author (by email or IP address) whose future comments are all held for review."""

    __tablename__ = "bans"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_bans_kind_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # "email" or "ip"
    value: Mapped[str] = mapped_column(String(320))
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
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
