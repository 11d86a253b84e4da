"""Fitting one label: thresholds, calibration, source weights, NB ratios and the linear models."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from training.datasets import Example
from training.fit import KINDS, NEVER, choose_thresholds, fit_linear, log_count_ratio, platt
from training.train import CALIBRATION_SHARE, label_rows, source_weights, split

# --- choose_thresholds ------------------------------------------------------------------


def precision_at(p, y, w, cut):
    chosen = p >= cut
    tp = float((w * y * chosen).sum())
    fp = float((w * (1 - y) * chosen).sum())
    return tp, (tp / (tp + fp) if tp + fp else 0.0)


def caught_at(p, y, w, cut):
    return float((w * y * (p >= cut)).sum())


@st.composite
def scored_rows(draw):
    n = draw(st.integers(1, 60))
    # Scores on a 0.01 grid below 1.0: exact ties are common and rounding to 6 places is a no-op.
    p = np.array(draw(st.lists(st.integers(0, 99), min_size=n, max_size=n)), dtype=float) / 100
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    w = np.array(draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)), dtype=float)
    return p, y, w


@settings(deadline=None)
@given(rows=scored_rows(), target=st.sampled_from([0.5, 0.8, 0.9, 0.98, 1.0]), max_missed=st.sampled_from([0.0, 0.02, 0.1, 0.3]))
def test_choose_thresholds_meets_its_targets(rows, target, max_missed):
    p, y, w = rows
    chosen = choose_thresholds(p, y, w, reject_precision=target, max_missed=max_missed)
    review_at, reject_at = chosen["review_at"], chosen["reject_at"]
    assert 0.0 <= review_at <= reject_at <= NEVER
    cuts = np.unique(p)

    # reject_at: rejections are precise enough, and it is the lowest score that is.
    precise_cuts = [c for c in cuts if precision_at(p, y, w, c)[0] > 0 and precision_at(p, y, w, c)[1] >= target - 1e-9]
    if reject_at < 1.0:
        tp, precision = precision_at(p, y, w, reject_at)
        assert tp > 0 and precision >= target - 1e-9
        assert reject_at in cuts
    for cut in cuts[cuts < reject_at]:
        tp, precision = precision_at(p, y, w, cut)
        assert tp == 0 or precision < target + 1e-9, (cut, precision)
    assert (reject_at == NEVER) == (not precise_cuts)

    # review_at: at most max_missed of the bad mass falls below it ...
    total_bad = float((w * y).sum())
    assert caught_at(p, y, w, review_at) >= (1 - max_missed) * total_bad - 1e-9
    # ... and it is the highest score that allows that (unless capped by reject_at).
    if review_at < reject_at:
        for cut in cuts[cuts > review_at]:
            assert caught_at(p, y, w, cut) < (1 - max_missed) * total_bad + 1e-9, cut


def test_choose_thresholds_on_a_clear_example():
    #            good rows low, bad rows high, one bad row hiding low and one good row scoring high
    p = np.array([0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99])
    y = np.array([0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    w = np.ones_like(p)
    chosen = choose_thresholds(p, y, w, reject_precision=0.98, max_missed=0.0)
    assert chosen == {"review_at": 0.2, "reject_at": 0.75}  # 0.7 is the good row: rejections start above it
    chosen = choose_thresholds(p, y, w, reject_precision=0.98, max_missed=0.15)
    assert chosen["review_at"] == 0.6  # letting the hiding row (1 of 9 bad) through is allowed


def test_reject_at_is_one_when_nothing_is_precise_enough():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    y = np.array([0, 1, 0, 1, 0])
    chosen = choose_thresholds(p, y, np.ones(5), reject_precision=0.98)
    assert chosen["reject_at"] == NEVER
    assert chosen["review_at"] <= 0.6


def test_weights_move_the_thresholds():
    p = np.array([0.9, 0.8, 0.7])
    y = np.array([1, 0, 1])
    light = choose_thresholds(p, y, np.array([1.0, 1.0, 1.0]), reject_precision=0.9)
    heavy = choose_thresholds(p, y, np.array([1.0, 0.01, 100.0]), reject_precision=0.9)
    assert light["reject_at"] == 0.9
    assert heavy["reject_at"] == 0.7  # the good row's weight is too small to spoil precision


def test_no_bad_rows_never_rejects():
    p = np.array([0.1, 0.5, 0.9])
    chosen = choose_thresholds(p, np.zeros(3, dtype=np.int64), np.ones(3))
    assert chosen["reject_at"] == NEVER


def test_rounding_does_not_let_a_good_row_be_rejected():
    p = np.array([0.9] * 99 + [0.1234564, 0.1234561])
    y = np.array([1] * 100 + [0])
    w = np.array([1.0] * 100 + [10.0])
    chosen = choose_thresholds(p, y, w, reject_precision=0.98)
    assert precision_at(p, y, w, chosen["reject_at"])[1] >= 0.98


def test_fallback_reject_at_rejects_nothing():
    p = np.array([1.0, 1.0, 0.5])  # e.g. sigmoid(40) == 1.0 in float64
    y = np.array([0, 1, 1])
    chosen = choose_thresholds(p, y, np.ones(3), reject_precision=0.98)
    assert not (p >= chosen["reject_at"]).any()


# --- platt ------------------------------------------------------------------------------


def test_platt_recovers_a_known_sigmoid():
    rng = np.random.default_rng(7)
    z = rng.normal(0, 2, 20_000)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-(1.5 * z - 0.5)))).astype(np.int64)
    a, b = platt(z, y, np.ones(z.size))
    assert a == pytest.approx(1.5, abs=0.15)
    assert b == pytest.approx(-0.5, abs=0.15)


def test_platt_weights_count_like_repeated_rows():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1, 400)
    y = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-2 * z))).astype(np.int64)
    w = np.where(y == 1, 3.0, 1.0)
    weighted = platt(z, y, w)
    repeated = platt(np.r_[z, z[y == 1], z[y == 1]], np.r_[y, y[y == 1], y[y == 1]], np.ones(len(z) + 2 * int(y.sum())))
    assert weighted == pytest.approx(repeated, abs=1e-2)
    assert weighted[1] > platt(z, y, np.ones(z.size))[1] + 0.5  # upweighting positives raises the intercept


# --- source_weights, label_rows, split --------------------------------------------------


def make_examples(cells):
    """cells: {(source, label value): count} -> examples carrying a "toxic" label."""
    examples = []
    for (source, value), count in cells.items():
        for i in range(count):
            examples.append(Example(f"{source} {value} {i}", {"toxic": value}, source, source, "train"))
    return examples


CELLS = {("tweets", 1): 40, ("tweets", 0): 8, ("news", 1): 5, ("news", 0): 45, ("forum", 1): 3, ("forum", 0): 3}


@pytest.mark.parametrize("prior", [None, 0.1, 0.02])
def test_source_weights_balance_each_source(prior):
    examples = make_examples(CELLS)
    index, y = label_rows(examples, "toxic")
    weights = source_weights(examples, index, y, prior=prior)
    share = 0.5 if prior is None else prior
    assert weights.shape == (len(index),)
    assert (weights > 0).all()
    assert weights.mean() == pytest.approx(1.0)
    sources = np.array([examples[i].source for i in index])
    masses = {}
    for source in ("tweets", "news", "forum"):
        pos = weights[(sources == source) & (y == 1)].sum()
        neg = weights[(sources == source) & (y == 0)].sum()
        assert pos / (pos + neg) == pytest.approx(share)
        # all rows of one cell weigh the same
        assert np.ptp(weights[(sources == source) & (y == 1)]) == pytest.approx(0)
        masses[source] = pos + neg
    # A source's total mass grows with the square root of its size.
    assert masses["tweets"] / masses["news"] == pytest.approx(np.sqrt(48 / 50))
    assert masses["news"] / masses["forum"] == pytest.approx(np.sqrt(50 / 6))


@given(st.dictionaries(st.tuples(st.sampled_from("abcd"), st.integers(0, 1)), st.integers(1, 30), min_size=1))
def test_source_weights_properties(cells):
    examples = make_examples(cells)
    index, y = label_rows(examples, "toxic")
    weights = source_weights(examples, index, y)
    assert np.isfinite(weights).all() and (weights > 0).all()
    assert weights.mean() == pytest.approx(1.0)
    sources = np.array([examples[i].source for i in index])
    for source in set(sources):
        pos = weights[(sources == source) & (y == 1)].sum()
        neg = weights[(sources == source) & (y == 0)].sum()
        if pos and neg:
            assert pos == pytest.approx(neg)


def test_source_weights_follow_the_index():
    examples = make_examples(CELLS)
    index = np.array([0, 1, 50, 51, 52, 100])  # a subset, in example order
    y = np.array([examples[i].labels["toxic"] for i in index])
    weights = source_weights(examples, index, y)
    assert len(weights) == len(index)
    assert weights.mean() == pytest.approx(1.0)


def test_label_rows_skip_rows_without_the_label():
    examples = [
        Example("a", {"spam": 1}, "s", "s", "train"),
        Example("b", {"toxic": 1, "insult": 0}, "t", "t", "train"),
        Example("c", {"spam": 0, "toxic": 0}, "s", "s", "train"),
        Example("d", {"toxic": 1}, "t", "t", "dev"),
    ]
    index, values = label_rows(examples, "toxic")
    assert index.tolist() == [1, 2, 3]
    assert values.tolist() == [1, 0, 1]
    assert index.dtype == np.int64 and values.dtype == np.int64
    index, values = label_rows(examples, "hate")
    assert index.tolist() == [] and values.tolist() == []


def test_split_keeps_dev_and_holds_out_a_stable_calibration_share():
    rng = np.random.default_rng(0)
    texts = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3000)]
    examples = [Example(t, {"spam": int(rng.integers(2))}, "s", "s", "dev" if i % 5 == 0 else "train") for i, t in enumerate(texts)]
    fitting, calibration, dev = split(examples)
    assert dev == [e for e in examples if e.split == "dev"]
    train = [e for e in examples if e.split == "train"]
    assert sorted(map(id, fitting + calibration)) == sorted(map(id, train))
    assert not {e.text for e in fitting} & {e.text for e in calibration}
    assert abs(len(calibration) / len(train) - CALIBRATION_SHARE) < 0.03
    assert split(examples) == (fitting, calibration, dev)  # deterministic


def test_split_puts_the_same_text_on_the_same_side_whatever_case_and_spacing():
    variants = []
    for i in range(400):
        text = f"comment number {i} about the match"
        variants += [text, text.upper(), "  " + text.replace(" ", "   ") + "\n"]
    examples = [Example(t, {"spam": 0}, "s", "s", "train") for t in variants]
    _, calibration, _ = split(examples)
    held = {" ".join(e.text.split()).lower() for e in calibration}
    assert held, "some of 400 texts should be held out"
    for e in examples:
        assert (e in calibration) == (" ".join(e.text.split()).lower() in held)


# --- log_count_ratio --------------------------------------------------------------------


def test_log_count_ratio_signs():
    # columns: only in positives, only in negatives, equally in both
    X = sparse.csr_matrix(np.array([[1, 0, 1], [2, 0, 1], [0, 1, 1], [0, 3, 1]], dtype=float))
    y = np.array([1, 1, 0, 0])
    r = log_count_ratio(X, y, np.ones(4))
    assert r.shape == (3,)
    assert r[0] > 0
    assert r[1] < 0
    assert r[0] > r[2] > r[1]


def test_log_count_ratio_uses_weights():
    X = sparse.csr_matrix(np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=float))
    y = np.array([1, 1, 0, 0])
    even = log_count_ratio(X, y, np.ones(4))
    assert even == pytest.approx(np.zeros(2))
    tilted = log_count_ratio(X, y, np.array([5.0, 1.0, 1.0, 1.0]))
    assert tilted[0] > 0 > tilted[1]


# --- fit_linear -------------------------------------------------------------------------


def separable_problem(seed=0, n=60, width=10):
    """Positives use columns [0, width), negatives [width, 2*width): linearly separable."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(np.int64)
    dense = np.zeros((n, 2 * width))
    for i in range(n):
        columns = rng.choice(width, 3, replace=False) + (0 if y[i] else width)
        dense[i, columns] = rng.uniform(0.5, 1.0, 3)
    return sparse.csr_matrix(dense), y


@pytest.mark.parametrize("kind", KINDS)
def test_fit_linear_separates_a_separable_problem(kind):
    X, y = separable_problem()
    coef, intercept = fit_linear(X, y, np.ones(len(y)), kind=kind)
    assert coef.shape == (X.shape[1],)
    assert isinstance(intercept, float)
    scores = np.asarray(X @ coef).ravel() + intercept
    assert scores[y == 1].min() > 0
    assert scores[y == 0].max() < 0
    # Held-out rows from the same process are separated too.
    X_new, y_new = separable_problem(seed=1)
    new_scores = np.asarray(X_new @ coef).ravel() + intercept
    assert ((new_scores > 0) == (y_new == 1)).all()


def test_ensemble_is_the_average_of_logreg_and_nbsvm():
    X, y = separable_problem()
    w = np.ones(len(y))
    c1, b1 = fit_linear(X, y, w, kind="logreg")
    c2, b2 = fit_linear(X, y, w, kind="nbsvm")
    c, b = fit_linear(X, y, w, kind="ensemble")
    assert c == pytest.approx((c1 + c2) / 2)
    assert b == pytest.approx((b1 + b2) / 2)


@pytest.mark.parametrize("kind", ["", "LOGREG", "random_forest", "svm "])
def test_unknown_kind_raises(kind):
    X, y = separable_problem()
    with pytest.raises(ValueError, match="unknown model kind"):
        fit_linear(X, y, np.ones(len(y)), kind=kind)


def test_reliability_reports_bins_and_calibration_error():
    from training.evaluate import reliability

    rng = np.random.default_rng(3)
    p = rng.uniform(size=20_000)
    calibrated = (rng.uniform(size=p.size) < p).astype(np.int64)
    rows, ece = reliability(p, calibrated, np.ones(p.size))
    assert len(rows) == 10 and ece < 0.02
    assert abs(sum(r["share"] for r in rows) - 1) < 1e-9
    _, overconfident = reliability(p, (rng.uniform(size=p.size) < 0.5).astype(np.int64), np.ones(p.size))
    assert overconfident > 0.2
