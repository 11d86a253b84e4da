"""A new comment's path: already seen? score, apply the rules, store with its audit entry.

The comment is committed before the answer is sent. If the model cannot score it, the
comment is still stored, as pending with the reason "model unavailable": never
published unscored, never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moderation import language, metrics, store
from moderation.assessor import Assessor
from moderation.errors import ApiError
from moderation.policy import Facts, Rules, evaluate, thresholds_for
from moderation.schema import Comment
from moderation.text import normalize
from moderation.validation import NewComment

log = logging.getLogger(__name__)


def rules_from_config(config: dict, thresholds: dict[str, dict[str, float]]) -> Rules:
    """Build the policy's rules from configuration and the model's thresholds."""
    return Rules(
        decision_labels=list(config["DECISION_LABELS"]),
        thresholds=thresholds,
        section_thresholds=config["SECTION_THRESHOLDS"],
        max_links=config["MAX_LINKS"],
        hold_words=[normalize(w) for w in config["HOLD_WORDS"]],
        block_words=[normalize(w) for w in config["BLOCK_WORDS"]],
        trusted_min_approved=config["TRUSTED_MIN_APPROVED"],
        trusted_max_score=config["TRUSTED_MAX_SCORE"],
        distrust_min_decided=config["DISTRUST_MIN_DECIDED"],
        distrust_rejection_rate=config["DISTRUST_REJECTION_RATE"],
        discard_spam_at=config["DISCARD_SPAM_AT"],
        languages=list(config["LANGUAGES"]),
        language_min_confidence=config["LANGUAGE_MIN_CONFIDENCE"],
    )


def _assess(assessor: Assessor | None, text: str, normalized: str) -> dict | None:
    if assessor is None:
        return None
    try:
        return assessor.assess(text, normalized=normalized)
    except Exception:  # any scoring failure must hold the comment, not lose it
        log.exception("scoring failed; holding the comment for review")
        return None


def submit(session: Session, new: NewComment, *, site: str, assessor: Assessor | None, rules: Rules, duplicate_window: timedelta,
           admit: Callable[[NewComment], None] | None = None) -> tuple[Comment, bool]:
    """Store and decide one comment; return (comment, created).

    A retry (the site sent this external_id before) is answered with the stored comment,
    found by the same statement that asks about the author (`store.intake_facts`); a retry
    racing its original is caught by the unique (site, external_id) constraint. ``admit``
    (the API's rate limit) is called for new comments only, before any scoring: it raises
    to refuse one, so a retry is never refused or counted.
    """
    normalized = normalize(new.text)
    digest = store.text_hash(normalized)
    found = store.intake_facts(session, site=site, external_id=new.external_id, parent_id=new.parent_id, digest=digest,
                               email=new.author["email"], ip=new.author["ip"], window=duplicate_window)
    if found.existing_id is not None and (existing := store.get_comment(session, found.existing_id)) is not None:
        return existing, False
    if new.parent_id is not None and not found.parent_found:
        raise ApiError(422, "the request has invalid fields", fields={"parent_id": f"no comment {new.parent_id}"})
    if admit is not None:
        admit(new)
    assessed = _assess(assessor, new.text, normalized)
    detected, confidence = language.detect(new.text, rules.languages)
    facts = Facts(
        normalized=normalized, section=new.article["section"], language=detected, language_confidence=confidence,
        duplicate=found.duplicate, banned=found.banned,
    )
    scores = assessed["scores"] if assessed else None
    decision = evaluate(scores, facts, found.history, rules)
    values = dict(
        site=site, external_id=new.external_id, text=new.text, text_hash=digest,
        author_name=new.author["name"], author_email=new.author["email"], author_url=new.author["url"],
        author_ip=new.author["ip"], author_user_agent=new.author["user_agent"],
        article_id=new.article["id"], article_url=new.article["url"], article_title=new.article["title"],
        article_section=new.article["section"], parent_id=new.parent_id,
        status=store.STATUS_OF[decision.action], decision=decision.action, discarded=decision.discard,
        risk=max((scores.get(label, 0.0) for label in rules.decision_labels), default=0.0) if scores else 1.0,
        scores=scores or {}, reasons=decision.reasons, terms=assessed["terms"] if assessed else [],
        model_version=assessed["model_version"] if assessed else None,
    )
    try:
        comment = store.add_comment(session, values)
    except IntegrityError:
        # A retry with the same external_id raced us and won: answer with its comment.
        session.rollback()
        existing = store.find_by_external_id(session, site, new.external_id) if new.external_id else None
        if existing is None:
            raise
        return existing, False
    metrics.record_decision(decision.action, scores, thresholds_for(rules, facts.section))
    return comment, True
