"""Compare candidate models by measurement, so we can show why we ship what we ship.

Candidates are our own pipeline (one model per kind in `training.fit.KINDS`), a classic
TF-IDF + logistic-regression baseline without our normaliser or source weights, and
`alt-profanity-check` for the toxicity labels. Two questions are asked:

* `compare_on_dev`: how well does each rank the dev rows of the sources it was trained on?
* `leave_one_source_out`: how well does it rank a source (or YouTube video) it never saw?
  The second is closer to production, where comments come from our own site.

Pure functions: examples in, plain dicts out. No printing, no files.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_union

from moderation.model import ModerationModel
from training.datasets import Example
from training.evaluate import ranking
from training.fit import KINDS
from training.train import TrainingConfig, label_rows, split, train_model

TOXICITY_LABELS = ("toxic", "offensive", "insult", "hate")
TOXIC_SOURCES = ("impermium_insults", "davidson_hate_offensive", "olid_offenseval2019", "jigsaw_toxic_binary_sample")
SPAM_SOURCES = ("youtube_spam", "sms_spam")
BASELINE = "tfidf_logreg"
PROFANITY = "profanity_check"
# alt-profanity-check was trained on Davidson et al. and the Kaggle Jigsaw data (its
# README), so its scores on those two sets are not out-of-sample: flag, don't trust.
PROFANITY_SEEN = frozenset({"davidson_hate_offensive", "jigsaw_toxic_binary_sample"})
EXCLUDED_SOURCES = frozenset({"examples"})  # our tiny hand-written set: too small to measure on
PIECES_SUFFIX = "+pieces"  # a candidate trained with the piece-vector block too (`moderation.pieces`)

if TYPE_CHECKING:
    from moderation.pieces import PieceVectors

Scorer = Callable[[list[str]], np.ndarray]  # texts -> probability of one label


@dataclasses.dataclass
class Baseline:
    """A fitted single-label text classifier; `predict_proba` returns P(label) per text."""

    pipeline: Pipeline

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.pipeline.predict_proba(list(texts))[:, 1]


def baseline_tfidf_logreg(fitting: list[Example], label: str) -> Baseline:
    """Fit the classic baseline on the rows of ``fitting`` that carry ``label``.

    Word (1,2) and char_wb (2,5) TF-IDF on lower-cased raw text (sublinear tf, as in
    the usual public kernels), liblinear logistic regression with C=4. Deliberately no
    project normaliser and no source weights: it is what we would get without them.
    """
    index, y = label_rows(fitting, label)
    common = dict(lowercase=True, sublinear_tf=True, dtype=np.float32)
    features = make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), **common),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common),
    )
    pipeline = Pipeline([("features", features), ("clf", LogisticRegression(C=4, solver="liblinear"))])
    pipeline.fit([fitting[i].text for i in index], y)
    return Baseline(pipeline)


def profanity_scorer() -> Scorer:
    """Return alt-profanity-check's scorer (imported lazily: only toxicity labels use it)."""
    from profanity_check import predict_prob

    return lambda texts: np.asarray(predict_prob(list(texts)), dtype=np.float64)


def model_scorer(model: ModerationModel, label: str) -> Scorer:
    """Return a scorer for one label of one of our multi-label models."""
    column = model.labels.index(label)
    return lambda texts: model.predict_proba(texts)[:, column]


def only_label(examples: Iterable[Example], label: str) -> list[Example]:
    """Keep the rows carrying ``label`` with only that label, so `train_model` fits just it."""
    return [dataclasses.replace(e, labels={label: e.labels[label]}) for e in examples if label in e.labels]


def train_kinds(fitting: list[Example], calibration: list[Example], kinds: Iterable[str] = KINDS, config: TrainingConfig | None = None,
                pieces: "PieceVectors | None" = None) -> dict[str, ModerationModel]:
    """Train each kind once on every label present; training is the slow part, so reuse it.

    With ``pieces``, each kind is trained with the piece-vector block too, named ``kind+pieces``.
    """
    base = config or TrainingConfig()
    suffix = PIECES_SUFFIX if pieces else ""
    return {kind + suffix: train_model(fitting, calibration, dataclasses.replace(base, kind=kind), pieces=pieces)[0] for kind in kinds}


def compare_on_dev(
    fitting: list[Example],
    calibration: list[Example],
    dev: list[Example],
    kinds: Iterable[str] = KINDS,
    models: dict[str, ModerationModel] | None = None,
    profanity: bool = True,
) -> list[dict]:
    """Score every candidate on the dev rows; one row per (dataset, label).

    :param models: already-trained models by kind (trained here when None).
    :return: ``[{"dataset", "label", "rows", "positives", "scores": {candidate: metrics}}]``.
    """
    models = models if models is not None else train_kinds(fitting, calibration, kinds)
    dev = [e for e in dev if e.source not in EXCLUDED_SOURCES] or dev  # our own set only when nothing else
    texts = [e.text for e in dev]
    probabilities = {kind: (model.labels, model.predict_proba(texts)) for kind, model in models.items()}
    extra_scores: dict[str, dict[str, np.ndarray]] = {}
    labels = [label for label in models[next(iter(models))].labels] if models else []
    for label in labels:
        extra_scores[label] = {BASELINE: baseline_tfidf_logreg(fitting, label).predict_proba(texts)}
    if profanity and any(label in TOXICITY_LABELS for label in labels):
        profane = profanity_scorer()(texts)
        for label in labels:
            if label in TOXICITY_LABELS:
                extra_scores[label][PROFANITY] = profane
    rows = []
    for label in labels:
        index, y = label_rows(dev, label)
        sources = np.array([dev[i].source for i in index])
        for source in sorted(set(sources.tolist())):
            mask = sources == source
            scores = {kind: ranking(y[mask], p[index[mask], names.index(label)]) for kind, (names, p) in probabilities.items()}
            scores.update({name: ranking(y[mask], p[index[mask]]) for name, p in extra_scores[label].items()})
            rows.append({"dataset": source, "label": label, "rows": int(mask.sum()), "positives": int(y[mask].sum()), "scores": scores})
    return rows


def holdout_key(example: Example, label: str) -> str:
    """The unit held out for ``label``: a YouTube video for spam, a whole source otherwise."""
    return example.group if label == "spam" and example.source == "youtube_spam" else example.source


def leave_one_source_out(
    examples: list[Example],
    label: str,
    kind: str = "ensemble",
    config: TrainingConfig | None = None,
    baseline: bool = True,
    profanity: bool | None = None,
    pieces: "PieceVectors | None" = None,
) -> list[dict]:
    """Train without one group, score all of that group's rows; repeat for every group.

    Train rows of the other groups are split into fitting and calibration as in
    training; the held-out group's train and dev rows are all scored. Our own
    hand-written examples stay in training but are never held out.

    :param profanity: include alt-profanity-check (default: for toxicity labels).
    :param pieces: also train ``kind`` with this piece-vector block (scored as ``kind+pieces``).
    :return: ``[{"held_out", "rows", "positives", "scores": {candidate: metrics}}]``.
    """
    config = dataclasses.replace(config or TrainingConfig(), kind=kind)
    profanity = label in TOXICITY_LABELS if profanity is None else profanity
    rows_with_label = only_label(examples, label)
    groups = sorted({holdout_key(e, label) for e in rows_with_label if e.source not in EXCLUDED_SOURCES})
    score_profanity = profanity_scorer() if profanity else None
    results = []
    for group in groups:
        held = [e for e in rows_with_label if holdout_key(e, label) == group]
        fitting, calibration, _ = split([e for e in rows_with_label if holdout_key(e, label) != group])
        y = np.array([e.labels[label] for e in held])
        texts = [e.text for e in held]
        model, _ = train_model(fitting, calibration, config)
        scores = {kind: ranking(y, model_scorer(model, label)(texts))}
        if pieces is not None:
            with_pieces, _ = train_model(fitting, calibration, config, pieces=pieces)
            scores[kind + PIECES_SUFFIX] = ranking(y, model_scorer(with_pieces, label)(texts))
        if baseline:
            scores[BASELINE] = ranking(y, baseline_tfidf_logreg(fitting, label).predict_proba(texts))
        if score_profanity is not None:
            scores[PROFANITY] = ranking(y, score_profanity(texts))
        results.append({"held_out": group, "rows": len(held), "positives": int(y.sum()), "scores": scores})
    return results


def beats(scores: dict[str, dict[str, float]], chosen: str, rivals: Iterable[str]) -> dict:
    """Does ``chosen`` beat every rival on both ROC AUC and average precision?"""
    present = [r for r in rivals if r in scores]
    versus = {
        rival: all(scores[chosen][m] > scores[rival][m] for m in ("roc_auc", "average_precision"))
        for rival in present
    }
    return {"beats_all": bool(present) and all(versus.values()), "versus": versus}
