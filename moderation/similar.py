"""Near-duplicate grouping: spam waves (the same text with small changes) become one group to decide at once.

Texts are compared on normalised character n-grams (so homoglyphs, l33t and spacing
tricks do not split a wave); comments whose cosine similarity reaches the threshold are
linked, and each connected set of two or more is a group.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from moderation.text import normalize


KEPT_ANSWERS = 4  # per worker: a few filters' worth of Pending pages
_kept: OrderedDict[tuple[bytes, float], tuple[tuple[int, ...], ...]] = OrderedDict()
_kept_lock = threading.Lock()


def group_similar(texts: list[str], threshold: float) -> list[list[int]]:
    """Return groups of indices into ``texts`` (two or more each), largest first.

    The desk asks on every load of the Pending page, mostly for the same held comments
    (a tenth of a second of work for a thousand), so the last few answers are kept, keyed by
    a digest of the texts in order: any comment decided, arrived or changed makes a new key,
    and no text is held in memory for it.
    """
    key = (_digest(texts), threshold)
    with _kept_lock:
        groups = _kept.get(key)
        if groups is not None:
            _kept.move_to_end(key)
    if groups is None:
        groups = _groups_of(texts, threshold)
        with _kept_lock:
            _kept[key] = groups
            while len(_kept) > KEPT_ANSWERS:
                _kept.popitem(last=False)
    return [list(group) for group in groups]


def forget_groups() -> None:
    """Drop the kept answers (tests)."""
    with _kept_lock:
        _kept.clear()


def _digest(texts: list[str]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))  # length-prefixed: ["ab"] and ["a", "b"] differ
        digest.update(data)
    return digest.digest()


def _groups_of(texts: list[str], threshold: float) -> tuple[tuple[int, ...], ...]:
    if len(texts) < 2:
        return ()
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), preprocessor=normalize, sublinear_tf=True)
    try:
        vectors = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but empty texts: no n-grams at all
        return ()
    similarity = vectors @ vectors.T  # rows are L2-normalised, so this is the cosine
    similarity.data = (similarity.data >= threshold).astype(similarity.dtype)
    similarity.eliminate_zeros()
    count, labels = connected_components(similarity, directed=False)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return tuple(tuple(g) for g in sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0])))
