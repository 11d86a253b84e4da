"""Turn normalised text into the word and character n-grams the model weighs.

Both analyzers are module-level functions so the saved scikit-learn pipeline can pickle
them, and the fast scorer (`moderation.scorer`) calls the very same functions: serving
and training always see identical features.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from moderation.text import normalize

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


@functools.lru_cache(maxsize=1 << 17)
def char_ngrams_of_word(word: str) -> tuple[str, ...]:
    """Return the 2- to 5-character n-grams of one word, padded with spaces at both ends.

    Cached: words follow Zipf's law, so most calls are repeats and this is the hot loop.
    """
    padded = f" {word} "
    low, high = CHAR_NGRAMS
    size = len(padded)
    return tuple([padded[i : i + n] for n in range(low, min(high, size) + 1) for i in range(size - n + 1)])


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
