"""Turn model scores and the newsroom's rules into accept, review or reject, with reasons.

Pure: scores, facts about the comment and its author's history in; decision out. No
Flask, no database, no scikit-learn. Every rule is configurable and each one that fires
adds a sentence a moderator can read.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

ACCEPT, REVIEW, REJECT = "accept", "review", "reject"
_SEVERITY = {ACCEPT: 0, REVIEW: 1, REJECT: 2}


@dataclass
class Decision:
    """What to do with a comment and why; ``discard`` marks certain spam kept out of every queue."""

    action: str
    reasons: list[str] = field(default_factory=list)
    discard: bool = False

    def at_least(self, action: str, reason: str) -> None:
        """Raise the decision to ``action`` if milder, and record why."""
        if _SEVERITY[action] > _SEVERITY[self.action]:
            self.action = action
        self.reasons.append(reason)


@dataclass
class Rules:
    """The newsroom's moderation rules (built from configuration)."""

    decision_labels: list[str]
    thresholds: dict[str, dict[str, float]]
    section_thresholds: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    max_links: int = 2
    hold_words: list[str] = field(default_factory=list)  # already normalised
    block_words: list[str] = field(default_factory=list)
    trusted_min_approved: int = 3
    trusted_max_score: float = 0.9
    distrust_min_decided: int = 3
    distrust_rejection_rate: float = 0.5
    discard_spam_at: float = 0.995
    languages: list[str] = field(default_factory=lambda: ["en"])
    language_min_confidence: float = 0.9

    def __post_init__(self) -> None:
        self.section_thresholds = {section_key(name): overrides for name, overrides in self.section_thresholds.items()}


@dataclass
class Facts:
    """What the service knows about the comment beyond its scores."""

    normalized: str
    section: str | None = None
    language: str | None = None
    language_confidence: float = 0.0
    duplicate: bool = False
    banned: bool = False  # a moderator banned this author's email or IP address


@dataclass
class History:
    """The author's earlier comments as decided so far.

    ``approved`` counts the comments a person approved (trust must be earned from a
    moderator, not from the model publishing a few harmless comments); ``published`` counts
    every published one, the model's included, and is never less than ``approved``.
    """

    approved: int = 0
    rejected: int = 0
    published: int = 0

    def __post_init__(self):
        self.published = max(self.published, self.approved)


def decide(scores: dict[str, float], thresholds: dict[str, dict[str, float]], labels: list[str]) -> Decision:
    """Apply per-label thresholds: at or above ``reject_at`` rejects, at or above ``review_at`` holds."""
    decision = Decision(ACCEPT)
    for label in labels:
        if label not in scores or label not in thresholds:
            continue
        score, limits = scores[label], thresholds[label]
        if score >= limits["reject_at"]:
            decision.at_least(REJECT, f"{label} score {score:.2f} is at or above the reject threshold {limits['reject_at']:.2f}")
        elif score >= limits["review_at"]:
            decision.at_least(REVIEW, f"{label} score {score:.2f} is at or above the review threshold {limits['review_at']:.2f}")
    return decision


@functools.lru_cache(maxsize=64)
def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled alternation per word list, built once, not per comment."""
    return re.compile(r"(?<![a-z0-9])(" + "|".join(re.escape(w) for w in words if w) + r")(?![a-z0-9])")


def _matches(words: list[str], normalized: str) -> list[str]:
    if not any(words):
        return []
    found = set(_word_pattern(tuple(words)).findall(normalized))
    return [w for w in words if w in found]


def with_overrides(thresholds: dict, overrides: dict | None) -> dict[str, dict[str, float]]:
    """Return a copy of per-label thresholds with per-label overrides applied on top.

    A label only the overrides name starts from "never" (1.0) for the limit they leave out.
    """
    merged = {label: dict(limits) for label, limits in thresholds.items()}
    for label, limits in (overrides or {}).items():
        merged.setdefault(label, {"review_at": 1.0, "reject_at": 1.0}).update(limits)
    return merged


def section_key(section: str | None) -> str:
    """How sections are compared: "Politics", "politics " and "POLITICS" are one section."""
    return (section or "").strip().casefold()


def _section_overrides(rules: Rules, section: str | None) -> dict | None:
    return rules.section_thresholds.get(section_key(section)) if section and rules.section_thresholds else None


def thresholds_for(rules: Rules, section: str | None) -> dict[str, dict[str, float]]:
    """Return the global thresholds with the section's overrides applied."""
    return with_overrides(rules.thresholds, _section_overrides(rules, section))


def evaluate(scores: dict[str, float] | None, facts: Facts, history: History, rules: Rules) -> Decision:
    """Decide on one comment. ``scores`` is None when the model could not score it."""
    if scores is None:
        return Decision(REVIEW, ["model unavailable: held for a person to decide"])
    spam = scores.get("spam", 0.0)
    if spam >= rules.discard_spam_at:
        return Decision(REJECT, [f"spam score {spam:.3f} is beyond doubt (discard at {rules.discard_spam_at})"], discard=True)
    if facts.duplicate:
        return Decision(REJECT, ["duplicate of a recent comment from the same author or IP address"])
    blocked = _matches(rules.block_words, facts.normalized)
    if blocked:
        return Decision(REJECT, [f"contains blocked word(s): {', '.join(blocked)}"])

    decision = decide(scores, thresholds_for(rules, facts.section), rules.decision_labels)
    if decision.reasons and _section_overrides(rules, facts.section) is not None:
        decision.reasons = [f"{r} (section {facts.section!r})" for r in decision.reasons]
    decided = history.published + history.rejected
    highest = max((scores.get(label, 0.0) for label in rules.decision_labels), default=0.0)
    if decision.action == REVIEW and history.approved >= rules.trusted_min_approved and history.rejected == 0 and highest < rules.trusted_max_score:
        decision = Decision(ACCEPT, [f"trusted author: {history.approved} comments approved by moderators, none rejected"])
    if decided >= rules.distrust_min_decided and history.rejected / decided >= rules.distrust_rejection_rate:
        decision.at_least(REVIEW, f"author's comments were rejected {history.rejected} times out of {decided}")
    if facts.banned:
        decision.at_least(REVIEW, "author is banned: a moderator holds all of their comments")
    held = _matches(rules.hold_words, facts.normalized)
    if held:
        decision.at_least(REVIEW, f"contains held word(s): {', '.join(held)}")
    links = facts.normalized.split().count("xurl")
    if links > rules.max_links:
        decision.at_least(REVIEW, f"{links} links (more than {rules.max_links})")
    if facts.language and facts.language not in rules.languages and facts.language_confidence >= rules.language_min_confidence:
        decision.at_least(REVIEW, f"written in {facts.language!r}, which the model was not trained on")
    return decision
