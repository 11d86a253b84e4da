"""The n-gram analyzers the model weighs: word uni/bigrams and in-word character 2- to 5-grams."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.features import CHAR_NGRAMS, WORD_NGRAMS, char_ngrams, char_ngrams_of_word, word_ngrams, words

normalized_words = st.text(alphabet=string.ascii_lowercase + string.digits + "'!?", min_size=1, max_size=12)
normalized_texts = st.lists(normalized_words, max_size=8).map(" ".join)


def expected_count(word: str) -> int:
    size = len(word) + 2  # padded with one space each side
    low, high = CHAR_NGRAMS
    return sum(size - n + 1 for n in range(low, min(high, size) + 1))


def test_configured_ranges():
    assert CHAR_NGRAMS == (2, 5)
    assert WORD_NGRAMS == (1, 2)


@pytest.mark.parametrize(
    ("word", "grams"),
    [
        ("a", [" a", "a ", " a "]),
        ("ab", [" a", "ab", "b ", " ab", "ab ", " ab "]),
        ("abc", [" a", "ab", "bc", "c ", " ab", "abc", "bc ", " abc", "abc ", " abc "]),
    ],
)
def test_char_ngrams_of_short_words_exactly(word, grams):
    assert list(char_ngrams_of_word(word)) == grams


def test_long_words_stop_at_five_characters():
    grams = char_ngrams_of_word("stupid")
    assert max(map(len, grams)) == 5
    assert min(map(len, grams)) == 2
    assert " stup" in grams and "upid " in grams and "stupi" in grams
    assert " stupid " not in grams and "stupid" not in grams
    assert len(grams) == expected_count("stupid")


def test_char_ngrams_never_cross_words():
    grams = char_ngrams("ab cd")
    assert grams == list(char_ngrams_of_word("ab")) + list(char_ngrams_of_word("cd"))
    assert not any("b c" in g or "bc" in g for g in grams)


@pytest.mark.parametrize("text", ["", " ", "   \t\n "])
def test_char_ngrams_of_blank_text_are_empty(text):
    assert char_ngrams(text) == []


def test_char_ngrams_ignore_extra_white_space():
    assert char_ngrams("  you   idiot ") == char_ngrams("you idiot")


@given(normalized_texts)
def test_char_ngram_properties(text):
    grams = char_ngrams(text)
    tokens = text.split()
    assert len(grams) == sum(expected_count(t) for t in tokens)
    low, high = CHAR_NGRAMS
    padded = [f" {t} " for t in tokens]
    for gram in grams:
        assert low <= len(gram) <= high
        assert " " not in gram[1:-1], gram  # a space only at the edges: never spans two words
        assert any(gram in p for p in padded), gram
    # Every word contributes its full padded form when it is short enough.
    for t in tokens:
        if len(t) + 2 <= high:
            assert f" {t} " in grams


@pytest.mark.parametrize(
    ("text", "grams"),
    [
        ("you are an idiot", ["you", "are", "an", "idiot", "you are", "are an", "an idiot"]),
        ("idiot", ["idiot"]),
        ("", []),
        ("why ?", ["why", "?", "why ?"]),
        ("wow !", ["wow", "!", "wow !"]),
        ("don't care", ["don't", "care", "don't care"]),
        ("hello, world.", ["hello", "world", "hello world"]),  # other punctuation is not a token
        ("xurl xdomainbitly", ["xurl", "xdomainbitly", "xurl xdomainbitly"]),
    ],
)
def test_word_ngrams_examples(text, grams):
    assert word_ngrams(text) == grams


def test_bang_and_question_are_their_own_tokens():
    assert words("what?!") == ["what", "?", "!"]


@given(normalized_texts)
def test_word_ngram_properties(text):
    tokens = words(text)
    grams = word_ngrams(text)
    assert grams[: len(tokens)] == tokens
    bigrams = grams[len(tokens) :]
    assert len(bigrams) == max(len(tokens) - 1, 0)
    for i, bigram in enumerate(bigrams):
        assert bigram == f"{tokens[i]} {tokens[i + 1]}"
    assert all(len(g.split()) in WORD_NGRAMS for g in grams)


@given(st.lists(normalized_words, max_size=8))
def test_packed_char_ngrams_are_the_char_ngrams_of_each_token(tokens):
    from collections import Counter

    from moderation.features import pack_ngram, packed_char_ngrams

    owners, keys = packed_char_ngrams(tokens)
    assert len(set(map(pack_ngram, char_ngrams_of_word("ab")))) == len(char_ngrams_of_word("ab"))
    for i, token in enumerate(tokens):
        assert Counter(keys[owners == i].tolist()) == Counter(map(pack_ngram, char_ngrams_of_word(token)))
    assert owners.size == sum(len(char_ngrams_of_word(t)) for t in tokens)


def test_only_short_words_and_spans_are_kept_in_the_caches():
    from moderation.features import LONGEST_CACHED, cache_short

    calls = []
    lengths = cache_short(lambda text: calls.append(text) or len(text), maxsize=8)
    short, long = "w" * LONGEST_CACHED, "w" * (LONGEST_CACHED + 1)
    assert [lengths(short), lengths(short), lengths(long), lengths(long)] == [len(short), len(short), len(long), len(long)]
    assert calls == [short, long, long]  # a long argument could hold megabytes per entry: computed afresh each time
