"""Near-duplicate grouping: spam waves (the same text with small changes) become one group to decide at once.

Texts are compared on normalised character n-grams (so homoglyphs, l33t and spacing
tricks do not split a wave); comments whose cosine similarity reaches the threshold are
linked, and each connected set of two or more is a group.
"""

from __future__ import annotations

import functools

from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from moderation.text import normalize


def group_similar(texts: list[str], threshold: float) -> list[list[int]]:
    """Return groups of indices into ``texts`` (two or more each), largest first.

    The desk asks on every load of the Pending page, mostly for the same held comments
    (a second or two of work for a thousand), so the last few answers are kept, keyed by
    the texts themselves: any comment decided, arrived or changed makes a new key.
    """
    return [list(group) for group in _groups_of(tuple(texts), threshold)]


@functools.lru_cache(maxsize=4)
def _groups_of(texts: tuple[str, ...], threshold: float) -> tuple[tuple[int, ...], ...]:
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
