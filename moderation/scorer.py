"""Score one comment in well under a millisecond, and say which words drove the score.

A scikit-learn pipeline call costs milliseconds of validation and sparse-matrix
bookkeeping for a single row. `FastScorer` takes the fitted vocabularies, IDF weights and
label weights (`moderation.weights`) once, caches each word's feature indices (words repeat
endlessly across comments), and scores with a few small NumPy operations. It reproduces
`ModerationModel.predict_proba` to float precision (the tests check). Many comments at
once go through `moderation.batch` instead, which gives the same numbers much faster.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from moderation.batch import BatchScorer
from moderation.features import HashedVocabulary, cache_short, char_ngrams_of_word, words
from moderation.text import Span, normalize, word_spans
from moderation.weights import sigmoid

if TYPE_CHECKING:
    from moderation.model import ModerationModel
    from moderation.weights import ScoringModel

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass
class _Block:
    """A comment's features in one vectorizer's columns: sorted unique columns, values, counts."""

    columns: np.ndarray
    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def build(cls, columns: np.ndarray, idf: np.ndarray) -> "_Block":
        columns, counts = np.unique(columns, return_counts=True)
        if not columns.size:
            return cls(columns, np.zeros(0), counts)
        values = (1.0 + np.log(counts)) * idf[columns]  # sublinear TF-IDF, as the vectorizer does
        return cls(columns, values / np.sqrt(values @ values), counts)

    def share(self, columns: np.ndarray) -> np.ndarray:
        """Return each occurrence's share of its column's value (0 where this comment lacks it)."""
        if not columns.size or not self.columns.size:
            return np.zeros(columns.size)
        where = np.searchsorted(self.columns, columns).clip(max=self.columns.size - 1)
        found = self.columns[where] == columns
        return np.where(found, self.values[where] / self.counts[where], 0.0)


@dataclass(frozen=True)
class _Token:
    """What one white-space token contributes: its words, their columns, its char columns, its
    pieces and their pull on each label (before the comment's piece-sum length scales it)."""

    words: tuple[str, ...]
    word_columns: np.ndarray
    char_columns: np.ndarray
    pieces: np.ndarray
    pull: np.ndarray


@dataclass
class _PieceSum:
    """A comment's pieces, their pull on each label and the length of their sum (its piece vector is the sum over that)."""

    ids: np.ndarray
    pull: np.ndarray
    norm: float

    def scale(self) -> float:
        return 1.0 / self.norm if self.norm > 0 else 0.0


def _piece_logits(table: np.ndarray, weights: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """``table @ weights.T`` in float64, a few thousand rows at a time (a whole float64 copy of the table would be 60 MB)."""
    return np.vstack([table[start : start + chunk].astype(np.float64) @ weights.T for start in range(0, table.shape[0], chunk)])


class FastScorer:
    """Single-comment scoring and explanations for a `ModerationModel`."""

    def __init__(self, model: ModerationModel | ScoringModel, cache_size: int = 1 << 17):
        weights = model.weights
        self.labels = list(weights.labels)
        self.word_vocabulary, self.char_vocabulary = weights.word_vocabulary, weights.char_vocabulary
        self.hashed = isinstance(self.char_vocabulary, HashedVocabulary)  # hashed n-grams: no vocabulary to search
        coef = np.asarray(weights.coef, dtype=np.float64)
        n_words, n_ngrams = weights.word_idf.size, weights.word_idf.size + weights.char_idf.size
        self.word_idf = weights.word_idf.astype(np.float64)
        self.char_idf = weights.char_idf.astype(np.float64)
        self.word_weights = np.ascontiguousarray(coef[:, :n_words].T)  # (n_word_features, n_labels)
        self.char_weights = np.ascontiguousarray(coef[:, n_words:n_ngrams].T)
        self.pieces = weights.pieces
        # Each piece's pull on each label's log-odds, before the comment's length scales it: (n_pieces, n_labels).
        self.piece_logits = _piece_logits(self.pieces.table, coef[:, n_ngrams:]) if self.pieces is not None else np.zeros((0, len(self.labels)))
        self.intercept = np.asarray(weights.intercept, dtype=np.float64)
        self.calibration = np.asarray(weights.calibration, dtype=np.float64)
        self._token = cache_short(self._token_uncached, cache_size)
        self._span_features = cache_short(lambda span: self._joined(normalize(span)), cache_size)  # spans repeat too

    @staticmethod
    def _columns(grams, vocabulary) -> np.ndarray:
        get = vocabulary.get
        columns = [c for c in map(get, grams) if c is not None]
        return np.array(columns, dtype=np.int64) if columns else _EMPTY

    def _token_uncached(self, token: str) -> _Token:
        """Look up one token's word and char columns once; words repeat endlessly."""
        token_words = tuple(words(token))
        pieces = self.pieces.pieces_of_token(token) if self.pieces is not None else _EMPTY
        return _Token(token_words, self._columns(token_words, self.word_vocabulary), self._columns(char_ngrams_of_word(token), self.char_vocabulary),
                      pieces, self.piece_logits[pieces].sum(axis=0))

    def _bigram_columns(self, sequence: tuple[str, ...]) -> np.ndarray:
        return self._columns((f"{a} {b}" for a, b in zip(sequence, sequence[1:])), self.word_vocabulary)

    def _joined(self, normalized: str) -> _Token:
        """The words, word columns and char columns of every token of normalised text, in order."""
        tokens = [self._token(t) for t in normalized.split()]
        if len(tokens) == 1:
            return tokens[0]
        if not tokens:
            return _Token((), _EMPTY, _EMPTY, _EMPTY, np.zeros(len(self.labels)))
        pieces = np.concatenate([t.pieces for t in tokens])
        return _Token(tuple(w for t in tokens for w in t.words), np.concatenate([t.word_columns for t in tokens]),
                      np.concatenate([t.char_columns for t in tokens]), pieces, self.piece_logits[pieces].sum(axis=0))

    def _vectors(self, normalized: str) -> tuple[_Block, _Block, _PieceSum]:
        """One comment's word and char TF-IDF blocks and its piece sum."""
        joined = self._joined(normalized)
        word_columns = np.concatenate([joined.word_columns, self._bigram_columns(joined.words)])
        pieces = _PieceSum(joined.pieces, joined.pull, float(np.linalg.norm(self.pieces.sums(joined.pieces))) if joined.pieces.size else 0.0)
        return _Block.build(word_columns, self.word_idf), _Block.build(joined.char_columns, self.char_idf), pieces

    def _logits(self, word_block: _Block, char_block: _Block, pieces: _PieceSum) -> np.ndarray:
        return (
            self.intercept
            + word_block.values @ self.word_weights[word_block.columns]
            + char_block.values @ self.char_weights[char_block.columns]
            + pieces.pull * pieces.scale()
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Apply each label's Platt calibration to raw log-odds."""
        return sigmoid(logits * self.calibration[:, 0] + self.calibration[:, 1])

    def score(self, text: str) -> dict[str, float]:
        """Return ``{label: calibrated probability}`` for one comment."""
        logits = self._logits(*self._vectors(normalize(text)))
        return dict(zip(self.labels, self.probabilities(logits).tolist()))

    def _span_contributions(self, spans: list[Span], word_block: _Block, char_block: _Block, pieces: _PieceSum) -> np.ndarray:
        """Return each span's share of each label's log-odds, shape (n_spans, n_labels).

        Every span's feature columns are gathered with the span that owns them and
        attributed in one vectorised pass. A bigram's share goes half to each of its two
        words (all of it to a span holding both). A piece's share is its row's pull,
        scaled by the comment's piece-sum length (`_piece_contributions`).
        """
        n_spans = len(spans)
        features = [self._span_features(span.text) for span in spans]
        owner = np.arange(n_spans)
        word_cols = np.concatenate([f.word_columns for f in features]) if features else _EMPTY
        word_owner = np.repeat(owner, [f.word_columns.size for f in features])
        char_cols = np.concatenate([f.char_columns for f in features]) if features else _EMPTY
        char_owner = np.repeat(owner, [f.char_columns.size for f in features])
        sequence = [(i, w) for i, f in enumerate(features) for w in f.words]
        word_share = word_block.share(word_cols)
        half = [(column, i, j) for (i, a), (j, b) in zip(sequence, sequence[1:])
                if (column := self.word_vocabulary.get(f"{a} {b}")) is not None]
        if half:
            bigrams = np.array([column for column, _, _ in half], dtype=np.int64)
            word_cols = np.concatenate([word_cols, bigrams, bigrams])
            word_owner = np.concatenate([word_owner, [i for _, i, _ in half], [j for _, _, j in half]])
            word_share = np.concatenate([word_share, np.tile(0.5 * word_block.share(bigrams), 2)])
        values = np.hstack([self.word_weights[word_cols].T * word_share, self.char_weights[char_cols].T * char_block.share(char_cols)])
        owners = np.concatenate([word_owner, char_owner]).astype(np.int64)
        # Sum each label's occurrence shares per span (bincount is many times faster than np.add.at).
        contribution = np.column_stack([np.bincount(owners, weights=row, minlength=n_spans) for row in values]).astype(np.float64)
        if self.pieces is not None and features:
            contribution += self._piece_contributions(features, pieces)
        return contribution

    def _piece_contributions(self, features: list[_Token], pieces: _PieceSum) -> np.ndarray:
        """Each span's share of the piece block's log-odds (n_spans x n_labels).

        A span claims the pieces of its own normalised text. Usually the spans' claims are
        exactly the comment's pieces, and each span gets its cached pull. Where they differ
        (letters spaced out or joined by the normaliser, a shouting marker that every
        capitalised word claims), each claim of a piece gets the comment's count of it over
        the number of claims: the comment's pieces are shared out, never invented, and a
        piece no span claims stays unattributed.
        """
        claimed = np.concatenate([f.pieces for f in features])
        if np.array_equal(claimed, pieces.ids):
            return np.array([f.pull for f in features]) * pieces.scale()
        owner = np.repeat(np.arange(len(features)), [f.pieces.size for f in features])
        distinct, inverse, claims = np.unique(claimed, return_inverse=True, return_counts=True)
        comment = np.sort(pieces.ids)
        present = np.searchsorted(comment, distinct, side="right") - np.searchsorted(comment, distinct, side="left")
        weight = (present / claims)[inverse.reshape(-1)] * pieces.scale()
        pulls = self.piece_logits[claimed].T * weight
        return np.column_stack([np.bincount(owner, weights=row, minlength=len(features)) for row in pulls]) if claimed.size else np.zeros((len(features), len(self.labels)))

    @functools.cached_property
    def batch(self) -> BatchScorer:
        """The batch path, built on first use (a server scoring one comment at a time never needs it)."""
        return BatchScorer(self)

    def score_batch(self, texts: list[str]) -> np.ndarray:
        """Score many comments at once: calibrated probabilities, shape (len(texts), n_labels)."""
        return self.batch.score(list(texts))

    def explain_batch(self, texts: list[str], top: int = 5, normalized: list[str] | None = None) -> tuple[np.ndarray, list[list[dict]]]:
        """Score and explain many comments at once: probabilities, shape (len(texts), n_labels),
        and each comment's terms exactly as `score_and_explain` gives them."""
        return self.batch.explain(list(texts), top, normalized)

    def score_and_explain(self, text: str, top: int = 5, normalized: str | None = None) -> tuple[dict[str, float], list[dict]]:
        """Score one comment and return the spans that pushed each label up the most.

        A span's weight is its share of the label's log-odds: for every feature the span
        produces, the feature's TF-IDF value (split between its occurrences) times the
        label's coefficient. Word bigrams are split evenly between their two words.

        :param normalized: ``normalize(text)`` when the caller has it already.
        :return: scores, and ``[{"text", "start", "end", "label", "weight"}]`` strongest
            first, at most ``top`` per label, positive contributions only.
        """
        blocks = self._vectors(normalize(text) if normalized is None else normalized)
        scores = dict(zip(self.labels, self.probabilities(self._logits(*blocks)).tolist()))
        spans = word_spans(text)
        contribution = self._span_contributions(spans, *blocks)
        terms = []
        for column, label in enumerate(self.labels):
            for i in np.argsort(-contribution[:, column], kind="stable")[:top]:
                weight = round(float(contribution[i, column]), 4)
                if weight <= 0:  # a weight that rounds to nothing explains nothing
                    break
                span = spans[i]
                terms.append({"text": span.text, "start": span.start, "end": span.end, "label": label, "weight": weight})
        return scores, sorted(terms, key=lambda term: -term["weight"])
