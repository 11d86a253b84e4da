"""Scores and thresholds in, a decision with readable reasons out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.policy import ACCEPT, REJECT, REVIEW, Decision, Rules, decide, thresholds_for

THRESHOLDS = {
    "spam": {"review_at": 0.5, "reject_at": 0.9},
    "toxic": {"review_at": 0.3, "reject_at": 0.75},
    "hate": {"review_at": 0.2, "reject_at": 0.6},
}
LABELS = ["spam", "toxic", "hate"]


@pytest.mark.parametrize(
    ("score", "action"),
    [
        (0.0, ACCEPT),
        (0.4999, ACCEPT),
        (0.5, REVIEW),  # exactly at review_at
        (0.7, REVIEW),
        (0.8999, REVIEW),
        (0.9, REJECT),  # exactly at reject_at
        (1.0, REJECT),
    ],
)
def test_boundaries(score, action):
    decision = decide({"spam": score}, THRESHOLDS, ["spam"])
    assert isinstance(decision, Decision)
    assert decision.action == action
    assert len(decision.reasons) == (0 if action == ACCEPT else 1)


def test_accept_has_no_reasons():
    assert decide({"spam": 0.1, "toxic": 0.1, "hate": 0.1}, THRESHOLDS, LABELS) == Decision(ACCEPT, [])


@pytest.mark.parametrize("order", [LABELS, LABELS[::-1], ["toxic", "spam", "hate"]])
def test_most_severe_label_wins_whatever_the_order(order):
    scores = {"spam": 0.95, "toxic": 0.4, "hate": 0.0}  # spam rejects, toxic reviews
    decision = decide(scores, THRESHOLDS, order)
    assert decision.action == REJECT
    assert len(decision.reasons) == 2
    assert any(r.startswith("spam") and "reject" in r for r in decision.reasons)
    assert any(r.startswith("toxic") and "review" in r for r in decision.reasons)


def test_review_beats_accept():
    decision = decide({"spam": 0.1, "toxic": 0.5}, THRESHOLDS, LABELS)
    assert decision.action == REVIEW
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith("toxic")


def test_labels_outside_the_decision_list_are_ignored():
    scores = {"spam": 0.1, "hate": 0.99}
    decision = decide(scores, THRESHOLDS, ["spam", "toxic"])
    assert decision.action == ACCEPT
    assert decision.reasons == []


def test_missing_scores_or_thresholds_are_skipped():
    thresholds = {"spam": THRESHOLDS["spam"]}
    decision = decide({"spam": 0.6, "toxic": 0.99}, thresholds, ["spam", "toxic", "insult"])
    assert decision.action == REVIEW
    assert len(decision.reasons) == 1


@pytest.mark.parametrize(
    ("score", "word", "threshold"),
    [(0.95, "reject", "0.90"), (0.9, "reject", "0.90"), (0.5, "review", "0.50"), (0.62, "review", "0.50")],
)
def test_reasons_name_label_score_and_threshold(score, word, threshold):
    (reason,) = decide({"spam": score}, THRESHOLDS, ["spam"]).reasons
    assert reason.startswith("spam ")
    assert f"{score:.2f}" in reason
    assert f"{word} threshold {threshold}" in reason


@given(st.dictionaries(st.sampled_from(LABELS), st.floats(0, 1), min_size=0, max_size=3))
def test_action_is_the_worst_single_label_verdict(scores):
    def verdict(label):
        limits = THRESHOLDS[label]
        score = scores[label]
        return 2 if score >= limits["reject_at"] else 1 if score >= limits["review_at"] else 0

    worst = max((verdict(label) for label in scores), default=0)
    decision = decide(scores, THRESHOLDS, LABELS)
    assert decision.action == (ACCEPT, REVIEW, REJECT)[worst]
    assert len(decision.reasons) == sum(verdict(label) > 0 for label in scores)


@pytest.mark.parametrize("section", ["politics", "Politics", "POLITICS ", "\tpolitics"])
def test_section_overrides_match_in_any_capitals(section):
    rules = Rules(decision_labels=LABELS, thresholds=THRESHOLDS, section_thresholds={"Politics": {"toxic": {"review_at": 0.05}}})
    assert thresholds_for(rules, section)["toxic"] == {"review_at": 0.05, "reject_at": 0.75}
    assert thresholds_for(rules, "sport")["toxic"] == THRESHOLDS["toxic"]
