"""Near-duplicate grouping: spam waves (the same text with small changes) become one group to decide at once.

Texts are compared on normalised character n-grams (so homoglyphs, l33t and spacing
tricks do not split a wave); comments whose cosine similarity reaches the threshold are
linked, and each connected set of two or more is a group.
"""

from __future__ import annotations

from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer

from moderation.text import normalize


def group_similar(texts: list[str], threshold: float) -> list[list[int]]:
    """Return groups of indices into ``texts`` (two or more each), largest first."""
    if len(texts) < 2:
        return []
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), preprocessor=normalize, sublinear_tf=True)
    try:
        vectors = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but empty texts: no n-grams at all
        return []
    similarity = vectors @ vectors.T  # rows are L2-normalised, so this is the cosine
    similarity.data = (similarity.data >= threshold).astype(similarity.dtype)
    similarity.eliminate_zeros()
    count, labels = connected_components(similarity, directed=False)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), []).append(index)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
