"""Score one comment in well under a millisecond, and say which words drove the score.

A scikit-learn pipeline call costs milliseconds of validation and sparse-matrix
bookkeeping for a single row. `FastScorer` reads the fitted vocabularies, IDF weights and
label weights out of the pipeline once, caches each word's feature indices (words repeat
endlessly across comments), and scores with a few small NumPy operations. It reproduces
`ModerationModel.predict_proba` to float precision (the tests check).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from moderation.features import char_ngrams_of_word, words
from moderation.model import ModerationModel, sigmoid
from moderation.text import normalize, word_spans

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

    def share(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (columns present in this comment, each occurrence's share of its value)."""
        if not columns.size or not self.columns.size:
            return _EMPTY, np.zeros(0)
        where = np.searchsorted(self.columns, columns).clip(max=self.columns.size - 1)
        found = self.columns[where] == columns
        where = where[found]
        return columns[found], self.values[where] / self.counts[where]


@dataclass(frozen=True)
class _Token:
    """What one white-space token contributes: its words, their columns, its char columns."""

    words: tuple[str, ...]
    word_columns: np.ndarray
    char_columns: np.ndarray


class FastScorer:
    """Single-comment scoring and explanations for a `ModerationModel`."""

    def __init__(self, model: ModerationModel, cache_size: int = 1 << 17):
        self.labels = model.labels
        linear = model.pipeline[-1]
        union = model.pipeline.named_steps["features"].named_steps["tfidf"]
        word_vectorizer, char_vectorizer = (dict(union.transformer_list)[name] for name in ("words", "chars"))
        coef = np.asarray(linear.coef, dtype=np.float64)
        n_words = len(word_vectorizer.vocabulary_)
        self.word_vocabulary = word_vectorizer.vocabulary_
        self.char_vocabulary = char_vectorizer.vocabulary_
        self.word_idf = word_vectorizer.idf_.astype(np.float64)
        self.char_idf = char_vectorizer.idf_.astype(np.float64)
        self.word_weights = np.ascontiguousarray(coef[:, :n_words].T)  # (n_word_features, n_labels)
        self.char_weights = np.ascontiguousarray(coef[:, n_words:].T)
        self.intercept = np.asarray(linear.intercept, dtype=np.float64)
        self.calibration = np.asarray(linear.calibration, dtype=np.float64)
        self._token = functools.lru_cache(maxsize=cache_size)(self._token_uncached)
        self._span_normalized = functools.lru_cache(maxsize=cache_size)(normalize)

    def _columns(self, grams, vocabulary) -> np.ndarray:
        columns = [vocabulary[g] for g in grams if g in vocabulary]
        return np.array(columns, dtype=np.int64) if columns else _EMPTY

    def _token_uncached(self, token: str) -> _Token:
        """Look up one token's word and char columns once; words repeat endlessly."""
        token_words = tuple(words(token))
        return _Token(token_words, self._columns(token_words, self.word_vocabulary), self._columns(char_ngrams_of_word(token), self.char_vocabulary))

    def _bigram_columns(self, sequence: list[str]) -> np.ndarray:
        return self._columns((f"{a} {b}" for a, b in zip(sequence, sequence[1:])), self.word_vocabulary)

    def _vectors(self, normalized: str) -> tuple[_Block, _Block]:
        tokens = [self._token(t) for t in normalized.split()]
        sequence = [w for token in tokens for w in token.words]
        word_columns = np.concatenate([t.word_columns for t in tokens] + [self._bigram_columns(sequence)])
        char_columns = np.concatenate([t.char_columns for t in tokens]) if tokens else _EMPTY
        return _Block.build(word_columns, self.word_idf), _Block.build(char_columns, self.char_idf)

    def _logits(self, word_block: _Block, char_block: _Block) -> np.ndarray:
        return (
            self.intercept
            + word_block.values @ self.word_weights[word_block.columns]
            + char_block.values @ self.char_weights[char_block.columns]
        )

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Apply each label's Platt calibration to raw log-odds."""
        return sigmoid(logits * self.calibration[:, 0] + self.calibration[:, 1])

    def score(self, text: str) -> dict[str, float]:
        """Return ``{label: calibrated probability}`` for one comment."""
        logits = self._logits(*self._vectors(normalize(text)))
        return dict(zip(self.labels, self.probabilities(logits).tolist()))

    def score_and_explain(self, text: str, top: int = 5) -> tuple[dict[str, float], list[dict]]:
        """Score one comment and return the spans that pushed each label up the most.

        A span's weight is its share of the label's log-odds: for every feature the span
        produces, the feature's TF-IDF value (split between its occurrences) times the
        label's coefficient. Word bigrams are split evenly between their two words.

        :return: scores, and ``[{"text", "start", "end", "label", "weight"}]`` strongest
            first, at most ``top`` per label, positive contributions only.
        """
        word_block, char_block = self._vectors(normalize(text))
        scores = dict(zip(self.labels, self.probabilities(self._logits(word_block, char_block)).tolist()))
        spans = word_spans(text)
        contribution = np.zeros((len(spans), len(self.labels)))
        owners: list[int] = []  # the span of each word, in order
        sequence: list[str] = []
        for i, span in enumerate(spans):
            for token in map(self._token, self._span_normalized(span.text).split()):
                for block, weights, columns in ((char_block, self.char_weights, token.char_columns), (word_block, self.word_weights, token.word_columns)):
                    present, share = block.share(columns)
                    contribution[i] += share @ weights[present]
                owners.extend([i] * len(token.words))
                sequence.extend(token.words)
        for k, (a, b) in enumerate(zip(sequence, sequence[1:])):
            present, share = word_block.share(self._columns([f"{a} {b}"], self.word_vocabulary))
            if present.size:
                half = 0.5 * share[0] * self.word_weights[present[0]]
                contribution[owners[k]] += half
                contribution[owners[k + 1]] += half
        terms = []
        for column, label in enumerate(self.labels):
            for i in np.argsort(-contribution[:, column], kind="stable")[:top]:
                weight = float(contribution[i, column])
                if weight <= 0:
                    break
                span = spans[i]
                terms.append({"text": span.text, "start": span.start, "end": span.end, "label": label, "weight": round(weight, 4)})
        return scores, sorted(terms, key=lambda term: -term["weight"])
