"""Turn model scores into a decision: accept, review or reject, with reasons a person can read.

Pure: scores and thresholds in, decision out. No Flask, no scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACCEPT, REVIEW, REJECT = "accept", "review", "reject"
_SEVERITY = {ACCEPT: 0, REVIEW: 1, REJECT: 2}


@dataclass
class Decision:
    """What to do with a comment and why."""

    action: str
    reasons: list[str] = field(default_factory=list)


def decide(scores: dict[str, float], thresholds: dict[str, dict[str, float]], labels: list[str]) -> Decision:
    """Apply per-label thresholds: at or above ``reject_at`` rejects, at or above ``review_at`` holds.

    :param labels: the labels allowed to decide; other scores are informational.
    """
    action, reasons = ACCEPT, []
    for label in labels:
        if label not in scores or label not in thresholds:
            continue
        score, limits = scores[label], thresholds[label]
        if score >= limits["reject_at"]:
            verdict = REJECT
            reasons.append(f"{label} score {score:.2f} is at or above the reject threshold {limits['reject_at']:.2f}")
        elif score >= limits["review_at"]:
            verdict = REVIEW
            reasons.append(f"{label} score {score:.2f} is at or above the review threshold {limits['review_at']:.2f}")
        else:
            continue
        if _SEVERITY[verdict] > _SEVERITY[action]:
            action = verdict
    return Decision(action, reasons)
