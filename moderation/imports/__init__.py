"""Bring a site's past moderated comments in as human decisions, so its first model learns from its own readers.

A source (`wordpress`, `csvfile`) streams `Record`s; `run` validates each like the API
would, skips what cannot or should not be imported (counting why), and stores the rest
in batches through `store.import_comments`: the comment with its final status and one
audit entry by ``import:<source>`` carrying the past decision, which `moderation.labels`
turns into training labels. Nothing is scored and no webhook fires: this is history.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moderation import store, validation
from moderation.errors import ApiError
from moderation.schema import PENDING, PUBLISHED, REJECTED, utcnow
from moderation.text import normalize

BATCH = 500

# outcome -> (status, audit action, audit reason, the comment's decision field). An approval is a
# person's, as if the comment had been held ("review") and approved: it counts towards trust.
OUTCOMES = {
    "approved": (PUBLISHED, "approve", None, "review"),
    "spam": (REJECTED, "reject", "spam", "reject"),
    "abuse": (REJECTED, "reject", "abuse", "reject"),
    "off_topic": (REJECTED, "reject", "off_topic", "reject"),
    "rejected": (REJECTED, "reject", "other", "reject"),
    "trash": (REJECTED, "reject", "other", "reject"),  # trash means many things: no label
    "pending": (PENDING, "review", None, "review"),  # never decided: the review queue, no label
}
NOT_DECIDED = "not decided yet (pending; --queue-pending keeps them for review)"
ALREADY = "already imported"


@dataclass
class Record:
    """One past comment as a source read it. ``skip`` set: not imported, for that reason."""

    where: str  # "comment 4711", "line 12": for people
    external_id: str | None = None
    text: str | None = None
    outcome: str | None = None  # a key of OUTCOMES
    note: str | None = None  # what the source said, kept in the audit entry
    author: dict = field(default_factory=dict)  # name, email, url, ip
    article: dict = field(default_factory=dict)  # id, url, title, section
    parent_external_id: str | None = None
    created_at: datetime | None = None
    decided_at: datetime | None = None
    skip: str | None = None


@dataclass
class Report:
    imported: Counter = field(default_factory=Counter)  # per outcome
    skipped: Counter = field(default_factory=Counter)  # per reason
    examples: dict[str, str] = field(default_factory=dict)  # reason -> where it first happened
    orphans: int = 0  # replies whose parent was not imported: stored without one

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)

    def lines(self, dry_run: bool = False) -> list[str]:
        """The summary a person reads after an import."""
        verb = "would import" if dry_run else "imported"
        out = [f"{verb} {sum(self.imported.values())} comments"]
        out += [f"  {count:>9}  {outcome}" for outcome, count in sorted(self.imported.items(), key=lambda kv: -kv[1])]
        out.append(f"skipped {sum(self.skipped.values())}")
        out += [f"  {count:>9}  {reason} (first: {self.examples[reason]})" for reason, count in self.skipped.most_common()]
        if self.orphans:
            out.append(f"{self.orphans} replies whose parent was not imported are stored without a parent")
        return out


def _validated(record: Record, max_text_chars: int) -> Record:
    """Check the record as `POST /api/v1/comments` would; set ``skip`` naming the first bad field."""
    body = {"text": record.text, "external_id": record.external_id,
            "author": {k: v for k, v in record.author.items() if v}, "article": {k: v for k, v in record.article.items() if v}}
    try:
        new = validation.new_comment(body, max_text_chars)
    except ApiError as error:
        name, message = next(iter(error.fields.items()))
        record.skip = f"invalid {name}: {message}"
        return record
    record.author = {**new.author}
    record.article = {**new.article}
    return record


def _values(record: Record, site: str, actor: str) -> tuple[dict, dict]:
    """The comment row and its audit entry, as `store.import_comments` takes them."""
    status, action, reason, decision = OUTCOMES[record.outcome]
    created = record.created_at or utcnow()
    decided = record.decided_at or created
    comment = dict(
        site=site, external_id=record.external_id, text=record.text, text_hash=store.text_hash(normalize(record.text)),
        author_name=record.author.get("name"), author_email=record.author.get("email"), author_url=record.author.get("url"),
        author_ip=record.author.get("ip"), author_user_agent=None,
        article_id=record.article.get("id"), article_url=record.article.get("url"), article_title=record.article.get("title"),
        article_section=record.article.get("section"), parent_id=None,
        status=status, decision=decision, discarded=False, risk=0.0, scores={}, reasons=[f"imported: {record.note or record.outcome}"],
        terms=[], model_version=None, created_at=created, updated_at=decided,
    )
    audit = dict(actor=actor, action=action, reason=reason, note=f"imported: {record.note or record.outcome}",
                 previous_status=None, new_status=status, scores={}, model_version=None, created_at=decided)
    return comment, audit


def _write(session: Session, records: list[Record], site: str, actor: str, report: Report, dry_run: bool) -> None:
    """Store one batch in one transaction (rolled back on a dry run); count only once it succeeded."""
    wanted = {r.external_id for r in records} | {r.parent_external_id for r in records if r.parent_external_id}
    known = store.imported_ids(session, site, wanted)
    rows, parents, index, already, counts, orphans = [], [], {}, [], Counter(), 0
    for record in records:
        if record.external_id in known or record.external_id in index:
            already.append(record.where)
            continue
        comment, audit = _values(record, site, actor)
        parent, in_batch = record.parent_external_id, None
        if parent in known:
            comment["parent_id"] = known[parent]
        elif parent in index:
            in_batch = index[parent]
        elif parent:
            orphans += 1
        index[record.external_id] = len(rows)
        rows.append((comment, audit))
        parents.append(in_batch)
        counts[record.outcome] += 1
    store.import_comments(session, rows, parents, commit=not dry_run)
    for where in already:
        report.skip(ALREADY, where)
    report.imported.update(counts)
    report.orphans += orphans


def _flush(session: Session, records: list[Record], site: str, actor: str, report: Report, dry_run: bool) -> None:
    while records:
        try:
            return _write(session, records, site, actor, report, dry_run)
        except IntegrityError:  # a concurrent import of the same rows won the race: look again
            session.rollback()


def run(records: Iterable[Record], session: Session, *, site: str, source: str, max_text_chars: int,
        queue_pending: bool = False, dry_run: bool = False, batch: int = BATCH, report: Report | None = None) -> Report:
    """Import ``records`` for ``site``; return what happened to each, counted (into ``report`` if given,
    so a caller still has the counts of the committed batches when the source fails half-way).

    ``dry_run``: everything is checked (against the database too) and nothing is written.
    """
    report = report if report is not None else Report()
    waiting: list[Record] = []
    actor = f"import:{source}"
    for record in records:
        if record.skip is None and record.outcome == "pending" and not queue_pending:
            record.skip = NOT_DECIDED
        if record.skip is None:
            _validated(record, max_text_chars)
        if record.skip is not None:
            report.skip(record.skip, record.where)
            continue
        waiting.append(record)
        if len(waiting) >= batch:
            _flush(session, waiting, site, actor, report, dry_run)
            waiting = []
    _flush(session, waiting, site, actor, report, dry_run)
    return report


class Counted(io.RawIOBase):
    """A binary file that reports each read's size (to a progress bar's ``update``): progress in bytes."""

    def __init__(self, raw, update):
        self.raw, self.update = raw, update

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.update(count or 0)
        return count
