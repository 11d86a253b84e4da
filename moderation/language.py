"""Guess a comment's language, so text the model never learned is held rather than misjudged."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection

MIN_LETTERS = 20  # shorter texts ("lol ok") cannot be identified reliably
# Matches when text has at least MIN_LETTERS letters (the identifier's "letter": a word
# character that is neither a digit nor "_"), without building a list of every letter.
_ENOUGH_LETTERS = re.compile(r"(?:[\W\d_]*+[^\W\d_]){%d}" % MIN_LETTERS)  # possessive: no backtracking

# Plainly English text skips the identifier (py3langid walks every byte in Python: a
# quarter of a millisecond per comment) when English is a language the rules accept: it
# would answer "en" for such text, and an accepted language is never held, whatever the
# confidence. "Plainly English" is strict: ASCII letters only, and at least
# ENGLISH_MIN_WORDS words, making up ENGLISH_MIN_SHARE of all words, from a list of common
# English words that are not also common words in another language written in Latin letters
# ("is", "of", "to", "in", "on", "a", "was", "will", "for", "die", "so", "no", "me"... are left out),
# so French, German, Spanish, Dutch, Polish or Indonesian text, with or without its accents,
# and Nigerian Pidgin (which shares many English words), still go to the identifier
# (tests/test_language.py). The shortcut's share and word list were checked against data/examples.csv
# and the load benchmark's comments: the identifier says "en" for every text the shortcut takes.
ENGLISH_MIN_WORDS = 3
ENGLISH_MIN_SHARE = 0.2
_ENGLISH_WORDS = frozenset("""
    the and that this with you your have are they their them there these those then than what which who when where why how
    would should could been being from about were just not it she his our if very only because into some does did has had its
    any out up one get think people like know really other even much well after never always again every many both each here
    without through while since already though whoever whatever something nothing anything everyone someone him said got
    didn doesn isn wasn aren couldn wouldn shouldn
""".split())  # the last line: what "didn't", "isn't"... leave before the apostrophe
# Common words of other languages written in ASCII letters (accents typed or not). One of them
# anywhere sends the text to the identifier: English words in a Tagalog, Spanish or Indonesian
# sentence ("Sana ayusin na nila yung kalsada, because the people are suffering") are not English
# text. A word here that English also uses ("die", "con") only costs the shortcut, never a decision.
_OTHER_LANGUAGES_WORDS = frozenset("""
    ang ng mga sa na nila yung dito ako ikaw siya hindi lang naman po kasi talaga ito iyan natin kami
    que los las por pero como una del para muy esta porque tiene todo tambien eso ese esto hay
    les des est pas une pour dans avec qui sur mais tres cette sont vous nous sans etre aussi
    und der die das ist nicht ein eine ich sie mit auf auch aber wir dass sich wie noch nur
    het een niet maar voor zijn ook dat wat heb
    nao uma com mas voce muito isso sao voces
    che non della sono questo anche perche molto sempre
    yang dan ini itu tidak dengan untuk ada saya aku kamu
    nie jest sie ale jak tak czy
    och att det som inte jag og ikke
    bir ve bu icin degil
    dey wetin abeg sabi wahala
""".split())
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
_WORDS = re.compile(r"[a-z]+")


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)


def plainly_english(text: str) -> bool:
    """True when ``text`` (ASCII letters only) is made of enough common English words to need no identifier."""
    if not text.isascii() and _NON_ASCII_LETTER.search(text):
        return False
    words = _WORDS.findall(text.lower())
    if not _OTHER_LANGUAGES_WORDS.isdisjoint(words):
        return False
    english = sum(word in _ENGLISH_WORDS for word in words)
    return english >= ENGLISH_MIN_WORDS and english >= ENGLISH_MIN_SHARE * len(words)


def detect(text: str, accepted: Collection[str] = ()) -> tuple[str | None, float]:
    """Return (ISO 639-1 code, confidence), or (None, 0.0) when the text is too short to tell.

    ``accepted``: the languages the rules accept (``Rules.languages``). When English is one
    of them, plainly English text (`plainly_english`) is answered ("en", 1.0) without the identifier.
    """
    text = text[:2000]
    if not _ENOUGH_LETTERS.match(text):
        return None, 0.0
    if "en" in accepted and plainly_english(text):
        return "en", 1.0
    language, confidence = _identifier().classify(text)
    return language, float(confidence)
