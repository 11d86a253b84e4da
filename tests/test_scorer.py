import numpy as np
import pytest

from moderation.assessor import Assessor
from moderation.scorer import FastScorer

TEXTS = [
    "Great reporting, thank you for covering the council meeting.",
    "you are a complete idiot and a liar",
    "Check out my channel!!! http://bit.ly/free-money subscribe",
    "f u c k you moron",
    "",
    "   ",
    "WOW WHAT A GOAL",
    "Привет, как дела?",
    "<br />&amp; <script>alert(1)</script>",
]


def test_fast_path_matches_the_pipeline(tiny_model):
    scorer = FastScorer(tiny_model)
    expected = tiny_model.predict_proba(TEXTS)
    for text, row in zip(TEXTS, expected):
        fast = scorer.score(text)
        assert list(fast) == tiny_model.labels
        np.testing.assert_allclose(list(fast.values()), row, rtol=0, atol=1e-6)


def test_explanations_point_at_the_original_text(tiny_model):
    scorer = FastScorer(tiny_model)
    text = "Thanks! But you are a f u c k i n g 1d10t. Free pills: bit.ly/abc"
    scores, terms = scorer.score_and_explain(text, top=3)
    assert scores == pytest.approx(scorer.score(text))
    assert terms, "a clearly abusive spammy comment must be explained"
    for term in terms:
        assert text[term["start"] : term["end"]] == term["text"]
        assert term["weight"] > 0
        assert term["label"] in tiny_model.labels
    weights = [t["weight"] for t in terms]
    assert weights == sorted(weights, reverse=True)
    spam_terms = {t["text"] for t in terms if t["label"] == "spam"}
    assert "bit.ly/abc" in spam_terms


def test_span_weights_add_up_to_the_log_odds(tiny_model):
    """Every feature's contribution lands on some span, so the spans sum to logit - intercept."""
    from moderation.text import normalize, word_spans

    scorer = FastScorer(tiny_model)
    text = "you are an idiot, visit cheap-pills.com now"
    blocks = scorer._vectors(normalize(text))
    contribution = scorer._span_contributions(word_spans(text), *blocks)
    np.testing.assert_allclose(contribution.sum(axis=0), scorer._logits(*blocks) - scorer.intercept, atol=1e-9)


def test_assessor_decides_with_reasons(tiny_model):
    assessor = Assessor(tiny_model, decision_labels=["spam", "toxic"], thresholds={"spam": {"review_at": 0.0, "reject_at": 2.0}})
    result = assessor.assess("hello there")
    assert result["decision"] == "review"
    assert any("spam" in reason for reason in result["reasons"])
    assert result["model_version"] == tiny_model.version
    relaxed = Assessor(tiny_model, decision_labels=[], thresholds={})
    assert relaxed.assess("hello there")["decision"] == "accept"


def test_batch_scoring_matches_one_at_a_time(tiny_model):
    scorer = FastScorer(tiny_model)
    batch = scorer.score_batch(TEXTS)
    assert batch.shape == (len(TEXTS), len(tiny_model.labels))
    for text, row in zip(TEXTS, batch):
        np.testing.assert_allclose(row, list(scorer.score(text).values()), atol=1e-9)
    np.testing.assert_allclose(batch, tiny_model.predict_proba(TEXTS), atol=1e-6)
