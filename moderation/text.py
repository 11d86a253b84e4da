"""Text normalisation shared by training and serving.

Spammers and trolls obfuscate ("f u c k", "1d10t", Cyrillic "а" inside Latin words,
zero-width spaces, fullwidth letters). `normalize` folds all of that back to plain
lowercase ASCII words plus a few marker tokens (``xurl``, ``xshortener``, ``xemail``,
``xphone``, ``xcaps``) so that the model sees what a human reader sees.

The saved model carries this function (through its analyzers), so serving can never
drift from training. Every step is a linear-time regular expression or table lookup:
pathological input (a megabyte of one character, deep combining sequences) costs
time proportional to its length, never more.

This module imports nothing from the rest of the project.
"""

from __future__ import annotations

import functools
import html
import operator
import re
import unicodedata
from typing import NamedTuple

from confusable_homoglyphs import confusables
from unidecode import unidecode

# Link shorteners: a link through one of these hides where it goes, a classic spam sign.
SHORTENER_DOMAINS = frozenset(
    """bit.ly tinyurl.com t.co goo.gl ow.ly is.gd buff.ly cutt.ly rebrand.ly tiny.cc
    shorturl.at rb.gy t.ly bl.ink lnkd.in s.id v.gd adf.ly shorte.st bitly.com
    tr.im cli.gs x.co soo.gd qr.ae""".split()
)

# Top-level domains a bare "example.com" link may end with (without http:// or www.).
_BARE_TLDS = (
    "com|net|org|info|biz|io|co|me|ly|gl|gd|at|cc|ru|cn|xyz|top|site|online|shop|club|"
    "live|link|click|app|tk|ml|ga|cf|gq|uk|de|fr|in|us|ca|au|tv|store|pro|win|bid|vip"
)
_SCHEME_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"']{1,2000}", re.IGNORECASE)
# A bare link ends in one of those ("example.com", "bit.ly/x"), or, when a path follows that
# looks like one, in any two-letter country domain ("trojmiasto.pl/bus-taxi.html",
# "shop.example.pl/x"): a name of three or more characters, and a path holding a digit, one of
# - _ . = ? & % / or a second dot in the host. "yes.No/maybe", "Node.js/Express" or
# "Mr.Smith/Jones" stay words. (The classes are possessive or complementary: linear time.)
_BARE_URL = re.compile(
    r"\b[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){0,3}\.(?:" + _BARE_TLDS + r")\b(?:/[^\s<>\"']{0,2000})?"
    r"|\b[a-z0-9][a-z0-9-]{2,62}+(?:(?:\.[a-z0-9-]{1,63}+){1,3}\.[a-z]{2}/"
    r"|\.[a-z]{2}/(?=[^\s<>\"'\-_.=?&%/0-9]*+[\-_.=?&%/0-9]))[^\s<>\"']{0,2000}+",
    re.IGNORECASE,
)
# Cheap pre-check: searching for ".com" etc. is far faster than trying a domain at every word.
_TLD_HINT = re.compile(r"\.(?:(?:" + _BARE_TLDS + r")\b|[a-z]{2}/)", re.IGNORECASE)
# An HTML link keeps its address when tags are stripped: <a href="http://x.example/">buy</a>
# is a link (for the model and for the rules' link count), not just the word "buy".
# Possessive after the address: without them an anchor with no ">" was retried at every length.
_HREF = re.compile(r"<\s{0,5}a\b[^<>]{0,300}?\bhref\s{0,5}=\s{0,5}[\"']?\s{0,5}([^\"'\s<>]{1,2000}+)[^<>]{0,300}+>", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,4}\b")
# Seven or more digits, optionally split by spaces, dots, dashes or brackets: phone numbers.
_PHONE = re.compile(r"(?<!\w)\+?(?:\d[\s().-]{0,2}){6,14}\d(?!\w)")
_TAG = re.compile(r"<\s{0,5}/?\s{0,5}[a-zA-Z][^<>]{0,300}>")
# "@ss", "@sshole": "@" standing for "a" (the l33t step reads it), not a handle.
_MENTION = re.compile(r"(?<!\w)@(?!ss)\w{1,50}")
_RETWEET = re.compile(r"(?<!\w)rt\s{0,3}(?=[@:])|^rt\b")
# Three or more single letters separated by spaces, dots, dashes, stars or underscores. The
# last letter is not the first of a l33t word: "u r a m0r0n" is "ura" and "m0r0n".
_SPACED = re.compile(r"(?<![a-z])(?:[a-z][ .\-_*]{1,3}){2,}[a-z](?![a-z0-9@$])")
# The same runs found in the original text, for explanation spans: any case, and the spaces
# that NFKC folds into plain ones before `normalize` looks for runs.
_SPACED_IN_TEXT = re.compile(r"(?<![a-z])(?:[a-z][ .\-_*\u00a0\u2000-\u200a\u202f\u205f\u3000]{1,3}){2,}[a-z](?![a-z0-9@$])", re.IGNORECASE)
# A run may start with words of their own: "is a m o r o n", "u r a d u m b".
_ONE_LETTER_WORDS = frozenset("aur")  # not "i": "i d i o t" is one word far more often than "I diot"
_SPACED_SEP = re.compile(r"[ .\-_*]")
# Letters and ! ? . stretched three times or more; digits are left alone ("1000", "2000").
_REPEATS = re.compile(r"([a-z!?.])\1{2,}")
# The letters English doubles ("good", "kill", "ass", "see"): stretched, they may stand for two.
_DOUBLED_LETTERS = "bcdefglmnoprstz"
_STRETCHED_DOUBLE = re.compile(f"([{_DOUBLED_LETTERS}])\\1{{2,}}")
# What r"\1" would give, without `re` parsing a template in Python on every call (~2 us).
_FIRST_GROUP = operator.methodcaller("group", 1)
# A token in which a letter touches a digit or symbol that stands in for a letter.
_LEET_TOKEN = re.compile(r"(?<![a-z0-9@$!|])[a-z0-9@$!|]*(?:[a-z][013457@$!|]|[013457@$][a-z])[a-z0-9@$!|]*")
_LEET_TABLE = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"})
_LEET_HINT = re.compile(r"[a-z][013457@$!|]|[013457@$][a-z]")
_LEET_CHARS = frozenset("013457@$!|")
_TRAILING_NUMBER = re.compile(r"^[a-z]+\d+$")
_UPPER_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_LETTER_BYTES = _UPPER_BYTES + _UPPER_BYTES.lower()
_CONTROL_ASCII = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_DIGITS = re.compile(r"\d")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Combining diacritical marks (the blocks NFD produces for Latin, Greek and Cyrillic text).
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_SPACE = re.compile(r"\S+")


class _InvisibleChars(dict):
    """A `str.translate` table that drops format, control and lone surrogate code points
    (JSON can carry "\\ud83d"), except tab, newline and carriage return.

    Each code point's category is looked up when first met. A pattern over every such
    code point meant asking for all 1.1 million categories first (~0.2 s, in every
    process's first non-ASCII comment); a comment has a few distinct characters. At most
    ``LIMIT`` answers are kept, so hostile text cannot grow the table without bound.
    """

    LIMIT = 1 << 16

    def __missing__(self, code: int) -> int | None:
        char = chr(code)
        kept = None if unicodedata.category(char) in ("Cf", "Cc", "Cs") and char not in "\t\n\r" else code
        if len(self) < self.LIMIT:
            self[code] = kept
        return kept


_INVISIBLE = _InvisibleChars()


@functools.cache
def _homoglyph_table() -> dict[int, str]:
    """Map every non-ASCII character that looks like an ASCII letter or digit onto it.

    Built from the Unicode confusables data that `confusable_homoglyphs` ships, so a
    Cyrillic "С" becomes "C" (what a reader sees), not "S" (what transliteration says).
    """
    table: dict[int, str] = {}
    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        lookalikes = [h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii() and h["c"].isalnum()]
        if lookalikes:
            # Prefer a letter of the same case. The data maps capital-I shapes (Cyrillic "І",
            # Greek "Ι") to "l" only; a capital letter that looks like "l" is an "I".
            chosen = min(lookalikes, key=lambda c: (c.isdigit(), c.isupper() != char.isupper(), c))
            table[ord(char)] = "I" if chosen == "l" and char.isupper() else chosen
    return table


def _fold_unicode(text: str) -> str:
    """Apply NFKC, then map homoglyphs and transliterate accents to ASCII."""
    if text.isascii():
        return text  # ASCII is already in NFKC form and has no homoglyphs
    text = unicodedata.normalize("NFKC", text).translate(_homoglyph_table())
    # Decompose, drop combining marks (they would otherwise pile up), then transliterate
    # only the stretches that are still not ASCII: most comments have a few at most.
    text = _COMBINING.sub("", unicodedata.normalize("NFD", text))
    return _NON_ASCII.sub(_transliterate, text)


def _transliterate(match: re.Match[str]) -> str:
    return unidecode(match.group(0), errors="replace", replace_str=" ")


def _href_address(match: re.Match[str]) -> str:
    return f" {match.group(1)} "


def _link_token(match: re.Match[str]) -> str:
    url = match.group(0).lower()
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", url).split("/", 1)[0].split(":", 1)[0]
    marker = " xurl xshortener " if host in SHORTENER_DOMAINS else " xurl "
    return marker + "xdomain" + re.sub(r"[^a-z0-9]", "", host) + " "


def _unspace(match: re.Match[str]) -> str:
    """Join a run of spaced letters; where its first letter can be a word of its own ("a m o r o n"),
    give that reading too ("a moron amoron"), as nothing in the run tells the two apart."""
    joined = _SPACED_SEP.sub("", match.group(0))
    lead = 0  # leading letters read as words of their own, leaving a word of three letters or more
    while lead < len(joined) - 3 and joined[lead] in _ONE_LETTER_WORDS:
        lead += 1
    if lead:
        return f"{' '.join(joined[:lead])} {joined[lead:]} {joined}"
    return joined


def _collapse_stretches(text: str) -> str:
    """`_destretch` every word, with white space normalised; one pass of `_REPEATS` where no
    stretched letter is one English doubles (nearly always: a search for those alone costs
    as much as the pass)."""
    doubled = False

    def first(match: re.Match[str]) -> str:
        nonlocal doubled
        letter = match.group(1)
        doubled = doubled or letter in _DOUBLED_LETTERS
        return letter

    collapsed = _REPEATS.sub(first, text)
    return " ".join(map(_destretch, text.split()) if doubled else collapsed.split())


def _destretch(word: str) -> str:
    """Collapse stretched letters to one ("stuuupid": "stupid"); where a stretched letter is one
    English doubles, give the two-letter reading too ("gooood": "god good", "killll": "kil kill"),
    as nothing in the word tells which was meant."""
    if _REPEATS.search(word) is None:
        return word
    single = _REPEATS.sub(_FIRST_GROUP, word)
    if _STRETCHED_DOUBLE.search(word) is None:
        return single
    double = _REPEATS.sub(_FIRST_GROUP, _STRETCHED_DOUBLE.sub(_joined_pair, word))
    return f"{single} {double}"


def _joined_pair(match: re.Match[str]) -> str:
    return match.group(1) * 2


def _unleet(match: re.Match[str]) -> str:
    token = match.group(0)
    core = token.rstrip("!|")  # "wow!!" is emphasis, not a disguised "wowii"
    letters = sum(ch.isalpha() for ch in core)
    if letters < 2 or not _LEET_CHARS.intersection(core) or _TRAILING_NUMBER.match(core):
        return token  # "b4", "2015", "covid19": numbers, not disguised letters
    return core.translate(_LEET_TABLE) + token[len(core) :]


def caps_share(text: str, min_letters: int = 8) -> float:
    """Return the share of ASCII letters that are upper case (0 with fewer than ``min_letters``)."""
    raw = text.encode("ascii", "ignore")
    letters = len(raw) - len(raw.translate(None, _ASCII_LETTER_BYTES))  # bytes.translate: C speed
    if letters < min_letters:
        return 0.0
    return (len(raw) - len(raw.translate(None, _UPPER_BYTES))) / letters


def normalize(text: str) -> str:
    """Fold a raw comment into the lowercase, de-obfuscated form the model reads."""
    # Each step is skipped when a cheap check shows the text cannot contain what it looks
    # for: most comments are plain ASCII prose, and scoring must stay well under a millisecond.
    text = (_CONTROL_ASCII.sub("", text) if text.isascii() else text.translate(_INVISIBLE)).strip()
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", _HREF.sub(_href_address, text))
    text = _fold_unicode(text)
    shouting = caps_share(text) >= 0.6
    text = text.lower()
    if "@" in text:
        text = _EMAIL.sub(" xemail ", text)
    if "http" in text or "www." in text:
        text = _SCHEME_URL.sub(_link_token, text)
    if _TLD_HINT.search(text):
        text = _BARE_URL.sub(_link_token, text)
    if _DIGITS.search(text) is not None:
        text = _PHONE.sub(" xphone ", text)
    if "@" in text:
        text = _RETWEET.sub(" ", text)
        text = _MENTION.sub(" ", text)
    elif text.startswith("rt"):
        text = _RETWEET.sub(" ", text)
    text = _SPACED.sub(_unspace, text)
    if _LEET_HINT.search(text):
        text = _LEET_TOKEN.sub(_unleet, text)
    text = _collapse_stretches(text)
    if shouting:
        text = f"{text} xcaps".lstrip()
    return text


class Span(NamedTuple):
    """A stretch of the original text: one word, a link, or a run of spaced letters.

    A named tuple: explanations make one per word of every comment, and tuples are cheap.
    """

    start: int
    end: int
    text: str


def word_spans(text: str) -> list[Span]:
    """Split raw text into the spans that explanations point at.

    A run of spaced single letters ("f u c k", "i . d . i . o . t!") is one span, since
    `normalize` joins it into one word, and so is a phone number written with spaces
    ("0800 123 4567"), which `normalize` turns into one ``xphone``; everything else is split
    on white space.
    """
    spans = [Span(match.start(), match.end(), match.group(0)) for match in _NON_SPACE.finditer(text)]
    if not may_merge_spans(text):
        return spans
    return _merge_phone_numbers(text, _merge_spaced_letters(text, spans))


def may_merge_spans(text: str) -> bool:
    """Whether `word_spans` may join spaced letters or a spaced phone number in ``text``.

    When not, its spans are exactly ``text.split()`` (``\\S+`` and `str.split` agree on
    white space), which lets the batch path split many comments without a `Span` each.
    """
    return _SPACED_RUN_HINT.search(text) is not None or _DIGITS_ACROSS_SPACE.search(text) is not None


# Two digits with white space (and at most a bracket, dot or dash on each side) between them:
# what every phone number spread over several spans contains.
_DIGITS_ACROSS_SPACE = re.compile(r"\d[().-]?\s{1,2}[().-]?\d")
# Two letters, each without a letter beside it, with white space in the separators between
# them: what every run of spaced letters spread over several spans contains.
_SPACED_RUN_HINT = re.compile(r"(?<![a-z])[a-z][ .\-_*]{0,2}\s[ .\-_*\s]{0,2}[a-z](?![a-z])", re.IGNORECASE)


def _merge_over(text: str, spans: list[Span], ranges) -> list[Span]:
    """Join the spans that each (start, end) range of ``text`` is spread over; keep the rest."""
    merged: list[Span] = []
    i = 0
    for start, end in ranges:
        while i < len(spans) and spans[i].end <= start:
            merged.append(spans[i])
            i += 1
        first = i
        while i < len(spans) and spans[i].start < end:
            i += 1
        if i - first > 1:
            merged.append(Span(spans[first].start, spans[i - 1].end, text[spans[first].start : spans[i - 1].end]))
        else:
            merged.extend(spans[first:i])
    merged.extend(spans[i:])
    return merged


def _merge_phone_numbers(text: str, spans: list[Span]) -> list[Span]:
    """Join the spans that one phone number (`_PHONE`, as `normalize` finds it) is spread over."""
    return _merge_over(text, spans, (match.span() for match in _PHONE.finditer(text)))


def _merge_spaced_letters(text: str, spans: list[Span]) -> list[Span]:
    """Join the spans that one run of spaced letters (`_SPACED`, as `normalize` finds it) is spread over."""
    return _merge_over(text, spans, (match.span() for match in _SPACED_IN_TEXT.finditer(text)))
