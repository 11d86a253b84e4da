"""Guess a comment's language, so text the model never learned is held rather than misjudged."""

from __future__ import annotations

import functools
import re

_LETTERS = re.compile(r"[^\W\d_]")
MIN_LETTERS = 20  # shorter texts ("lol ok") cannot be identified reliably


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def detect(text: str) -> tuple[str | None, float]:
    """Return (ISO 639-1 code, confidence), or (None, 0.0) when the text is too short to tell."""
    if len(_LETTERS.findall(text[:2000])) < MIN_LETTERS:
        return None, 0.0
    language, confidence = _identifier().classify(text[:2000])
    return language, float(confidence)
