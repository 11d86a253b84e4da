"""The moderation model: one feature pipeline, one calibrated linear scorer per label.

Whatever was trained (logistic regression, NB-SVM, a calibrated SVM or an average of
them), the result folds into one weight vector and one intercept per label, followed
by Platt calibration. That keeps the saved model a plain scikit-learn `Pipeline` for
batch work, and lets `moderation.scorer` score one comment in well under a millisecond.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from moderation.weights import ScoringWeights, sigmoid

# Every label the product knows, in a fixed order. A model carries the subset it was trained for.
LABEL_HELP = {
    "spam": "commercial and link spam, scams, self-promotion, SEO junk",
    "toxic": "any abuse: insults, threats, obscenity, identity hate, harassment",
    "insult": "insults aimed at a person taking part in the conversation",
    "offensive": "offensive or profane language, targeted or not",
    "hate": "attacks on a group for race, religion, gender, sexuality, origin or disability",
}


class LinearLabels(BaseEstimator):
    """Pre-fitted linear scores for several labels, with Platt calibration per label.

    :param labels: label names, one per row of ``coef``.
    :param coef: array (n_labels, n_features) of weights over the TF-IDF features.
    :param intercept: array (n_labels,).
    :param calibration: array (n_labels, 2) of Platt ``(a, b)``: p = sigmoid(a * z + b).
    """

    def __init__(self, labels=(), coef=None, intercept=None, calibration=None):
        self.labels = labels
        self.coef = coef
        self.intercept = intercept
        self.calibration = calibration

    def __sklearn_is_fitted__(self) -> bool:
        return self.coef is not None

    def fit(self, X=None, y=None):
        """Do nothing: the weights are fitted by `training` and handed in whole."""
        return self

    def decision_function(self, X) -> np.ndarray:
        """Return raw log-odds, shape (n_samples, n_labels)."""
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict_proba(self, X) -> np.ndarray:
        """Return calibrated probabilities, shape (n_samples, n_labels)."""
        z = self.decision_function(X)
        return sigmoid(z * self.calibration[:, 0] + self.calibration[:, 1])


class PieceBlock(TransformerMixin, BaseEstimator):
    """The piece-vector block of the feature union: `moderation.pieces.PieceVectors` as a
    scikit-learn transformer. Nothing to fit: the table was distilled beforehand."""

    def __init__(self, pieces=None):
        self.pieces = pieces

    def __sklearn_is_fitted__(self) -> bool:
        return self.pieces is not None

    def fit(self, X=None, y=None) -> "PieceBlock":
        return self

    def transform(self, X) -> np.ndarray:
        return self.pieces.transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"piece_dim_{i}" for i in range(self.pieces.dims)], dtype=object)


@dataclass
class ModerationModel:
    """A fitted pipeline plus what serving needs to act on its scores.

    ``thresholds`` maps a label to ``{"review_at": float, "reject_at": float}``.
    """

    pipeline: Pipeline
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    version: str = "unversioned"

    @property
    def labels(self) -> list[str]:
        return list(self.pipeline[-1].labels)

    @functools.cached_property
    def weights(self) -> ScoringWeights:
        """What scoring reads, taken out of the pipeline once."""
        return ScoringWeights.from_pipeline(self.pipeline)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Score a batch: calibrated probabilities, shape (len(texts), n_labels)."""
        return self.pipeline.predict_proba(list(texts))
