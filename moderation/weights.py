"""What scoring reads from a model: vocabularies, IDF weights, label weights, calibration.

`FastScorer` and the batch path need these arrays, never the scikit-learn pipeline. A
bundle keeps them beside the pickle as plain NumPy arrays (``weights.npz``), so a
process that only scores (`moderation score --input`) loads them without unpickling
anything and without importing scikit-learn, which was a third of its start-up.

This module imports neither scikit-learn nor the rest of the model code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from moderation.features import HashedVocabulary

if TYPE_CHECKING:
    from moderation.pieces import PieceVectors

_BLOCKS = ("word", "char")
_SEPARATOR = "\n"  # never inside an n-gram: the analyzers split normalised text on white space


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Map log-odds to probabilities without overflow warnings."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


def _vocabulary_arrays(name: str, vocabulary: dict[str, int] | HashedVocabulary) -> dict[str, np.ndarray]:
    """A fitted vocabulary as its terms (one UTF-8 blob) and their columns; a hashed one as its width."""
    if isinstance(vocabulary, HashedVocabulary):
        return {f"{name}_hashed": np.array(vocabulary.n_features)}
    if any(_SEPARATOR in term for term in vocabulary):
        raise ValueError(f"a {name} n-gram contains {_SEPARATOR!r}; the analyzers never make one")
    terms = _SEPARATOR.join(vocabulary).encode("utf-8")
    return {f"{name}_terms": np.frombuffer(terms, dtype=np.uint8), f"{name}_columns": np.fromiter(vocabulary.values(), dtype=np.int64, count=len(vocabulary))}


def _vocabulary(name: str, arrays: Mapping[str, np.ndarray]) -> dict[str, int] | HashedVocabulary:
    if f"{name}_hashed" in arrays:
        return HashedVocabulary(int(arrays[f"{name}_hashed"]))
    columns = arrays[f"{name}_columns"].tolist()
    terms = arrays[f"{name}_terms"].tobytes().decode("utf-8").split(_SEPARATOR) if columns else []
    return dict(zip(terms, columns))


@dataclass(frozen=True)
class ScoringWeights:
    """A model's scoring arrays. ``coef`` is (n_labels, n_word + n_char features [+ piece
    dimensions, when the model has ``pieces``]); Platt ``calibration`` is (n_labels, 2),
    p = sigmoid(a * z + b)."""

    labels: list[str]
    word_vocabulary: dict[str, int] | HashedVocabulary
    word_idf: np.ndarray
    char_vocabulary: dict[str, int] | HashedVocabulary
    char_idf: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    calibration: np.ndarray
    pieces: "PieceVectors | None" = None

    @classmethod
    def from_pipeline(cls, pipeline) -> "ScoringWeights":
        """Read the arrays out of a fitted pipeline (features, then `LinearLabels`)."""
        from moderation.features import block_lookups, piece_block

        linear = pipeline[-1]
        features = pipeline.named_steps["features"]
        (word_vocabulary, word_idf), (char_vocabulary, char_idf) = block_lookups(features)
        return cls(list(linear.labels), word_vocabulary, np.asarray(word_idf), char_vocabulary, np.asarray(char_idf),
                   np.asarray(linear.coef), np.asarray(linear.intercept), np.asarray(linear.calibration), piece_block(features))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez``: loading them back needs no pickle."""
        arrays = {"labels": np.array(self.labels, dtype=str), "coef": self.coef, "intercept": self.intercept,
                  "calibration": self.calibration, "word_idf": self.word_idf, "char_idf": self.char_idf}
        for name in _BLOCKS:
            arrays.update(_vocabulary_arrays(name, getattr(self, f"{name}_vocabulary")))
        if self.pieces is not None:
            arrays.update(pieces_table=self.pieces.table, pieces_tokenizer=np.frombuffer(self.pieces.tokenizer_json.encode("utf-8"), dtype=np.uint8),
                          pieces_unknown_id=np.array(-1 if self.pieces.unknown_id is None else self.pieces.unknown_id))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> "ScoringWeights":
        word_vocabulary, char_vocabulary = (_vocabulary(name, arrays) for name in _BLOCKS)
        pieces = None
        if "pieces_table" in arrays:
            from moderation.pieces import PieceVectors

            unknown = int(arrays["pieces_unknown_id"])
            pieces = PieceVectors(arrays["pieces_table"], arrays["pieces_tokenizer"].tobytes().decode("utf-8"), None if unknown < 0 else unknown)
        return cls(arrays["labels"].tolist(), word_vocabulary, arrays["word_idf"], char_vocabulary, arrays["char_idf"],
                   arrays["coef"], arrays["intercept"], arrays["calibration"], pieces)


@dataclass
class ScoringModel:
    """A bundle loaded for scoring only: its arrays, thresholds and version, no pipeline."""

    weights: ScoringWeights
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    version: str = "unversioned"

    @property
    def labels(self) -> list[str]:
        return self.weights.labels
