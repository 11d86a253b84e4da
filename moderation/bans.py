"""Author bans: a moderator's "reject and ban" holds every later comment from that email or IP address.

Intake asks whether an author is banned within its one statement of facts about the comment (`store.intake_facts`).
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from moderation.schema import Ban

KINDS = ("email", "ip")


def canonical(kind: str, value: str) -> str:
    """Compare as stored at intake: emails lower-cased, IP addresses in their compressed form."""
    value = value.strip()
    if kind == "ip":
        return str(ipaddress.ip_address(value))
    return value.lower()


def ban(session: Session, *, email: str | None, ip: str | None, by: str, reason: str | None = None) -> list[tuple[str, str]]:
    """Ban the given email and/or IP address (banning twice is harmless); return what is now banned."""
    banned = [(kind, canonical(kind, value)) for kind, value in (("email", email), ("ip", ip)) if value]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for kind, value in banned:
        session.execute(insert(Ban).values(kind=kind, value=value, created_by=by, reason=reason).on_conflict_do_nothing())
    session.commit()
    return banned


def lift(session: Session, kind: str, value: str) -> bool:
    result = session.execute(delete(Ban).where(Ban.kind == kind, Ban.value == canonical(kind, value)))
    session.commit()
    return result.rowcount == 1


def bans_for(session: Session, email: str | None, ip: str | None) -> list[Ban]:
    conditions = [_matching(kind, value) for kind, value in (("email", email), ("ip", ip)) if value]
    return list(session.scalars(select(Ban).where(or_(*conditions)))) if conditions else []


def _matching(kind: str, value: str):
    return (Ban.kind == kind) & (Ban.value == canonical(kind, value))


def list_bans(session: Session) -> list[Ban]:
    return list(session.scalars(select(Ban).order_by(Ban.created_at.desc())))
