"""Author bans: a moderator's "reject and ban" holds every later comment from that email or IP address.

Intake asks whether an author is banned within its one statement of facts about the comment (`store.intake_facts`).
Every ban and lift also writes an append-only `BanEvent` in the same transaction, so the
newsroom can tell later who banned or lifted what, when and why.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from moderation.logs import mask_emails
from moderation.schema import Ban, BanEvent, Comment, utcnow

KINDS = ("email", "ip")
BAN, LIFT = "ban", "lift"
NETWORK_BITS = {4: 24, 6: 48}  # how much of an IP address the history keeps
MAX_REASON = 500  # a lift's reason, typed on the desk


def canonical(kind: str, value: str) -> str:
    """Compare as stored at intake: emails lower-cased, IP addresses in their compressed form."""
    value = value.strip()
    if kind == "ip":
        return str(ipaddress.ip_address(value))
    return value.lower()


def masked(kind: str, value: str) -> str:
    """The value as the history keeps it: an email cut to its first letter and domain, an IP address to its network."""
    if kind == "ip":
        address = ipaddress.ip_address(value)
        return str(ipaddress.ip_network((int(address), NETWORK_BITS[address.version]), strict=False))
    local, at, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}" if at else f"{value[:1]}***"


def ban(session: Session, *, email: str | None, ip: str | None, by: str, reason: str | None = None,
        comment_id: int | None = None) -> list[tuple[str, str]]:
    """Ban the given email and/or IP address (banning twice is harmless); return what is now banned.

    Each new ban is recorded in the history; one already in force is left as it was, unrecorded.
    Email addresses in the reason are masked, as in audit notes: the history can never drop them.
    """
    banned = [(kind, canonical(kind, value)) for kind, value in (("email", email), ("ip", ip)) if value]
    reason = reason and mask_emails(reason)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    for kind, value in banned:
        ban_id = session.scalar(insert(Ban).values(kind=kind, value=value, created_by=by, reason=reason, created_at=now)
                                .on_conflict_do_nothing().returning(Ban.id))
        if ban_id is not None:
            _record(session, BAN, ban_id, kind, value, by, reason, comment_id, now)
    session.commit()
    return banned


def lift(session: Session, kind: str, value: str, *, by: str, reason: str | None = None) -> bool:
    """Lift the ban on this email or IP address and record who did and why; False if there was none."""
    value = canonical(kind, value)
    ban_id = session.scalar(delete(Ban).where(Ban.kind == kind, Ban.value == value).returning(Ban.id))
    if ban_id is None:  # never banned, or lifted a moment ago by someone else
        session.rollback()
        return False
    made_from = session.scalar(select(BanEvent.comment_id).where(BanEvent.ban_id == ban_id, BanEvent.action == BAN)
                               .order_by(BanEvent.id.desc()).limit(1))
    _record(session, LIFT, ban_id, kind, value, by, reason and mask_emails(reason), made_from, utcnow())
    session.commit()
    return True


def remove(session: Session, condition, *, by: str, reason: str) -> int:
    """Lift every ban matching ``condition`` for retention or erasure, recording each lift (no commit); return how many."""
    removed = session.execute(delete(Ban).where(condition).returning(Ban.id, Ban.kind, Ban.value)).all()
    now = utcnow()
    for ban_id, kind, value in removed:
        _record(session, LIFT, ban_id, kind, value, by, reason, None, now)
    return len(removed)


def _record(session: Session, action: str, ban_id: int, kind: str, value: str, by: str, reason: str | None, comment_id: int | None, when: datetime) -> None:
    """Append one history row; ``reason`` comes already masked (`mask_emails`) by the caller."""
    session.add(BanEvent(ban_id=ban_id, action=action, kind=kind, masked=masked(kind, value), actor=by,
                         reason=reason, comment_id=comment_id, created_at=when))


def bans_for(session: Session, email: str | None, ip: str | None) -> list[Ban]:
    conditions = [_matching(kind, value) for kind, value in (("email", email), ("ip", ip)) if value]
    return list(session.scalars(select(Ban).where(or_(*conditions)))) if conditions else []


def _matching(kind: str, value: str):
    return (Ban.kind == kind) & (Ban.value == canonical(kind, value))


def in_force(session: Session, *, before_id: int | None = None, limit: int) -> list[Ban]:
    """One page of the bans in force, newest first (keyset: ids below ``before_id``)."""
    query = select(Ban).order_by(Ban.id.desc()).limit(limit)
    return list(session.scalars(query.where(Ban.id < before_id) if before_id else query))


def count_in_force(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Ban))


@dataclass
class Event:
    """A history row as the desk shows it."""

    row: BanEvent
    value: str | None  # in full while a ban in force or the comment still holds it; else only `row.masked` is known
    in_force: bool  # a ban that still holds


def history(session: Session, *, before_id: int | None = None, limit: int) -> list[Event]:
    """One page of the history, newest first (keyset: ids below ``before_id``)."""
    return _events(session, BanEvent.id < before_id if before_id else None, limit)


def events_for(session: Session, email: str | None, ip: str | None, limit: int) -> list[Event]:
    """The history of the bans made from this author's comments or on their address, newest first."""
    value = canonical("email", email) if email else canonical("ip", ip) if ip else None
    if value is None:
        return []
    authored = Comment.author_email == value if email else Comment.author_ip == value
    theirs = select(BanEvent.ban_id).join(Comment, Comment.id == BanEvent.comment_id).where(authored)
    current = select(Ban.id).where(_matching("email" if email else "ip", value))
    return _events(session, or_(BanEvent.ban_id.in_(theirs), BanEvent.ban_id.in_(current)), limit)


def _events(session: Session, condition, limit: int) -> list[Event]:
    held = case((BanEvent.kind == "email", Comment.author_email), else_=Comment.author_ip)
    query = (select(BanEvent, Ban.value, held).outerjoin(Ban, Ban.id == BanEvent.ban_id)
             .outerjoin(Comment, Comment.id == BanEvent.comment_id).order_by(BanEvent.id.desc()).limit(limit))
    rows = session.execute(query if condition is None else query.where(condition))
    return [Event(event, _full(event, current or author), event.action == BAN and current is not None) for event, current, author in rows]


def _full(event: BanEvent, candidate: str | None) -> str | None:
    """``candidate`` in canonical form if it is a value the event could have masked, else None."""
    if not candidate:
        return None
    try:
        value = canonical(event.kind, candidate)
    except ValueError:
        return None
    return value if masked(event.kind, value) == event.masked else None
