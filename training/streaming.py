"""Out-of-core training: hashed n-grams and one SGD logistic model per label, fitted chunk by chunk.

The in-memory path (`training.train`) holds every comment's TF-IDF row at once, so its
memory grows with the number of comments. Here rows arrive in chunks from a `Chunks`
source (called once per pass, so a file or a database query is read again each time)
and only one chunk's features exist at a time: memory is bounded by the chunk size and
the fixed number of hashed columns, never by the number of comments.

Passes over the stream:

1. count: rows per (label, source, value) for the source weights, and document
   frequencies of the hashed columns for the IDF weights;
2. fit, ``epochs`` times: `SGDClassifier.partial_fit` per label on each chunk;
3. calibrate: Platt scaling and thresholds on the held-out calibration rows (the same
   hash-chosen rows `training.train.split` holds out), sampled down to a fixed maximum.

The result is an ordinary `ModerationModel` (hashed TF-IDF features, `LinearLabels`), so
bundles, the fast scorer, the batch path and the API serve it unchanged.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np
from scipy import sparse
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline

from moderation.features import HASH_FEATURES, HashedCounter, build_hashed_features, idf_from_df, normalize_all
from moderation.model import LABEL_HELP, LinearLabels, ModerationModel
from training.datasets import Example
from training.fit import choose_thresholds, platt
from training.train import TrainingConfig, _in_calibration

Chunks = Callable[[], Iterable[list[Example]]]  # each call streams every row again, one list per chunk

BACKENDS = ("memory", "streaming")
SITE_CHUNK = 10_000  # decisions read from the database per chunk


@dataclass
class StreamingConfig:
    """What shapes a streaming run beyond `TrainingConfig`; recorded in the manifest."""

    n_features: int = HASH_FEATURES  # hashed columns per block (words, chars)
    epochs: int = 5
    seed: int = 0
    max_calibration_rows: int = 200_000  # per label: enough for two Platt parameters and the thresholds
    alpha: float | None = None  # SGD L2 strength; None: 1 / (C * rows), the penalty logistic regression's C implies


@dataclass
class _Counts:
    """What the counting pass learns: per label, rows per (source, value), fitting and calibration apart."""

    fitting: dict[str, Counter] = field(default_factory=dict)
    calibration: dict[str, Counter] = field(default_factory=dict)
    documents: int = 0
    df: list[np.ndarray] = field(default_factory=list)

    def add(self, rows: list[Example], calibration: bool) -> None:
        table = self.calibration if calibration else self.fitting
        for e in rows:
            for label, value in e.labels.items():
                table.setdefault(label, Counter())[(e.source, int(value))] += 1


def in_chunks(examples: list[Example], size: int, seed: int = 0) -> Chunks:
    """Serve rows already in memory as chunks, shuffled once (fixed seed) so no chunk holds one source only."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)

    def chunks() -> Iterator[list[Example]]:
        for start in range(0, len(order), size):
            yield [examples[i] for i in order[start : start + size]]

    return chunks


def site_chunks(engine, *, since=None, holdout_share: float = 0.0, size: int = SITE_CHUNK, source: str = "site") -> Chunks:
    """Serve the site's labelled decisions from the database, one chunk in memory at a time.

    Each pass runs `moderation.labels.stream_site_labels` again in its own session, oldest
    decision first. The newest ``holdout_share`` become dev rows, which training skips and
    evaluation uses: the row count for that cut comes from one extra pass, made once.
    """
    from sqlalchemy.orm import Session

    from moderation.labels import stream_site_labels

    def labelled() -> Iterator[list]:
        with Session(engine) as session:
            yield from stream_site_labels(session, since, size)

    total = sum(map(len, labelled())) if holdout_share else 0
    cut = total - int(round(total * holdout_share))

    def chunks() -> Iterator[list[Example]]:
        seen = 0
        for rows in labelled():
            yield [Example(row.text, dict(row.labels), source, source, "train" if seen + i < cut or not holdout_share else "dev") for i, row in enumerate(rows)]
            seen += len(rows)

    return chunks


def interleave(*sources: Chunks) -> Chunks:
    """One stream taking a chunk from each source in turn, so no stretch of an epoch sees one source only."""

    def chunks() -> Iterator[list[Example]]:
        streams = [iter(source()) for source in sources]
        while streams:
            for stream in list(streams):
                chunk = next(stream, None)
                if chunk is None:
                    streams.remove(stream)
                elif chunk:
                    yield chunk

    return chunks


def cell_weights(counts: Mapping[tuple[str, int], int], prior: float | None = None) -> dict[tuple[str, int], float]:
    """Per-row weight of each (source, value) cell: `training.train.source_weights` from counts alone.

    Within a source positives get ``prior`` of its mass (half when None), negatives the
    rest; a source's mass grows with the square root of its size; weights average 1.
    """
    positive = 0.5 if prior is None else prior
    size: Counter = Counter()
    for (source, _), n in counts.items():
        size[source] += n
    raw = {(s, y): math.sqrt(size[s]) * (positive if y == 1 else 1 - positive) / n for (s, y), n in counts.items() if n}
    total = sum(raw[cell] * counts[cell] for cell in raw)
    rows = sum(counts[cell] for cell in raw)
    return {cell: weight * rows / total for cell, weight in raw.items()}


def _train_rows(chunk: list[Example]) -> tuple[list[Example], list[Example]]:
    """Split a chunk's training rows into fitting and calibration rows, as `training.train.split` does."""
    fitting, calibration = [], []
    for e in chunk:
        if e.split == "train":
            (calibration if _in_calibration(e.text) else fitting).append(e)
    return fitting, calibration


class _Featurizer:
    """The hashed TF-IDF rows of a chunk, as ``features.transform`` gives them, counted by a cached `HashedCounter`."""

    def __init__(self, features: Pipeline, counter: HashedCounter):
        self.weightings = [block.named_steps["idf"] for _, block in features.named_steps["tfidf"].transformer_list]
        self.counter = counter

    def __call__(self, texts: list[str]) -> sparse.csr_matrix:
        blocks = self.counter.counts(normalize_all(texts))
        return sparse.hstack([weighting.transform(block) for weighting, block in zip(self.weightings, blocks)], format="csr")


def _count(chunks: Chunks, counter: HashedCounter) -> _Counts:
    """Pass 1: label counts for the weights, document frequencies of hashed columns for the IDF."""
    n_features = counter.vocabulary.n_features
    counts = _Counts(df=[np.zeros(n_features, dtype=np.int64), np.zeros(n_features, dtype=np.int64)])
    for chunk in chunks():
        fitting, calibration = _train_rows(chunk)
        counts.add(fitting, calibration=False)
        counts.add(calibration, calibration=True)
        if fitting:
            for df, block in zip(counts.df, counter.counts(normalize_all([e.text for e in fitting]))):
                df += np.bincount(block.indices, minlength=n_features)  # canonical rows: one entry per column
            counts.documents += len(fitting)
    return counts


def _label_batch(rows: list[Example], label: str, weights: dict, boost: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows that carry ``label``: their positions, 0/1 values and training weights."""
    index = [i for i, e in enumerate(rows) if label in e.labels]
    y = np.array([rows[i].labels[label] for i in index], dtype=np.int64)
    w = np.array([weights[(rows[i].source, int(rows[i].labels[label]))] * boost.get(rows[i].source, 1.0) for i in index])
    return np.array(index, dtype=np.int64), y, w


def _fit(chunks: Chunks, features: _Featurizer, labels: list[str], counts: _Counts, config: TrainingConfig, streaming: StreamingConfig) -> dict[str, SGDClassifier]:
    """Pass 2: ``epochs`` sweeps of `partial_fit` per label, each chunk shuffled (fixed seed)."""
    weights = {label: cell_weights(counts.fitting[label]) for label in labels}
    models = {}
    for label in labels:
        rows = sum(counts.fitting[label].values())
        alpha = streaming.alpha if streaming.alpha is not None else 1.0 / (config.C * rows)
        models[label] = SGDClassifier(loss="log_loss", alpha=alpha, average=True, random_state=streaming.seed)
    rng = np.random.default_rng(streaming.seed)
    for _ in range(streaming.epochs):
        for chunk in chunks():
            fitting, _ = _train_rows(chunk)
            if not fitting:
                continue
            fitting = [fitting[i] for i in rng.permutation(len(fitting))]
            X = features([e.text for e in fitting])
            for label in labels:
                index, y, w = _label_batch(fitting, label, weights[label], config.source_boost or {})
                if index.size:
                    models[label].partial_fit(X[index], y, classes=np.array([0, 1]), sample_weight=w)
    return models


def _calibrate(chunks: Chunks, features: _Featurizer, linear: LinearLabels, counts: _Counts, config: TrainingConfig, streaming: StreamingConfig) -> tuple[list, dict, dict]:
    """Pass 3: log-odds of a bounded sample of calibration rows; Platt scaling and thresholds from them."""
    labels = list(linear.labels)
    rate = {label: min(1.0, streaming.max_calibration_rows / max(1, sum(counts.calibration.get(label, Counter()).values()))) for label in labels}
    sample = {label: ([], [], []) for label in labels}  # log-odds, values, sources
    rng = np.random.default_rng(streaming.seed + 1)
    for chunk in chunks():
        _, calibration = _train_rows(chunk)
        if not calibration:
            continue
        z = linear.decision_function(features([e.text for e in calibration]))
        keep = rng.random((len(calibration), len(labels)))
        for column, label in enumerate(labels):
            for i, e in enumerate(calibration):
                if label in e.labels and keep[i, column] < rate[label]:
                    sample[label][0].append(z[i, column])
                    sample[label][1].append(int(e.labels[label]))
                    sample[label][2].append(e.source)
    calibrations, thresholds, facts = [], {}, {}
    for label in labels:
        z, y, sources = (np.array(part) for part in sample[label])
        a, b, chosen = 1.0, 0.0, {"review_at": 0.5, "reject_at": 1.0}
        if len(set(y.tolist())) == 2:
            cells = cell_weights(Counter(zip(sources.tolist(), y.tolist())), prior=config.prior(label))
            w = np.array([cells[(s, v)] for s, v in zip(sources.tolist(), y.tolist())])
            a, b = platt(z, y, w)
            p = 1 / (1 + np.exp(-(a * z + b)))
            chosen = choose_thresholds(p, y, w, reject_precision=config.reject_precision, max_missed=config.max_missed)
        calibrations.append((a, b))
        thresholds[label] = chosen
        facts[label] = {"calibration_rows": int(sum(counts.calibration.get(label, Counter()).values())), "calibration_sample": int(y.size),
                        "prior": config.prior(label), "platt": [round(a, 6), round(b, 6)]}
    return calibrations, thresholds, facts


def train_streaming(chunks: Chunks, config: TrainingConfig | None = None, streaming: StreamingConfig | None = None) -> tuple[ModerationModel, dict]:
    """Fit a hashed-feature model over a stream of chunks; rows with ``split == "dev"`` are skipped.

    :return: the model and a dict of per-label facts (rows, positives, SGD alpha, calibration).
    """
    config = config or TrainingConfig()
    streaming = streaming or StreamingConfig()
    counter = HashedCounter(streaming.n_features)
    counts = _count(chunks, counter)
    labels = [label for label in LABEL_HELP if label in counts.fitting and len({y for _, y in counts.fitting[label]}) == 2]
    if not labels:
        raise ValueError("no label has both positive and negative fitting rows in the stream")
    idf = tuple(idf_from_df(df, counts.documents) for df in counts.df)
    features = build_hashed_features(n_features=streaming.n_features, idf=idf)
    featurize = _Featurizer(features, counter)
    models = _fit(chunks, featurize, labels, counts, config, streaming)
    linear = LinearLabels(
        labels=tuple(labels),
        coef=np.vstack([models[label].coef_.ravel() for label in labels]).astype(np.float32),
        intercept=np.array([float(models[label].intercept_[0]) for label in labels], dtype=np.float64),
        calibration=np.ones((len(labels), 2)) * (1.0, 0.0),
    )
    calibrations, thresholds, calibration_facts = _calibrate(chunks, featurize, linear, counts, config, streaming)
    linear.calibration = np.array(calibrations, dtype=np.float64)
    facts = {
        label: {
            "rows": int(sum(counts.fitting[label].values())),
            "positives": int(sum(n for (_, y), n in counts.fitting[label].items() if y == 1)),
            "alpha": float(models[label].alpha),
            **calibration_facts[label],
        }
        for label in labels
    }
    return ModerationModel(pipeline=Pipeline([("features", features), ("labels", linear)]), thresholds=thresholds), facts
