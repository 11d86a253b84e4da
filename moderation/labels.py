"""Moderators' decisions become training labels.

approve -> neither spam nor toxic; reject as spam -> spam; reject as abuse -> toxic;
reject as off topic or other -> no label (it says nothing about spam or abuse). Only a
comment's latest human decision counts (an overturn replaces the earlier one), and the
same normalised text counts once, with its latest decision: a spam wave from a hundred
accounts is one example, not a hundred. Exports carry text and labels only: no names,
emails or addresses; spam purged by retention (`moderation purge`) is never exported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Iterator, TextIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation.schema import AuditEntry, Comment
from moderation.store import aware

LABELS = ("spam", "toxic")
CHUNK = 1000
# A person's decision: not the model's, and not an erasure's audit entry (moderation.privacy), which decides nothing.
_HUMAN_DECISION = (AuditEntry.actor != "model", AuditEntry.action != "erase")


@dataclass(frozen=True)
class Labelled:
    text: str
    labels: dict[str, int]
    decided_at: datetime


def labels_for(action: str, reason: str | None) -> dict[str, int] | None:
    """The training labels a human decision implies, or None when it implies none."""
    if action == "approve":
        return {"spam": 0, "toxic": 0}
    if action == "reject" and reason == "spam":
        return {"spam": 1}
    if action == "reject" and reason == "abuse":
        return {"toxic": 1}
    return None


def site_labels(session: Session, since: datetime | None = None) -> list[Labelled]:
    """The site's labelled comments, one per distinct text (its latest decision), oldest decision first."""
    return [row for rows in stream_site_labels(session, since) for row in rows]


def stream_site_labels(session: Session, since: datetime | None = None, chunk: int = CHUNK) -> Iterator[list[Labelled]]:
    """The site's labelled comments in lists of at most ``chunk``, oldest decision first.

    One row per distinct normalised text: the latest human decision on any comment with
    that text wins (by decision time, then audit id), and a winning decision that implies no label
    drops the text. The database does the de-duplication and the ordering, so memory
    holds one chunk however many decisions there are (out-of-core training reads this).
    Ordered by decision time, then audit id: imported decisions keep their own times, so
    the newest by time (what retraining holds out) need not be the last inserted.
    """
    per_comment = select(func.max(AuditEntry.id).label("id")).where(*_HUMAN_DECISION).group_by(AuditEntry.comment_id).subquery()
    # Across comments, by decision time: an archive imported today carries decisions years older than today's.
    newest_first = func.row_number().over(partition_by=Comment.text_hash, order_by=(AuditEntry.created_at.desc(), AuditEntry.id.desc()))
    per_text = (
        select(AuditEntry.id.label("id"), newest_first.label("rank"))
        .join(per_comment, per_comment.c.id == AuditEntry.id).join(Comment, Comment.id == AuditEntry.comment_id)
        .where(Comment.purged_at.is_(None))
    )
    if since is not None:
        per_text = per_text.where(AuditEntry.created_at >= since)
    ranked = per_text.subquery()
    latest = select(ranked.c.id).where(ranked.c.rank == 1).subquery()
    query = (
        select(Comment.text, AuditEntry.action, AuditEntry.reason, AuditEntry.created_at)
        .join(latest, latest.c.id == AuditEntry.id).join(Comment, Comment.id == AuditEntry.comment_id)
        .order_by(AuditEntry.created_at, AuditEntry.id)
    )
    result = session.execute(query.execution_options(yield_per=chunk))  # a server-side cursor on PostgreSQL
    for partition in result.partitions():
        rows = [Labelled(text, labels, aware(created_at)) for text, action, reason, created_at in partition
                if (labels := labels_for(action, reason)) is not None]
        if rows:
            yield rows


def write_csv(rows: Iterable[Labelled], handle: TextIO) -> int:
    """Write ``text, spam, toxic, decided_at`` (an empty cell: label unknown); return the row count."""
    writer = csv.writer(handle)
    writer.writerow(["text", *LABELS, "decided_at"])
    count = 0
    for row in rows:
        writer.writerow([row.text, *(row.labels.get(label, "") for label in LABELS), row.decided_at.isoformat()])
        count += 1
    return count


def read_csv(handle: TextIO) -> list[Labelled]:
    """Read what `write_csv` wrote (the training pipeline's way in)."""
    rows = []
    for record in csv.DictReader(handle):
        labels = {label: int(record[label]) for label in LABELS if record.get(label, "").strip() in ("0", "1")}
        if record.get("text", "").strip() and labels:
            rows.append(Labelled(record["text"], labels, aware(datetime.fromisoformat(record["decided_at"]))))
    return rows
