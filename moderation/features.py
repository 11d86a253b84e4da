"""Turn normalised text into the word and character n-grams the model weighs.

Both analyzers are module-level functions so the saved scikit-learn pipeline can pickle
them, and the fast scorer (`moderation.scorer`) calls the very same functions: serving
and training always see identical features.

scikit-learn is imported by the functions that build or read pipelines, not here: a
process that scores from a bundle's plain arrays (`moderation.weights`) never loads it.
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from moderation.text import normalize

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

_WORD = re.compile(r"[a-z0-9']+|[!?]")

WORD_NGRAMS = (1, 2)
CHAR_NGRAMS = (2, 5)


def normalize_all(texts) -> list[str]:
    """Normalise a batch of raw comments (the pipeline's first step)."""
    return [normalize(text) for text in texts]


def words(normalized: str) -> list[str]:
    """Split normalised text into word tokens (a lone "!" or "?" counts as a word)."""
    return _WORD.findall(normalized)


def word_ngrams(normalized: str) -> list[str]:
    """Return word unigrams and bigrams of normalised text."""
    tokens = words(normalized)
    grams = list(tokens)
    grams.extend(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    return grams


LONGEST_CACHED = 64  # characters: longer words and spans are computed afresh every time


def cache_short(function, maxsize: int):
    """``function`` of one string, with an LRU cache for arguments of at most `LONGEST_CACHED` characters.

    Words and short spans follow Zipf's law: most calls are repeats, worth keeping. A long
    argument is rare, and keeping what it yields could hold megabytes per entry (a
    10,000-character token has 40,000 n-grams), so a stream of long unique comments
    could fill a worker's memory.
    """
    cached = functools.lru_cache(maxsize=maxsize)(function)

    @functools.wraps(function)
    def call(key: str):
        return cached(key) if len(key) <= LONGEST_CACHED else function(key)

    call.cache_clear = cached.cache_clear
    return call


def _char_ngrams_of_word(word: str) -> tuple[str, ...]:
    """Return the 2- to 5-character n-grams of one word, padded with spaces at both ends."""
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    size = len(padded)
    return tuple([padded[i : i + n] for n in range(low, min(high, size) + 1) for i in range(size - n + 1)])


char_ngrams_of_word = cache_short(_char_ngrams_of_word, maxsize=1 << 17)  # the hot loop of training and scoring


def pack_ngram(gram: str) -> int:
    """Pack an ASCII n-gram of at most 5 characters into one integer: length, then one byte per character."""
    return len(gram) << 40 | int.from_bytes(gram.encode("ascii"), "little")


def packed_char_ngrams(tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return (token index, `pack_ngram` key) of every char n-gram of many normalised tokens.

    The n-grams of `char_ngrams_of_word`, computed for a whole batch with a few array
    operations: serving looks the keys up with one `np.searchsorted`, not a Python dict
    lookup per n-gram (the slowest part of scoring unseen text).
    """
    padded = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens)) + 2
    chars = np.frombuffer((" " + "  ".join(tokens) + " ").encode("ascii"), dtype=np.uint8).astype(np.int64)
    starts = np.cumsum(padded) - padded
    owners, keys = [], []
    low, high = CHAR_NGRAMS
    for n in range(low, high + 1):
        windows = np.maximum(padded - n + 1, 0)
        owner = np.repeat(np.arange(len(tokens)), windows)
        first = np.cumsum(windows) - windows
        position = np.arange(owner.size) - first[owner] + starts[owner]
        key = np.full(owner.size, n << 40, dtype=np.int64)
        for k in range(n):
            key |= chars[position + k] << (8 * k)
        owners.append(owner)
        keys.append(key)
    return np.concatenate(owners), np.concatenate(keys)


def char_ngrams(normalized: str) -> list[str]:
    """Return the character n-grams of every white-space separated word (never crossing words)."""
    return list(itertools.chain.from_iterable(map(char_ngrams_of_word, normalized.split())))


def build_features(*, max_word_features: int = 150_000, max_char_features: int = 250_000) -> Pipeline:
    """Build the unfitted normalise -> (word TF-IDF, char TF-IDF) feature pipeline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    common = dict(lowercase=False, sublinear_tf=True, dtype=np.float32)
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_all)),
            (
                "tfidf",
                FeatureUnion(
                    [
                        ("words", TfidfVectorizer(analyzer=word_ngrams, min_df=2, max_features=max_word_features, **common)),
                        ("chars", TfidfVectorizer(analyzer=char_ngrams, min_df=3, max_features=max_char_features, **common)),
                    ]
                ),
            ),
        ]
    )


def with_pieces(features: Pipeline, pieces) -> Pipeline:
    """Add a `moderation.pieces.PieceVectors` block after the fitted n-gram blocks.

    Its columns come last: a model's weights are (words, chars, piece dimensions).
    """
    from moderation.model import PieceBlock

    union = features.named_steps["tfidf"]
    union.transformer_list = [*union.transformer_list, ("pieces", PieceBlock(pieces))]
    return features


def piece_block(features: Pipeline):
    """The `PieceVectors` of a feature pipeline, or None when it has n-grams only."""
    block = dict(features.named_steps["tfidf"].transformer_list).get("pieces")
    return block.pieces if block is not None else None


# --- hashed features: the out-of-core training path (`training.streaming`) -------------

HASH_FEATURES = 2**20  # columns per block (words, chars): fixed, so no vocabulary pass is needed


def build_hashed_features(*, n_features: int = HASH_FEATURES, idf: tuple[np.ndarray, np.ndarray] | None = None) -> Pipeline:
    """Build normalise -> (word, char) hashed n-gram counts -> sublinear TF-IDF, with the same analyzers.

    A `HashingVectorizer` needs no fitted vocabulary, so features can be computed one chunk
    at a time over any number of comments. The IDF weights (``idf``: words, chars) come from
    document frequencies counted in one streaming pass (`idf_from_df`); without them, 1.
    Float64 throughout, so the fast scorer reproduces ``predict_proba`` to 1e-9.
    """
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    blocks = []
    for position, (name, analyzer) in enumerate((("words", word_ngrams), ("chars", char_ngrams))):
        hasher = HashingVectorizer(analyzer=analyzer, n_features=n_features, alternate_sign=False, norm=None, lowercase=False, dtype=np.float64)
        weighting = TfidfTransformer(sublinear_tf=True)
        weighting.idf_ = np.ones(n_features) if idf is None else np.asarray(idf[position], dtype=np.float64)
        weighting.n_features_in_ = n_features
        blocks.append((name, Pipeline([("hash", hasher), ("idf", weighting)])))
    return Pipeline([("normalize", FunctionTransformer(normalize_all)), ("tfidf", FeatureUnion(blocks))])


def idf_from_df(df: np.ndarray, n_documents: int) -> np.ndarray:
    """Smoothed IDF as scikit-learn's TF-IDF computes it: ln((1 + n) / (1 + df)) + 1."""
    return np.log((1.0 + n_documents) / (1.0 + np.asarray(df, dtype=np.float64))) + 1.0


class HashedVocabulary:
    """A vocabulary-shaped view of the hashing trick: ``get(gram)`` is the column `HashingVectorizer` gives it.

    Lets the fast scorer and the batch path look up hashed n-grams the way they look up a
    fitted TF-IDF vocabulary. Every gram has a column, so ``default`` is never returned.
    """

    def __init__(self, n_features: int):
        from sklearn.utils import murmurhash3_32

        self.n_features = n_features
        self._hash = murmurhash3_32

    def get(self, gram: str, default=None) -> int:
        h = self._hash(gram, seed=0)  # the signed hash of the UTF-8 bytes, as `HashingVectorizer` takes it
        return (2147483647 - (self.n_features - 1)) % self.n_features if h == -2147483648 else abs(h) % self.n_features

    def __len__(self) -> int:
        return self.n_features


def block_lookups(features: Pipeline) -> list[tuple[dict | HashedVocabulary, np.ndarray]]:
    """Return ``(vocabulary, idf)`` for the word block and the char block of a fitted feature pipeline.

    Either a fitted `TfidfVectorizer` (its vocabulary) or a hashing block (`HashedVocabulary`),
    so serving code needs to know only that a gram maps to a column.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    union = dict(features.named_steps["tfidf"].transformer_list)
    lookups = []
    for name in ("words", "chars"):
        block = union[name]
        if isinstance(block, TfidfVectorizer):
            lookups.append((block.vocabulary_, block.idf_))
        else:
            lookups.append((HashedVocabulary(block.named_steps["hash"].n_features), block.named_steps["idf"].idf_))
    return lookups


class HashedCounter:
    """Hashed word and char n-gram counts of many normalised texts: what the hashing blocks count, faster.

    `HashingVectorizer` hashes every n-gram occurrence in Python-visible strings. Words
    follow Zipf's law, so here each distinct word, bigram and token (for its char n-grams)
    is hashed once and cached across calls, and a batch's counts are assembled with a
    sparse product. The matrices equal the hashing blocks' counts (the tests check);
    training streams millions of comments through this several times.
    """

    def __init__(self, n_features: int = HASH_FEATURES, cache_size: int = 1 << 17):
        self.vocabulary = HashedVocabulary(n_features)
        self._column = functools.lru_cache(maxsize=cache_size)(self.vocabulary.get)
        self._token_columns = cache_short(self._token_columns_uncached, cache_size)

    def _token_columns_uncached(self, token: str) -> np.ndarray:
        return np.fromiter(map(self.vocabulary.get, char_ngrams_of_word(token)), dtype=np.int64)

    def _matrix(self, columns: np.ndarray, indptr: np.ndarray) -> "sparse.csr_matrix":
        matrix = sparse.csr_matrix((np.ones(columns.size), columns, indptr), shape=(indptr.size - 1, self.vocabulary.n_features))
        matrix.sum_duplicates()
        return matrix

    def counts(self, normalized: list[str]) -> tuple["sparse.csr_matrix", "sparse.csr_matrix"]:
        """Return (word counts, char counts), one row per normalised text."""
        grams = list(map(word_ngrams, normalized))
        flat = list(itertools.chain.from_iterable(grams))
        indptr = np.concatenate([[0], np.cumsum(np.fromiter(map(len, grams), dtype=np.int64, count=len(grams)))])
        word_counts = self._matrix(np.fromiter(map(self._column, flat), dtype=np.int64, count=len(flat)), indptr)
        tokens = list(map(str.split, normalized))
        distinct = list(dict.fromkeys(itertools.chain.from_iterable(tokens)))
        position = dict(zip(distinct, range(len(distinct))))
        per_token = list(map(self._token_columns, distinct))
        table = self._matrix(np.concatenate(per_token) if per_token else np.zeros(0, dtype=np.int64),
                             np.concatenate([[0], np.cumsum([c.size for c in per_token], dtype=np.int64)]))
        ids = np.fromiter((position[t] for row in tokens for t in row), dtype=np.int64)
        token_indptr = np.concatenate([[0], np.cumsum(np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens)))])
        incidence = sparse.csr_matrix((np.ones(ids.size), ids, token_indptr), shape=(len(tokens), len(distinct)))
        char_counts = sparse.csr_matrix(incidence @ table)
        char_counts.sum_duplicates()
        return word_counts, char_counts
