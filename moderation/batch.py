"""Score and explain many comments at once: what `moderation score --input` runs.

`FastScorer` serves one comment with a few small NumPy operations, whose fixed cost
per call would dominate a file of thousands. Here nothing is done per comment in NumPy,
and little per word in Python: each distinct word, word pair, token and span of a batch
is looked up once, in a few C-level passes, and span offsets, TF-IDF, log-odds, span
contributions and the choice of top terms are whole-batch array operations. Each of
those is row-local, so a comment gets the same numbers in any batch; they equal
`FastScorer.score` and `FastScorer.score_and_explain` (the tests check).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy import sparse

from moderation.features import cache_short, pack_ngram, packed_char_ngrams, words
from moderation.text import may_merge_spans, normalize, word_spans

if TYPE_CHECKING:
    from moderation.scorer import FastScorer

# Which ASCII code points `str.split` splits on; other code points are asked once per batch.
_ASCII_SPACE = np.array([chr(code).isspace() for code in range(128)])


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


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(start, start + length)`` of every pair, without a Python loop."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


def _entry_rows(matrix: sparse.csr_matrix) -> np.ndarray:
    """Return the row of every stored entry of a CSR matrix."""
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _positions(matrix: sparse.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each (row, column) is stored in a canonical CSR matrix: positions in ``data``, and whether it is stored at all."""
    keys = _entry_rows(matrix) * matrix.shape[1] + matrix.indices  # sorted: the matrix is canonical
    wanted = rows * matrix.shape[1] + columns
    if not keys.size:
        return np.zeros(wanted.size, dtype=np.int64), np.zeros(wanted.size, dtype=bool)
    where = np.searchsorted(keys, wanted).clip(max=keys.size - 1)
    return where, keys[where] == wanted


def _values_at(matrix: sparse.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The stored value at each (row, column) of a canonical CSR matrix, 0 where nothing is stored."""
    where, found = _positions(matrix, rows, columns)
    return np.where(found, matrix.data[where] if matrix.data.size else 0.0, 0.0)


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


def _by_key(keys: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Reorder ``order`` stably by ``keys[order]`` (non-negative integers).

    Keys below 2**16 (comments and labels of a usual batch) are sorted as uint16, which
    NumPy radix-sorts: five times faster than a merge sort of int64.
    """
    keys = keys[order]
    narrow = keys.astype(np.uint16) if keys.size and keys.max() < 1 << 16 else keys
    return order[np.argsort(narrow, kind="stable")]


def _rounded(values: np.ndarray, digits: int) -> list[float]:
    """``round(value, digits)`` of each value exactly as Python gives it, without a call per value.

    rint(value * 10**digits) / 10**digits is the same number unless the scaled value lies
    within its rounding error of a half, or is too large for that error to be small:
    those few go through `round` itself.
    """
    scale = 10.0**digits
    scaled = values * scale
    result = (np.rint(scaled) / scale).tolist()
    unsure = (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6) | ~(np.abs(scaled) < 2.0**30)
    for i in np.flatnonzero(unsure).tolist():
        result[i] = round(float(values[i]), digits)
    return result


def _is_space(codes: np.ndarray) -> np.ndarray:
    """Flag the code points `str.split` splits on (each distinct non-ASCII one is asked once)."""
    space = _ASCII_SPACE[np.minimum(codes, 127)]
    wide = [code for code in np.unique(codes[codes > 127]).tolist() if chr(code).isspace()]
    return space | np.isin(codes, wide) if wide else space


class Spans(NamedTuple):
    """Every span of a batch, comment after comment, as `word_spans` splits each comment."""

    text: list[str]
    owner: np.ndarray  # the comment of each span
    start: np.ndarray
    end: np.ndarray


def split_spans(texts: list[str]) -> Spans:
    """Split many comments into spans as `word_spans` does, without a Python object per span.

    Most comments split on white space alone: their spans are ``text.split()``, and the
    offsets come from one vectorised pass over the batch's code points. Only the few
    with spaced single letters or spaced phone numbers go through `word_spans` itself.
    """
    pieces = list(map(str.split, texts))
    owner = np.repeat(np.arange(len(texts)), np.fromiter(map(len, pieces), dtype=np.int64, count=len(texts)))
    codes = np.frombuffer(" ".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    edges = np.diff(np.concatenate([[True], _is_space(codes), [True]]).view(np.int8))  # -1: a span starts, 1: it ended
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1  # each text and the space after it
    base = (np.cumsum(lengths) - lengths)[owner]
    spans = Spans(list(itertools.chain.from_iterable(pieces)), owner, np.flatnonzero(edges < 0) - base, np.flatnonzero(edges > 0) - base)
    merging = [i for i, text in enumerate(texts) if may_merge_spans(text)]
    return _with_spans_merged(spans, texts, merging) if merging else spans


def _with_spans_merged(spans: Spans, texts: list[str], merging: list[int]) -> Spans:
    """Replace the spans of the comments in ``merging`` (ascending) with `word_spans`' (spaced letters and phone numbers joined).

    The spans between those comments are kept as slices: one copy, whatever the batch.
    """
    first = np.searchsorted(spans.owner, merging, side="left").tolist()
    after = np.searchsorted(spans.owner, merging, side="right").tolist()
    pieces = []
    for i, keep_from, keep_to in zip(merging, [0] + after, first):
        pieces.append(Spans(*(column[keep_from:keep_to] for column in spans)))
        found = word_spans(texts[i])
        pieces.append(Spans([span.text for span in found], np.full(len(found), i, dtype=np.int64),
                            np.array([span.start for span in found], dtype=np.int64), np.array([span.end for span in found], dtype=np.int64)))
    pieces.append(Spans(*(column[after[-1]:] for column in spans)))
    return Spans(list(itertools.chain.from_iterable(piece.text for piece in pieces)),
                 *(np.concatenate([getattr(piece, name) for piece in pieces]) for name in ("owner", "start", "end")))


class _WordRows(NamedTuple):
    """Rows of words as ids of the batch's distinct words; a bigram joins adjacent words of one group."""

    ids: np.ndarray
    rows: np.ndarray  # the row of each word
    pairs: np.ndarray  # the position in ``ids`` of each bigram's first word

    @classmethod
    def build(cls, ids: np.ndarray, lengths: np.ndarray, groups: np.ndarray) -> "_WordRows":
        rows = np.repeat(np.arange(lengths.size), lengths)
        return cls(ids, rows, np.flatnonzero(groups[rows[:-1]] == groups[rows[1:]]))


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
        self._span_parts = cache_short(self._span_parts_uncached, cache_size)

    @staticmethod
    def _span_parts_uncached(span: str) -> tuple[list[str], list[str]]:
        """Return the tokens and words of one span's normalised text (cached: spans repeat)."""
        normalized = normalize(span)
        return normalized.split(), words(normalized)

    def _pair_columns(self, distinct: list[str], first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Return the bigram column of each pair of word ids (-1 when unknown), each distinct pair formatted once."""
        n = max(len(distinct), 1)
        keys, inverse = np.unique(first * n + second, return_inverse=True)
        word = distinct.__getitem__
        grams = map("{} {}".format, map(word, (keys // n).tolist()), map(word, (keys % n).tolist()))
        return _lookup(self.scorer.word_vocabulary, grams, keys.size)[inverse.reshape(-1)]

    def _counts(self, rows: _WordRows, unigrams: np.ndarray, bigrams: np.ndarray, n_rows: int) -> sparse.csr_matrix:
        """Word unigram and bigram counts (rows x word features); half of a bigram goes to each of its words' rows."""
        half = np.full(rows.pairs.size, 0.5)
        columns = np.concatenate([unigrams[rows.ids], bigrams, bigrams])
        owners = np.concatenate([rows.rows, rows.rows[rows.pairs], rows.rows[rows.pairs + 1]])
        amounts = np.concatenate([np.ones(rows.ids.size), half, half])
        known = columns >= 0
        return _csr(owners[known], columns[known], amounts[known], (n_rows, self.scorer.word_idf.size))

    def _word_counts(self, comment_words: list[list[str]], span_words: list[list[str]], span_ids: np.ndarray, owner: np.ndarray) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Word counts of the comments and of the spans (rows of ``span_ids``, indices into
        ``span_words``; a bigram may join two spans of one comment, ``owner``).

        Every distinct word of the batch gets an id and is looked up once, and so is
        every distinct pair of ids.
        """
        distinct, ids = _distinct(list(itertools.chain.from_iterable(itertools.chain(comment_words, span_words))))
        comment_lengths = np.diff(_indptr(comment_words))
        comments = _WordRows.build(ids[: comment_lengths.sum()], comment_lengths, np.arange(len(comment_words)))
        span_indptr = _indptr(span_words) + comment_lengths.sum()
        span_lengths = np.diff(span_indptr)[span_ids]
        spans = _WordRows.build(ids[_ranges(span_indptr[:-1][span_ids], span_lengths)], span_lengths, owner)
        unigrams = _lookup(self.scorer.word_vocabulary, distinct, len(distinct))
        bigrams = self._pair_columns(distinct, *(np.concatenate([r.ids[r.pairs + k] for r in (comments, spans)]) for k in (0, 1)))
        split = comments.pairs.size
        return (self._counts(comments, unigrams, bigrams[:split], len(comment_words)),
                self._counts(spans, unigrams, bigrams[split:], span_ids.size))

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

    @staticmethod
    def _token_incidence(*row_sets: list[list[str]]) -> tuple[list[str], list[sparse.csr_matrix]]:
        """The distinct tokens of all rows, and for each list of token rows its (rows x distinct tokens) counts."""
        indptrs = [_indptr(rows) for rows in row_sets]
        distinct, ids = _distinct(list(itertools.chain.from_iterable(itertools.chain.from_iterable(row_sets))))
        matrices, start = [], 0
        for indptr in indptrs:
            part = ids[start : start + indptr[-1]]
            start += indptr[-1]
            matrices.append(sparse.csr_matrix((np.ones(part.size), part, indptr), shape=(indptr.size - 1, len(distinct))))
        return distinct, matrices

    def _char_counts(self, distinct: list[str], incidences: list[sparse.csr_matrix]) -> list[sparse.csr_matrix]:
        """Char n-gram counts (rows x char features) of each token incidence matrix (`_token_incidence`).

        Each distinct token's n-grams are computed and looked up once for all rows.
        """
        owner, columns = (self._hashed_char_columns if self.scorer.hashed else self._known_char_columns)(distinct)
        table = _csr(owner, columns, np.ones(owner.size), (len(distinct), self.scorer.char_idf.size))
        counts = []
        for incidence in incidences:
            matrix = incidence @ table
            matrix.sum_duplicates()
            counts.append(sparse.csr_matrix(matrix))
        return counts

    def _token_pieces(self, distinct: list[str]) -> sparse.csr_matrix:
        """How often each piece occurs in each distinct token (tokens x pieces)."""
        ids = [self.scorer.pieces.pieces_of_token(token) for token in distinct]
        return sparse.csr_matrix((np.ones(sum(i.size for i in ids)), np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64), _indptr(ids)),
                                 shape=(len(distinct), self.scorer.piece_logits.shape[0]))

    def _piece_pull(self, comment_pieces: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Each comment's pieces' pull on each label's log-odds, scaled (comments x labels), and the
        scale: one over the length of its piece-vector sum (0 without pieces)."""
        norms = np.linalg.norm(np.asarray(comment_pieces @ self.scorer.pieces.rows), axis=1)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        return np.asarray(comment_pieces @ self.scorer.piece_logits) * scale[:, None], scale

    def _piece_contributions(self, span_pieces: sparse.csr_matrix, owner: np.ndarray, comment_pieces: sparse.csr_matrix, scale: np.ndarray) -> np.ndarray:
        """Each span's share of the piece block's log-odds (spans x labels), as
        `FastScorer._piece_contributions` gives it: each claim of a piece gets the comment's
        count of it over the comment's claims of it, times the comment's scale."""
        n_comments = comment_pieces.shape[0]
        claims = sparse.csr_matrix((np.ones(owner.size), (owner, np.arange(owner.size))), shape=(n_comments, owner.size)) @ span_pieces
        claims.sum_duplicates()
        claims = sparse.csr_matrix(claims)
        present = _values_at(comment_pieces, _entry_rows(claims), claims.indices) * scale[_entry_rows(claims)]
        return self._contributions(span_pieces, owner, claims, sparse.csr_matrix((present, claims.indices, claims.indptr), shape=claims.shape),
                                   self.scorer.piece_logits)

    def _logits(self, word_x: sparse.csr_matrix, char_x: sparse.csr_matrix, piece_pull: np.ndarray) -> np.ndarray:
        scorer = self.scorer
        return scorer.intercept + np.asarray(word_x @ scorer.word_weights) + np.asarray(char_x @ scorer.char_weights) + piece_pull

    def score(self, texts: list[str]) -> np.ndarray:
        """Return calibrated probabilities, shape (len(texts), n_labels)."""
        normalized = [normalize(text) for text in texts]
        distinct, (incidence,) = self._token_incidence([text.split() for text in normalized])
        (char_counts,) = self._char_counts(distinct, [incidence])
        word_counts, _ = self._word_counts(list(map(words, normalized)), [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        scorer = self.scorer
        piece_pull = self._piece_pull(incidence @ self._token_pieces(distinct))[0] if scorer.pieces is not None else 0.0
        return scorer.probabilities(self._logits(_tfidf(word_counts, scorer.word_idf), _tfidf(char_counts, scorer.char_idf), piece_pull))

    @staticmethod
    def _contributions(occurrences: sparse.csr_matrix, owner: np.ndarray, counts: sparse.csr_matrix, tfidf: sparse.csr_matrix, weights: np.ndarray) -> np.ndarray:
        """Return each span's share of each label's log-odds from one block (spans x labels).

        ``occurrences`` counts each feature in each span. An occurrence gets the feature's
        TF-IDF value in the span's comment (row ``owner[span]``) divided by the feature's
        count there, 0 when the comment lacks it, times the label's weight.
        """
        where, found = _positions(counts, owner[_entry_rows(occurrences)], occurrences.indices)
        share = np.zeros(found.size)
        share[found] = tfidf.data[where[found]] / counts.data[where[found]]
        shares = sparse.csr_matrix((share * occurrences.data, occurrences.indices, occurrences.indptr), shape=occurrences.shape)
        return np.asarray(shares @ weights)

    def contributions(self, texts: list[str], normalized: list[str]) -> tuple[np.ndarray, Spans, np.ndarray]:
        """Return log-odds (comments x labels), all spans, and each span's share of each
        label's log-odds (spans x labels)."""
        spans = split_spans(texts)
        distinct, span_ids = _distinct(spans.text)
        parts = list(map(self._span_parts, distinct))
        tokens, incidences = self._token_incidence([text.split() for text in normalized], [tokens for tokens, _ in parts])
        char_counts, distinct_chars = self._char_counts(tokens, incidences)
        word_counts, span_word_counts = self._word_counts(list(map(words, normalized)), [w for _, w in parts], span_ids, spans.owner)
        scorer = self.scorer
        word_x, char_x = _tfidf(word_counts, scorer.word_idf), _tfidf(char_counts, scorer.char_idf)
        contribution = self._contributions(span_word_counts, spans.owner, word_counts, word_x, scorer.word_weights)
        contribution += self._contributions(distinct_chars[span_ids], spans.owner, char_counts, char_x, scorer.char_weights)
        piece_pull = 0.0
        if scorer.pieces is not None:
            token_pieces = self._token_pieces(tokens)
            comment_pieces = sparse.csr_matrix(incidences[0] @ token_pieces)
            comment_pieces.sum_duplicates()
            piece_pull, scale = self._piece_pull(comment_pieces)
            contribution += self._piece_contributions(sparse.csr_matrix((incidences[1] @ token_pieces)[span_ids]), spans.owner, comment_pieces, scale)
        return self._logits(word_x, char_x, piece_pull), spans, contribution

    def _top_terms(self, contribution: np.ndarray, spans: Spans, n_comments: int, top: int) -> list[list[dict]]:
        """Pick each comment's ``top`` spans per label with positive weight, strongest first.

        One pass of stable sorts for the whole batch: by comment and label, weight, span
        to choose; then by comment and rounded weight, ties in label order, to list them.
        """
        labels = self.scorer.labels
        n_labels = len(labels)
        flat = contribution.ravel()
        candidate = np.flatnonzero(flat > 0)  # span-major: stable sorts keep the earlier span first on ties
        span, label, weight = candidate // n_labels, candidate % n_labels, flat[candidate]
        comment = spans.owner[span]
        group = comment * n_labels + label
        order = _by_key(group, np.argsort(-weight, kind="stable"))
        group = group[order]
        first = np.concatenate([[True], group[1:] != group[:-1]]) if group.size else np.zeros(0, dtype=bool)
        position = np.arange(group.size)
        chosen = order[position - np.maximum.accumulate(np.where(first, position, 0)) < top]
        rounded = np.array(_rounded(weight[chosen], 4))
        shown = rounded > 0  # a weight that rounds to nothing explains nothing
        chosen, rounded = chosen[shown], rounded[shown].tolist()
        listed = _by_key(comment[chosen], np.argsort(-np.array(rounded), kind="stable"))  # equal weights stay in label order
        chosen = chosen[listed]
        text, start, end = spans.text, spans.start[span[chosen]].tolist(), spans.end[span[chosen]].tolist()
        terms = [
            {"text": text[s], "start": a, "end": b, "label": labels[l], "weight": rounded[i]}
            for s, a, b, l, i in zip(span[chosen].tolist(), start, end, label[chosen].tolist(), listed.tolist())
        ]
        bounds = np.cumsum(np.bincount(comment[chosen], minlength=n_comments)).tolist()
        return [terms[a:b] for a, b in zip([0] + bounds, bounds)]

    def explain(self, texts: list[str], top: int = 5, normalized: list[str] | None = None) -> tuple[np.ndarray, list[list[dict]]]:
        """Return probabilities (len(texts), n_labels) and each comment's terms, as
        `FastScorer.score_and_explain` gives them for one comment."""
        normalized = [normalize(text) for text in texts] if normalized is None else normalized
        logits, spans, contribution = self.contributions(texts, normalized)
        return self.scorer.probabilities(logits), self._top_terms(contribution, spans, len(texts), top)
