"""Re-score the review queue with the live model after a promotion.

Every pending comment gets the new model's scores, terms and version (so the queue's
risk order follows the better model). Those the new model and the rules now decide
with confidence (accept or reject, not review) leave the queue, each with an audit
entry by "model" saying it was a re-score. A comment a moderator decides meanwhile is
left alone (the same conditional update as every decision).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import timedelta
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from moderation import language, store, webhooks
from moderation.assessor import Assessor
from moderation.policy import Facts, Rules, evaluate
from moderation.schema import PENDING, AuditEntry, Comment, utcnow
from moderation.text import normalize

CHUNK = 500


@dataclass
class Rescored:
    seen: int = 0
    outcomes: Counter = field(default_factory=Counter)  # accept / reject / review
    skipped: int = 0  # decided by a person while we worked


def _facts(session: Session, comment: Comment, normalized: str, languages: Collection[str]):
    """What the rules know about a held comment now: its language, whether its author is banned, their record.

    A duplicate was rejected at intake, so no pending comment is one.
    """
    detected, confidence = language.detect(comment.text, languages)  # as intake does: the same answer for the same text
    _, banned, history = store.author_facts(session, comment.text_hash, comment.author_email, comment.author_ip, timedelta(0))
    facts = Facts(normalized=normalized, section=comment.article_section, language=detected, language_confidence=confidence, banned=banned)
    return facts, history


def rescore_pending(session: Session, assessor: Assessor, rules: Rules, *, dry_run: bool = False, limit: int | None = None) -> Rescored:
    """Re-score pending comments (oldest first, in chunks); resolve those now decided with confidence."""
    result, after_id = Rescored(), 0
    while limit is None or result.seen < limit:
        size = CHUNK if limit is None else min(CHUNK, limit - result.seen)
        chunk = list(session.scalars(
            select(Comment).where(Comment.status == PENDING, Comment.discarded.is_(False), Comment.id > after_id).order_by(Comment.id).limit(size)
        ))
        if not chunk:
            break
        after_id = chunk[-1].id
        for comment in chunk:
            result.seen += 1
            normalized = normalize(comment.text)
            assessed = assessor.assess(comment.text, normalized=normalized)
            decision = evaluate(assessed["scores"], *_facts(session, comment, normalized, rules.languages), rules)
            result.outcomes[decision.action] += 1
            if dry_run:
                continue
            status = store.STATUS_OF[decision.action]
            now = utcnow()
            changed = session.execute(
                update(Comment).where(Comment.id == comment.id, Comment.status == PENDING).values(
                    status=status, decision=decision.action if status != PENDING else comment.decision, discarded=decision.discard,
                    scores=assessed["scores"], reasons=decision.reasons, terms=assessed["terms"], model_version=assessed["model_version"],
                    risk=max((assessed["scores"].get(label, 0.0) for label in rules.decision_labels), default=0.0), updated_at=now,
                )
            ).rowcount
            if changed != 1:
                result.skipped += 1
                session.rollback()
                continue
            if status != PENDING:
                store.enqueue_events(session, [(comment.id, comment.site)], status, webhooks.event_for(status, by_person=False), now)
                session.add(AuditEntry(
                    comment_id=comment.id, actor="model", action=decision.action, reason="rescore", note="; ".join(decision.reasons) or None,
                    previous_status=PENDING, new_status=status, scores=assessed["scores"], model_version=assessed["model_version"], created_at=now,
                ))
            session.commit()
    return result
