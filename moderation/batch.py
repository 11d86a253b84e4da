"""Score and explain many comments at once: what `moderation score --input` runs.

`FastScorer` serves one comment with a few small NumPy operations, whose fixed cost
per call would dominate a file of thousands. Here nothing is done per comment in NumPy:
n-grams are looked up in a few C-level passes (each distinct token and span once per
batch), and TF-IDF, log-odds and span contributions are whole-batch sparse operations.
Each of those is row-local, so a comment gets the same numbers in any batch; they
equal `FastScorer.score` and `FastScorer.score_and_explain` (the tests check).
"""

from __future__ import annotations

import functools
import itertools
import operator
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from moderation.features import pack_ngram, packed_char_ngrams, words
from moderation.text import Span, normalize, word_spans

if TYPE_CHECKING:
    from moderation.scorer import FastScorer


def _distinct(items: list[str]) -> tuple[list[str], np.ndarray]:
    """Return the distinct items (first-seen order) and each item's index among them, at C speed."""
    distinct = list(dict.fromkeys(items))
    index = dict(zip(distinct, range(len(distinct))))
    return distinct, np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))


def _lookup(vocabulary: dict[str, int], grams, count: int) -> np.ndarray:
    """Return the column of each n-gram (-1 when not in the vocabulary), at C speed."""
    return np.fromiter(map(vocabulary.get, grams, itertools.repeat(-1)), dtype=np.int64, count=count)


def _indptr(rows: list) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)))])


def _entry_rows(matrix: sparse.csr_matrix) -> np.ndarray:
    """Return the row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _csr(rows: np.ndarray, columns: np.ndarray, values: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """Build a CSR matrix in canonical form: duplicates summed, columns sorted in each row."""
    matrix = sparse.csr_matrix((values, (rows, columns)), shape=shape)
    matrix.sum_duplicates()
    return matrix


def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear TF-IDF with L2-normalised rows, as the fitted vectorizers compute it."""
    values = (1.0 + np.log(counts.data)) * idf[counts.indices]
    rows = _entry_rows(counts)
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=counts.shape[0]))
    values /= np.where(norms > 0, norms, 1.0)[rows]
    return sparse.csr_matrix((values, counts.indices, counts.indptr), shape=counts.shape)


class BatchScorer:
    """Batch scoring and explanations with the weights a `FastScorer` read from the model."""

    def __init__(self, scorer: FastScorer, cache_size: int = 1 << 17):
        self.scorer = scorer
        if not scorer.hashed:
            # The char vocabulary as sorted `pack_ngram` keys: one np.searchsorted per batch.
            vocabulary = scorer.char_vocabulary
            keys = np.fromiter(map(pack_ngram, vocabulary), dtype=np.int64, count=len(vocabulary))
            order = np.argsort(keys)
            self.char_keys = keys[order]
            self.char_key_columns = np.fromiter(vocabulary.values(), dtype=np.int64, count=keys.size)[order]
        self._span_parts = functools.lru_cache(maxsize=cache_size)(self._span_parts_uncached)

    @staticmethod
    def _span_parts_uncached(span: str) -> tuple[list[str], list[str]]:
        """Return the tokens and words of one span's normalised text (cached: spans repeat)."""
        normalized = normalize(span)
        return normalized.split(), words(normalized)

    def _word_counts(self, sequences: list[list[str]], groups: np.ndarray) -> sparse.csr_matrix:
        """Word unigram and bigram counts (rows x word features) of many rows of words.

        A bigram joins the last word of a row to the first of the next when both rows
        belong to the same group (the spans of one comment); half of it goes to each row.
        """
        flat = list(itertools.chain.from_iterable(sequences))
        rows = np.repeat(np.arange(len(sequences)), np.diff(_indptr(sequences)))
        vocabulary = self.scorer.word_vocabulary
        parts = [(rows, _lookup(vocabulary, flat, len(flat)), np.ones(len(flat)))]
        if len(flat) > 1:
            columns = _lookup(vocabulary, map("{} {}".format, flat, itertools.islice(flat, 1, None)), len(flat) - 1)
            inside = groups[rows[:-1]] == groups[rows[1:]]
            half = np.full(int(inside.sum()), 0.5)
            parts += [(rows[:-1][inside], columns[inside], half), (rows[1:][inside], columns[inside], half)]
        rows, columns, amounts = (np.concatenate(part) for part in zip(*parts))
        known = columns >= 0
        return _csr(rows[known], columns[known], amounts[known], (len(sequences), self.scorer.word_idf.size))

    def _known_char_columns(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (token index, column) of every char n-gram of ``tokens`` found in the fitted vocabulary."""
        owner, keys = packed_char_ngrams(tokens)
        where = np.searchsorted(self.char_keys, keys).clip(max=max(self.char_keys.size - 1, 0))
        known = self.char_keys[where] == keys if self.char_keys.size else np.zeros(keys.size, dtype=bool)
        return owner[known], self.char_key_columns[where[known]]

    def _hashed_char_columns(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (token index, column) of every char n-gram of ``tokens`` under the hashing trick.

        Every n-gram has a column; each token's columns come from the scorer's token cache.
        """
        columns = [self.scorer._token(token).char_columns for token in tokens]
        owner = np.repeat(np.arange(len(tokens)), [c.size for c in columns])
        return owner, np.concatenate(columns) if columns else np.zeros(0, dtype=np.int64)

    def _char_counts(self, *row_sets: list[list[str]]) -> list[sparse.csr_matrix]:
        """Char n-gram counts (rows x char features) for each list of token rows given.

        Each distinct token's n-grams are computed and looked up once for all rows.
        """
        indptrs = [_indptr(rows) for rows in row_sets]
        distinct, ids = _distinct(list(itertools.chain.from_iterable(itertools.chain.from_iterable(row_sets))))
        owner, columns = (self._hashed_char_columns if self.scorer.hashed else self._known_char_columns)(distinct)
        table = _csr(owner, columns, np.ones(owner.size), (len(distinct), self.scorer.char_idf.size))
        counts, start = [], 0
        for indptr in indptrs:
            part = ids[start : start + indptr[-1]]
            start += indptr[-1]
            matrix = sparse.csr_matrix((np.ones(part.size), part, indptr), shape=(indptr.size - 1, len(distinct))) @ table
            matrix.sum_duplicates()
            counts.append(sparse.csr_matrix(matrix))
        return counts

    def _features(self, normalized: list[str], *span_tokens: list[list[str]]):
        """Return word and char counts and TF-IDF matrices of normalised comments, and the
        char counts of any further token rows (looked up together with the comments')."""
        token_rows = [text.split() for text in normalized]
        char_counts, *more = self._char_counts(token_rows, *span_tokens)
        word_counts = self._word_counts(list(map(words, normalized)), np.arange(len(normalized)))
        scorer = self.scorer
        return word_counts, char_counts, _tfidf(word_counts, scorer.word_idf), _tfidf(char_counts, scorer.char_idf), more

    def _logits(self, word_x: sparse.csr_matrix, char_x: sparse.csr_matrix) -> np.ndarray:
        scorer = self.scorer
        return scorer.intercept + np.asarray(word_x @ scorer.word_weights) + np.asarray(char_x @ scorer.char_weights)

    def score(self, texts: list[str]) -> np.ndarray:
        """Return calibrated probabilities, shape (len(texts), n_labels)."""
        _, _, word_x, char_x, _ = self._features([normalize(text) for text in texts])
        return self.scorer.probabilities(self._logits(word_x, char_x))

    @staticmethod
    def _contributions(occurrences: sparse.csr_matrix, owner: np.ndarray, counts: sparse.csr_matrix, tfidf: sparse.csr_matrix, weights: np.ndarray) -> np.ndarray:
        """Return each span's share of each label's log-odds from one block (spans x labels).

        ``occurrences`` counts each feature in each span. An occurrence gets the feature's
        TF-IDF value in the span's comment (row ``owner[span]``) divided by the feature's
        count there, 0 when the comment lacks it, times the label's weight.
        """
        n_features = counts.shape[1]
        keys = _entry_rows(counts) * n_features + counts.indices  # sorted: the matrix is canonical
        wanted = owner[_entry_rows(occurrences)] * n_features + occurrences.indices
        share = np.zeros(wanted.size)
        if keys.size:
            where = np.searchsorted(keys, wanted).clip(max=keys.size - 1)
            found = keys[where] == wanted
            share[found] = tfidf.data[where[found]] / counts.data[where[found]]
        shares = sparse.csr_matrix((share * occurrences.data, occurrences.indices, occurrences.indptr), shape=occurrences.shape)
        return np.asarray(shares @ weights)

    def contributions(self, texts: list[str], normalized: list[str]) -> tuple[np.ndarray, list[Span], np.ndarray, np.ndarray]:
        """Return log-odds (comments x labels), all spans, each span's comment, and each
        span's share of each label's log-odds (spans x labels)."""
        per_text = list(map(word_spans, texts))
        spans = list(itertools.chain.from_iterable(per_text))
        owner = np.repeat(np.arange(len(texts)), list(map(len, per_text)))
        distinct, span_ids = _distinct(list(map(operator.attrgetter("text"), spans)))
        parts = list(map(self._span_parts, distinct))
        word_counts, char_counts, word_x, char_x, (distinct_chars,) = self._features(normalized, [tokens for tokens, _ in parts])
        span_words = [parts[i][1] for i in span_ids.tolist()]
        scorer = self.scorer
        contribution = self._contributions(self._word_counts(span_words, owner), owner, word_counts, word_x, scorer.word_weights)
        contribution += self._contributions(distinct_chars[span_ids], owner, char_counts, char_x, scorer.char_weights)
        return self._logits(word_x, char_x), spans, owner, contribution

    def _top_terms(self, contribution: np.ndarray, owner: np.ndarray, spans: list[Span], n_comments: int, top: int) -> list[list[dict]]:
        """Pick each comment's ``top`` spans per label with positive weight, strongest first."""
        labels = self.scorer.labels
        n_labels = len(labels)
        flat = contribution.ravel()
        candidate = np.flatnonzero(flat > 0)  # span-major: stable sorts keep the earlier span first on ties
        span, label, weight = candidate // n_labels, candidate % n_labels, flat[candidate]
        comment = owner[span]
        group = comment * n_labels + label
        order = np.argsort(-weight, kind="stable")
        order = order[np.argsort(group[order], kind="stable")]
        group = group[order]
        first = np.concatenate([[True], group[1:] != group[:-1]]) if group.size else np.zeros(0, dtype=bool)
        position = np.arange(group.size)
        chosen = order[position - np.maximum.accumulate(np.where(first, position, 0)) < top]
        terms: list[list[dict]] = [[] for _ in range(n_comments)]
        for c, s, l, w in zip(comment[chosen].tolist(), span[chosen].tolist(), label[chosen].tolist(), weight[chosen].tolist()):
            piece = spans[s]
            terms[c].append({"text": piece.text, "start": piece.start, "end": piece.end, "label": labels[l], "weight": round(w, 4)})
        return [sorted(found, key=lambda term: -term["weight"]) for found in terms]

    def explain(self, texts: list[str], top: int = 5, normalized: list[str] | None = None) -> tuple[np.ndarray, list[list[dict]]]:
        """Return probabilities (len(texts), n_labels) and each comment's terms, as
        `FastScorer.score_and_explain` gives them for one comment."""
        normalized = [normalize(text) for text in texts] if normalized is None else normalized
        logits, spans, owner, contribution = self.contributions(texts, normalized)
        return self.scorer.probabilities(logits), self._top_terms(contribution, owner, spans, len(texts), top)
