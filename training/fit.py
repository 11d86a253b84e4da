"""Fit one label's linear weights, calibrate them and pick its decision thresholds.

Pure functions over arrays: no files, no printing. Every candidate model (logistic
regression, NB-SVM, a linear SVM, their average) ends as one weight vector and one
intercept over the shared TF-IDF features, so serving stays a single dot product.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

KINDS = ("logreg", "nbsvm", "svm", "ensemble")
NEVER = 1.01  # a threshold no calibrated probability reaches


def _logreg(X, y, w, C: float) -> tuple[np.ndarray, float]:
    clf = LogisticRegression(C=C, solver="liblinear", max_iter=200)
    clf.fit(X, y, sample_weight=w)
    return clf.coef_.ravel(), float(clf.intercept_[0])


def log_count_ratio(X, y, w, alpha: float = 1.0) -> np.ndarray:
    """NB-SVM's per-feature log-count ratio between positive and negative rows."""
    Xw = sparse.diags(w) @ X
    p = alpha + np.asarray(Xw[y == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(Xw[y == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def _nbsvm(X, y, w, C: float) -> tuple[np.ndarray, float]:
    r = log_count_ratio(X, y, w)
    coef, intercept = _logreg(X @ sparse.diags(r), y, w, C)
    return coef * r, intercept  # (x * r) . c == x . (c * r): folds back into plain features


def _svm(X, y, w, C: float) -> tuple[np.ndarray, float]:
    clf = LinearSVC(C=C / 20, max_iter=5000)
    clf.fit(X, y, sample_weight=w)
    return clf.coef_.ravel(), float(clf.intercept_[0])


def fit_linear(X, y, w, kind: str = "ensemble", C: float = 4.0) -> tuple[np.ndarray, float]:
    """Fit one label; return ``(coef, intercept)`` over the columns of ``X``."""
    if kind == "logreg":
        return _logreg(X, y, w, C)
    if kind == "nbsvm":
        return _nbsvm(X, y, w, C)
    if kind == "svm":
        return _svm(X, y, w, C)
    if kind == "ensemble":
        c1, b1 = _logreg(X, y, w, C)
        c2, b2 = _nbsvm(X, y, w, C)
        return (c1 + c2) / 2, (b1 + b2) / 2
    raise ValueError(f"unknown model kind {kind!r}; choose from {', '.join(KINDS)}")


def fit_dense(E: np.ndarray, y, w, C: float = 10.0) -> tuple[np.ndarray, float]:
    """Fit one label's logistic regression on dense unit-length piece vectors (`moderation.pieces`)."""
    clf = LogisticRegression(C=C, max_iter=3000)
    clf.fit(E, y, sample_weight=w)
    return clf.coef_.ravel(), float(clf.intercept_[0])


def stack(z_ngrams: np.ndarray, z_pieces: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Weigh the n-gram and piece-vector log-odds against each other on held-out rows.

    :return: ``(a, b, c)`` for ``a * z_ngrams + b * z_pieces + c``. Both inputs are linear
        in the features, so the result folds back into one weight vector per label.
    """
    clf = LogisticRegression(C=1e4)
    clf.fit(np.c_[z_ngrams, z_pieces], y, sample_weight=w)
    a, b = clf.coef_[0]
    return float(a), float(b), float(clf.intercept_[0])


def platt(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Fit Platt scaling ``p = sigmoid(a*z + b)`` on held-out log-odds with sample weights."""
    clf = LogisticRegression(C=1e4)
    clf.fit(z.reshape(-1, 1), y, sample_weight=w)
    return float(clf.coef_[0, 0]), float(clf.intercept_[0])


def choose_thresholds(
    p: np.ndarray, y: np.ndarray, w: np.ndarray, *, reject_precision: float = 0.98, max_missed: float = 0.02
) -> dict[str, float]:
    """Pick ``review_at`` and ``reject_at`` from explicit targets on weighted held-out data.

    ``reject_at`` is the lowest score whose auto-rejections are at least
    ``reject_precision`` precise; ``review_at`` the highest score that still lets no
    more than ``max_missed`` of bad comments through unreviewed. When no score is
    precise enough, ``reject_at`` is `NEVER` (1.01): that label never rejects on its own.
    """
    order = np.argsort(-p, kind="stable")
    ps, ys, ws = p[order], y[order], w[order]
    tp = np.cumsum(ws * ys)
    fp = np.cumsum(ws * (1 - ys))
    precision = tp / np.maximum(tp + fp, 1e-12)
    # Only consider cut points between distinct scores.
    last_of_value = np.r_[ps[1:] != ps[:-1], True]
    precise = np.flatnonzero(last_of_value & (precision >= reject_precision) & (tp > 0))
    reject_at = float(ps[precise.max()]) if precise.size else NEVER
    total_bad = tp[-1]
    caught_enough = np.flatnonzero(last_of_value & (tp >= (1 - max_missed) * total_bad))
    review_at = float(ps[caught_enough.min()]) if caught_enough.size else 0.0
    review_at = min(review_at, reject_at)
    return {"review_at": review_at, "reject_at": reject_at}  # unrounded: rounding could cross a row
