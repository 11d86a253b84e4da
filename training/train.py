"""Train the moderation model: examples in, fitted `ModerationModel` and its facts out.

One stage per function, each returning what the next takes:

    examples = load_examples(data_dir, names)
    fit_rows, calibration_rows, dev_rows = split(examples)
    model, info = train_model(fit_rows, calibration_rows, kind="ensemble")

Sources label different things at very different rates (Davidson's tweets are 83 %
offensive, Jigsaw's sample 50 % toxic). Left alone, a model learns "tweet style means
toxic". `source_weights` gives each source equal positive and negative mass, so the
source says nothing about the label and only the words can.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from sklearn.pipeline import Pipeline

from moderation.features import build_features, normalize_all, with_pieces
from moderation.model import LABEL_HELP, LinearLabels, ModerationModel
from training.datasets import Example, load_dataset
from training.fit import choose_thresholds, fit_dense, fit_linear, platt, stack

if TYPE_CHECKING:
    from moderation.pieces import PieceVectors

# Share of bad comments we calibrate to: realistic base rates on a news site, not the
# 50 % of balanced research sets. Assumptions, recorded in every manifest.
DEPLOYMENT_PRIORS = {"spam": 0.15, "toxic": 0.10, "insult": 0.05, "offensive": 0.10, "hate": 0.02}
CALIBRATION_SHARE = 0.15


@dataclass
class TrainingConfig:
    """Everything that shapes a training run, recorded in the manifest."""

    kind: str = "ensemble"
    C: float = 4.0
    priors: dict[str, float] | None = None
    reject_precision: float = 0.98
    max_missed: float = 0.02
    max_word_features: int = 150_000
    max_char_features: int = 250_000
    source_boost: dict[str, float] | None = None  # e.g. {"site": 3.0}: the site's own decisions weigh more

    def prior(self, label: str) -> float:
        return (self.priors or DEPLOYMENT_PRIORS)[label]


def load_examples(data_dir: Path, names: list[str]) -> list[Example]:
    """Read the named datasets into one list."""
    return [example for name in names for example in load_dataset(name, data_dir)]


def _in_calibration(text: str) -> bool:
    digest = hashlib.sha256(("calibration:" + " ".join(text.split()).lower()).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < CALIBRATION_SHARE


def split(examples: list[Example]) -> tuple[list[Example], list[Example], list[Example]]:
    """Split into fitting rows, calibration rows (held out of fitting) and dev rows."""
    dev = [e for e in examples if e.split == "dev"]
    train = [e for e in examples if e.split == "train"]
    calibration = [e for e in train if _in_calibration(e.text)]
    fitting = [e for e in train if not _in_calibration(e.text)]
    return fitting, calibration, dev


def labels_present(examples: list[Example]) -> list[str]:
    """Return the product labels that at least one example carries, in canonical order."""
    seen = {label for e in examples for label in e.labels}
    return [label for label in LABEL_HELP if label in seen]


def label_rows(examples: list[Example], label: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (indices of rows that carry ``label``, their 0/1 values)."""
    index = np.array([i for i, e in enumerate(examples) if label in e.labels], dtype=np.int64)
    values = np.array([examples[i].labels[label] for i in index], dtype=np.int64)
    return index, values


def source_weights(examples: list[Example], index: np.ndarray, y: np.ndarray, prior: float | None = None) -> np.ndarray:
    """Weight rows so each source's label rate stops being a clue.

    Within each source, positives get ``prior`` of its mass (half when ``prior`` is
    None) and negatives the rest; a source's mass grows with the square root of its size,
    so the large tweet sets cannot drown the smaller comment sets.
    """
    sources = np.array([examples[i].source for i in index])
    weights = np.zeros(len(index))
    positive_share = 0.5 if prior is None else prior
    for source in np.unique(sources):
        mask = sources == source
        mass = np.sqrt(mask.sum())
        for value, share in ((1, positive_share), (0, 1 - positive_share)):
            cell = mask & (y == value)
            if cell.any():
                weights[cell] = mass * share / cell.sum()
    return weights * len(index) / weights.sum()


def boosts(examples: list[Example], index: np.ndarray, boost: dict[str, float] | None) -> np.ndarray:
    """Per-row multipliers for sources that deserve more weight than the balancing gives them."""
    return np.array([(boost or {}).get(examples[i].source, 1.0) for i in index])


def train_model(fitting: list[Example], calibration: list[Example], config: TrainingConfig | None = None,
                pieces: "PieceVectors | None" = None) -> tuple[ModerationModel, dict]:
    """Fit features and every label present, calibrate on held-out rows, pick thresholds.

    With ``pieces`` (a piece-vector table, `moderation.pieces`), each label also gets a
    logistic regression on the comment's piece vector; the two log-odds are weighed
    against each other on the calibration rows (`training.fit.stack`) and folded into
    one weight vector over (words, chars, piece dimensions).

    :return: the model and a dict of per-label facts (rows, positives, calibration).
    """
    config = config or TrainingConfig()
    labels = labels_present(fitting)
    features = build_features(max_word_features=config.max_word_features, max_char_features=config.max_char_features)
    normalized, normalized_calibration = normalize_all([e.text for e in fitting]), normalize_all([e.text for e in calibration])
    features[0].fit(normalized[:1])  # the normaliser is stateless: done here once for both blocks
    X = features[1:].fit_transform(normalized).tocsr()
    Xcal = features[1:].transform(normalized_calibration).tocsr() if calibration else None
    E = pieces.transform(normalized) if pieces else None
    Ecal = pieces.transform(normalized_calibration) if pieces and calibration else None
    coefs, intercepts, calibrations, thresholds, facts = [], [], [], {}, {}
    for label in labels:
        index, y = label_rows(fitting, label)
        weights = source_weights(fitting, index, y) * boosts(fitting, index, config.source_boost)
        coef, intercept = fit_linear(X[index], y, weights, kind=config.kind, C=config.C)
        piece_coef = np.zeros(pieces.dims if pieces else 0)
        a, b, chosen = 1.0, 0.0, {"review_at": 0.5, "reject_at": 1.0}
        cal_index, cal_y = label_rows(calibration, label)
        blend = None
        if Xcal is not None and len(set(cal_y.tolist())) == 2:
            z = np.asarray(Xcal[cal_index] @ coef).ravel() + intercept
            if pieces:
                head, head_intercept = fit_dense(E[index], y, weights)
                on_ngrams, on_pieces, shift = stack(z, Ecal[cal_index] @ head + head_intercept, cal_y, source_weights(calibration, cal_index, cal_y))
                coef, piece_coef = coef * on_ngrams, head * on_pieces
                intercept = intercept * on_ngrams + head_intercept * on_pieces + shift
                z = np.asarray(Xcal[cal_index] @ coef).ravel() + Ecal[cal_index] @ piece_coef + intercept
                blend = {"ngrams": round(on_ngrams, 6), "pieces": round(on_pieces, 6)}
            w = source_weights(calibration, cal_index, cal_y, prior=config.prior(label))
            a, b = platt(z, cal_y, w)
            p = 1 / (1 + np.exp(-(a * z + b)))
            chosen = choose_thresholds(p, cal_y, w, reject_precision=config.reject_precision, max_missed=config.max_missed)
        coefs.append(np.concatenate([coef, piece_coef]))
        intercepts.append(intercept)
        calibrations.append((a, b))
        thresholds[label] = chosen
        facts[label] = {
            "rows": int(len(index)),
            "positives": int(y.sum()),
            "calibration_rows": int(len(cal_index)),
            "prior": config.prior(label),
            "platt": [round(a, 6), round(b, 6)],
            **({"stacking": blend} if blend else {}),
        }
    linear = LinearLabels(
        labels=tuple(labels),
        coef=np.vstack(coefs).astype(np.float32),
        intercept=np.array(intercepts, dtype=np.float64),
        calibration=np.array(calibrations, dtype=np.float64),
    )
    pipeline = Pipeline([("features", with_pieces(features, pieces) if pieces else features), ("labels", linear)])
    return ModerationModel(pipeline=pipeline, thresholds=thresholds), facts
