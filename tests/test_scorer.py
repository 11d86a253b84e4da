import numpy as np
import pytest

from conftest import AWKWARD_TEXTS as TEXTS
from moderation.assessor import Assessor
from moderation.scorer import FastScorer


def test_fast_path_matches_the_pipeline(any_tiny_model):
    scorer = FastScorer(any_tiny_model)
    expected = any_tiny_model.predict_proba(TEXTS)
    for text, row in zip(TEXTS, expected):
        fast = scorer.score(text)
        assert list(fast) == any_tiny_model.labels
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


OBFUSCATED = [
    "you are an idiot, visit cheap-pills.com now",
    "the ref is an i d i o t!",  # a spaced run that ends in punctuation
    "the ref is an i\u00a0d\u00a0i\u00a0o\u00a0t",  # ... or is spaced with no-break spaces
    "what a f . u . c . k",  # ... or with dots between spaces
    "the referee is a m o r o n",  # ... or starts with a word of its own
    "u r a m0r0n, you @sshole",
]


@pytest.mark.parametrize("text", OBFUSCATED)
def test_span_weights_add_up_to_the_log_odds(any_tiny_model, text):
    """Every feature's contribution lands on some span, so the spans sum to logit - intercept."""
    from moderation.text import normalize, word_spans

    scorer = FastScorer(any_tiny_model)
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


def test_batch_scoring_matches_one_at_a_time(any_tiny_model):
    scorer = FastScorer(any_tiny_model)
    batch = scorer.score_batch(TEXTS)
    assert batch.shape == (len(TEXTS), len(any_tiny_model.labels))
    for text, row in zip(TEXTS, batch):
        np.testing.assert_allclose(row, list(scorer.score(text).values()), atol=1e-9)
    np.testing.assert_allclose(batch, any_tiny_model.predict_proba(TEXTS), atol=1e-6)


MORE_TEXTS = TEXTS + [
    "Thanks! But you are a f u c k i n g 1d10t. Free pills: bit.ly/abc",
    "idiot idiot IDIOT, you are an idiot",
    "visit cheap-pills.com now or call +1 555 123 4567",
    "Ｆｒｅｅ ｍｏｎｅｙ at www.example.com ssssstupid!!!",
    "a b c d e f g",
    "ok",
    "odd\u00a0white\u3000space\tand\x1cseparators\x85between\u2028idiot words",
    "a lone \ud83d surrogate, then s p a c e d letters",
]


def _without_weights(terms):
    return [(t["text"], t["start"], t["end"], t["label"]) for t in terms]


def test_batch_explanations_match_one_at_a_time(any_tiny_model):
    scorer = FastScorer(any_tiny_model)
    probabilities, batch_terms = scorer.explain_batch(MORE_TEXTS, top=3)
    np.testing.assert_allclose(probabilities, scorer.score_batch(MORE_TEXTS), rtol=0, atol=0)
    assert any(batch_terms), "the abusive and spammy texts must be explained"
    for text, row, terms in zip(MORE_TEXTS, probabilities, batch_terms):
        scores, expected = scorer.score_and_explain(text, top=3)
        np.testing.assert_allclose(row, list(scores.values()), rtol=0, atol=1e-9)
        assert _without_weights(terms) == _without_weights(expected), text
        assert [t["weight"] for t in terms] == pytest.approx([t["weight"] for t in expected], abs=1e-4)


def test_batch_spans_are_word_spans():
    from moderation.batch import split_spans
    from moderation.text import word_spans

    texts = MORE_TEXTS + ["", "   ", "\u3000x\u3000"]
    for batch in (texts, texts[::-1], ["f u c k", "ok"], ["ok", "f u c k"]):  # spaced letters first, last, alone
        spans = split_spans(batch)
        expected = [(i, span.text, span.start, span.end) for i, text in enumerate(batch) for span in word_spans(text)]
        assert list(zip(spans.owner.tolist(), spans.text, spans.start.tolist(), spans.end.tolist())) == expected


def test_batch_rounding_is_python_rounding():
    from moderation.batch import _rounded

    rng = np.random.default_rng(7)
    halves = np.arange(20_000) / 1e4 + 0.5e-4  # the decimal ties, and the doubles either side of them
    values = np.concatenate([rng.random(50_000) * 50, halves, np.nextafter(halves, 0), np.nextafter(halves, 1), [0.0, 1e-300, 3e12]])
    assert _rounded(values, 4) == [round(v, 4) for v in values.tolist()]


def test_a_comment_gets_the_same_numbers_in_any_batch(any_tiny_model):
    scorer = FastScorer(any_tiny_model)
    probabilities, terms = scorer.explain_batch(MORE_TEXTS)
    for i in (0, 3, len(MORE_TEXTS) - 1):
        alone, alone_terms = scorer.explain_batch(MORE_TEXTS[i : i + 1])
        assert alone.tolist() == probabilities[i : i + 1].tolist()
        assert alone_terms == terms[i : i + 1]
    assert scorer.explain_batch([]) [1] == [] and scorer.score_batch([]).shape == (0, len(any_tiny_model.labels))


def test_batch_span_weights_add_up_to_the_log_odds(any_tiny_model):
    from moderation.text import normalize

    scorer = FastScorer(any_tiny_model)
    texts = [*OBFUSCATED, "hello world", "Great reporting, thank you"]
    logits, spans, contribution = scorer.batch.contributions(texts, [normalize(t) for t in texts])
    for i in range(len(texts)):
        np.testing.assert_allclose(contribution[spans.owner == i].sum(axis=0), logits[i] - scorer.intercept, atol=1e-9)


def test_assess_batch_matches_assess(tiny_model):
    assessor = Assessor(tiny_model, decision_labels=["spam", "toxic"], thresholds={"spam": {"review_at": 0.3, "reject_at": 0.6}})
    for explain in (True, False):
        batch = list(assessor.assess_batch(MORE_TEXTS, explain=explain, chunk=4))  # chunk edges inside the list
        assert len(batch) == len(MORE_TEXTS)
        for text, result in zip(MORE_TEXTS, batch):
            one = assessor.assess(text)
            assert result["scores"] == pytest.approx(one["scores"], abs=1e-6)
            assert (result["decision"], result["reasons"]) == (one["decision"], one["reasons"])
            assert _without_weights(result["terms"]) == (_without_weights(one["terms"]) if explain else [])
