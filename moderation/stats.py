"""The numbers on the moderators' dashboard, read from the comments and the audit log.

Queries are grouped by day in the database; only human decisions (far fewer than
comments) are read row by row, to judge how often people overturn the model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation.schema import PENDING, AuditEntry, Comment, utcnow
from moderation.store import aware

MODEL = "model"
AUTO_ACTIONS = ("accept", "reject")  # the model decided alone
HELD = "review"  # the model handed the comment to a person


@dataclass
class DayCounts:
    day: date
    auto_accepted: int = 0
    auto_rejected: int = 0
    held: int = 0
    approved: int = 0
    rejected: int = 0

    @property
    def human(self) -> int:
        return self.approved + self.rejected


@dataclass
class LabelOverturns:
    """Human decisions on comments the model flagged for ``label``, and how many people approved."""

    label: str
    decided: int = 0
    overturned: int = 0

    @property
    def rate(self) -> float | None:
        return self.overturned / self.decided if self.decided else None


@dataclass
class Dashboard:
    pending: int
    oldest_pending: datetime | None
    days: list[DayCounts]
    overturns: list[LabelOverturns]
    published_then_rejected: int  # the model published it, a person took it down
    rejected_then_approved: int  # the model rejected it, a person published it
    by_moderator: dict[str, int] = field(default_factory=dict)

    @property
    def auto_share(self) -> float | None:
        auto = sum(d.auto_accepted + d.auto_rejected for d in self.days)
        total = auto + sum(d.held for d in self.days)
        return auto / total if total else None

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return utcnow() - self.oldest_pending if self.oldest_pending else None


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def decisions_per_day(session: Session, since: datetime, days: int) -> list[DayCounts]:
    """Automatic and human decisions per UTC day, oldest first, one entry per day (zeros included)."""
    moment = AuditEntry.created_at
    if session.get_bind().dialect.name == "postgresql":
        moment = func.timezone("UTC", moment)  # days in UTC, whatever the server's time zone
    day, by_model = func.date(moment), AuditEntry.actor == MODEL  # one object each: PostgreSQL must see the same bind in GROUP BY
    rows = session.execute(
        select(day, by_model, AuditEntry.action, func.count())
        .where(AuditEntry.created_at >= since).group_by(day, by_model, AuditEntry.action)
    ).all()
    first = since.date()
    counts = {first + timedelta(days=n): DayCounts(first + timedelta(days=n)) for n in range(days + 1)}
    for raw_day, by_model, action, count in rows:
        entry = counts.setdefault(_as_date(raw_day), DayCounts(_as_date(raw_day)))
        if by_model:
            if action == "accept":
                entry.auto_accepted += count
            elif action == "reject":
                entry.auto_rejected += count
            elif action == HELD:
                entry.held += count
        elif action == "approve":
            entry.approved += count
        elif action == "reject":
            entry.rejected += count
    return [counts[d] for d in sorted(counts)]


def overturns(session: Session, since: datetime, thresholds: dict[str, dict[str, float]], limit: int = 20_000):
    """Judge the latest human decisions against what the model said at the time.

    A label "flagged" a comment when its score (as stored with the decision) reached the
    label's review threshold; a person approving such a comment overturns that flag.
    """
    rows = session.execute(
        select(AuditEntry.action, AuditEntry.actor, AuditEntry.scores, Comment.decision)
        .join(Comment, Comment.id == AuditEntry.comment_id)
        .where(AuditEntry.actor != MODEL, AuditEntry.action.in_(("approve", "reject")), AuditEntry.created_at >= since)
        .order_by(AuditEntry.id.desc()).limit(limit)
    ).all()
    by_label = {label: LabelOverturns(label) for label in thresholds}
    published_then_rejected = rejected_then_approved = 0
    by_moderator: Counter[str] = Counter()
    for action, actor, scores, model_decision in rows:
        by_moderator[actor] += 1
        for label, limits in thresholds.items():
            if (scores or {}).get(label, 0.0) >= limits["review_at"]:
                by_label[label].decided += 1
                by_label[label].overturned += action == "approve"
        published_then_rejected += model_decision == "accept" and action == "reject"
        rejected_then_approved += model_decision == "reject" and action == "approve"
    return list(by_label.values()), published_then_rejected, rejected_then_approved, dict(by_moderator.most_common())


def window_start(days: int) -> datetime:
    """Midnight UTC ``days`` days ago: where the dashboard's window begins."""
    now = utcnow()
    return datetime.combine((now - timedelta(days=days)).date(), datetime.min.time(), tzinfo=now.tzinfo)


def dashboard(session: Session, thresholds: dict[str, dict[str, float]], days: int = 30) -> Dashboard:
    since = window_start(days)
    pending, oldest = session.execute(
        select(func.count(), func.min(Comment.created_at)).where(Comment.status == PENDING, Comment.discarded.is_(False))
    ).one()
    labels, published_then_rejected, rejected_then_approved, by_moderator = overturns(session, since, thresholds)
    return Dashboard(
        pending=pending, oldest_pending=aware(oldest) if oldest else None, days=decisions_per_day(session, since, days),
        overturns=labels, published_then_rejected=published_then_rejected, rejected_then_approved=rejected_then_approved,
        by_moderator=by_moderator,
    )
