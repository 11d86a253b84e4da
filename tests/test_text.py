"""Properties and examples for `moderation.text`: normalisation and the spans explanations use."""

from __future__ import annotations

import re
import string
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.text import normalize, word_spans

# Unicode tables (and unidecode's per-block tables) load lazily: they must not count against
# Hypothesis's per-example deadline.
no_deadline = settings(deadline=None)

ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")

# ASCII character -> non-Latin characters a reader takes for it (Cyrillic and Greek).
HOMOGLYPHS = {
    "a": "а", "c": "с", "e": "е", "h": "һ", "i": "і", "j": "ј", "o": "оο", "p": "р", "s": "ѕ", "x": "х", "y": "у",
    "A": "АΑ", "B": "ВΒ", "C": "С", "E": "ЕΕ", "H": "НΗ", "K": "КΚ", "M": "МΜ", "N": "Ν",
    "O": "ОΟ", "P": "РΡ", "T": "ТΤ", "X": "ХΧ", "Y": "Υ", "Z": "Ζ",
}  # fmt: skip

ascii_words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
ascii_sentences = st.lists(ascii_words, min_size=1, max_size=6).map(" ".join)
# Text that exercises the interesting branches far more often than st.text() alone.
tricky_chars = st.sampled_from(
    list("aAbBxXzZ019 .-_*!|$@:/<>&;#\t\n") + list(ZERO_WIDTH) + ["http://", "www.", ".com", "bit.ly/", "RT ", "@USER", "&amp;", "<br />", "а", "ο", "Ｆ", "\u0301"]
)
tricky_text = st.lists(tricky_chars | st.characters(codec="utf-8"), max_size=60).map("".join)  # lone surrogates: see test_lone_surrogates_are_dropped_silently


def assert_well_formed(out: str) -> None:
    assert out.isascii(), out
    assert out == out.lower(), out
    assert out == out.strip(), repr(out)
    assert "  " not in out, repr(out)
    assert not re.search(r"[\x00-\x1f\x7f]", out), repr(out)  # control chars, tabs, newlines
    assert not any(ch in out for ch in ZERO_WIDTH), repr(out)


def without_known_bugs(out: str) -> str:
    # A lone " xcaps" is a known bug pinned by test_xcaps_alone_has_no_leading_space;
    # hide it here so the properties below stay deterministic and keep checking the rest.
    return "xcaps" if out == " xcaps" else out


# --- structural properties -------------------------------------------------------------


@no_deadline
@given(st.text())
def test_normalize_never_raises_and_output_is_clean(text):
    assert_well_formed(without_known_bugs(normalize(text)))


@no_deadline
@given(tricky_text)
def test_normalize_output_is_clean_on_obfuscation_heavy_text(text):
    assert_well_formed(without_known_bugs(normalize(text)))


@no_deadline
@given(st.text())
def test_normalized_output_normalizes_cleanly_again(text):
    # Normalised output is plain lowercase ASCII: feeding it back must not raise and must stay clean.
    assert_well_formed(without_known_bugs(normalize(normalize(text))))


# --- de-obfuscation properties ----------------------------------------------------------


@no_deadline
@given(data=st.data(), words=st.lists(ascii_words, min_size=1, max_size=5))
def test_zero_width_characters_inside_a_word_change_nothing(data, words):
    index = data.draw(st.integers(0, len(words) - 1))
    word = list(words[index])
    insertions = data.draw(st.lists(st.tuples(st.integers(0, len(word)), st.sampled_from(ZERO_WIDTH)), min_size=1, max_size=6))
    for position, char in sorted(insertions, reverse=True):
        word.insert(position, char)
    disguised = words[:index] + ["".join(word)] + words[index + 1 :]
    assert normalize(" ".join(disguised)) == normalize(" ".join(words))


@pytest.mark.parametrize("char", ZERO_WIDTH)
def test_each_zero_width_character_is_dropped(char):
    assert normalize(f"id{char}i{char}ot") == "idiot"


@no_deadline
@given(data=st.data(), text=st.text(alphabet=string.ascii_letters + string.digits + " .,!?'", min_size=1, max_size=60))
def test_homoglyph_substitution_gives_the_ascii_output(data, text):
    disguised = "".join(
        data.draw(st.sampled_from(HOMOGLYPHS[ch])) if ch in HOMOGLYPHS and data.draw(st.booleans()) else ch for ch in text
    )
    assert normalize(disguised) == normalize(text)


@pytest.mark.parametrize(
    ("disguised", "expected"),
    [
        ("уоu аrе stuрid", "you are stupid"),  # Cyrillic у о а р е
        ("сheар ріlls", "cheap pills"),  # Cyrillic с е а р і
        ("ехtrа саsh", "extra cash"),  # Cyrillic х а с
        ("gοοd", "good"),  # Greek omicron
        ("ΒΕΤ ΝΟW", "bet now"),  # Greek capitals
    ],
)
def test_homoglyph_examples(disguised, expected):
    assert not disguised.isascii()
    assert normalize(disguised) == expected


@no_deadline
@given(st.text(alphabet=string.ascii_letters + string.digits + " ", min_size=1, max_size=60))
def test_fullwidth_letters_and_digits_give_the_ascii_output(text):
    fullwidth = "".join("\u3000" if ch == " " else chr(ord(ch) + 0xFEE0) for ch in text)
    assert not fullwidth.isascii()
    assert normalize(fullwidth) == normalize(text)


# --- examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("f u c k you", "fuck"),
        ("what the f  u  c  k", "fuck"),
        ("F.U.C.K off", "fuck"),
        ("you are d u m b", "dumb"),
        ("d-u-m-b", "dumb"),
        ("s*h*i*t", "shit"),
    ],
)
def test_spaced_and_separated_letters_join_into_one_word(text, word):
    assert word in normalize(text).split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("i.d.i.o.t", "idiot"),
        ("I.D.I.O.T", "idiot"),
        ("1d10t", "idiot"),
        ("you 1d10t", "you idiot"),
        ("sh1t", "shit"),
        ("a$$hole", "asshole"),
        ("h3llo!!!", "hello!"),
        ("stuuupid", "stupid"),
        ("soooo stuuuupid", "so soo stupid"),  # "o" may be doubled: both readings
        ("gooood job", "god good job"),
        ("killllll", "kil kill"),
        ("fuuuckkk", "fuck"),  # neither "u" nor "k" is doubled in English
        ("u r a d u m b", "u r a dumb uradumb"),  # every leading one-letter word is read as one
    ],
)
def test_deobfuscation_examples(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("the referee is a m o r o n", "moron"),  # the article before the run is read as a word too
        ("u r a m0r0n", "moron"),  # a run stops before a l33t word instead of swallowing its first letter
        ("a s s h o l e", "asshole"),
        ("what an @sshole", "asshole"),  # "@" for "a", not a handle
        ("you @ss", "ass"),
    ],
)
def test_obfuscations_around_spaced_letters_and_at_signs(text, word):
    assert word in normalize(text).split()


@pytest.mark.parametrize("text", ["covid19", "2015", "b4", "see you b4 the 2015 final", "mp3 player", "top 10 list", "route 66"])
def test_numbers_are_not_read_as_leet(text):
    assert normalize(text) == text


@pytest.mark.parametrize(("text", "stem"), [("wow!!!", "wow"), ("great game!!!", "great game"), ("you idiot!!", "you idiot"), ("really||", "really")])
def test_trailing_emphasis_is_not_turned_into_letters(text, stem):
    out = normalize(text)
    assert out.startswith(stem)
    assert out[len(stem) :].strip("!|") == "", out  # no "i" or "l" glued on


def test_repeated_letters_collapse_but_doubles_stay():
    assert normalize("stuuupid") == "stupid"
    assert normalize("good book") == "good book"


@pytest.mark.parametrize(("stretched", "word"), [("gooooood", "good"), ("asssss", "ass"), ("killll", "kill"), ("seeeee", "see"), ("stuuuupid", "stupid")])
def test_a_stretched_word_keeps_the_reading_with_its_double_letter(stretched, word):
    assert word in normalize(stretched).split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("line one<br />line two", "line one line two"),
        ("line one<br/>line two<BR>", "line one line two"),
        ("<b>bold</b> move", "bold move"),
        ("fish &amp; chips", "fish & chips"),
        ("&quot;quoted&quot;", '"quoted"'),
    ],
)
def test_html_remnants_are_removed(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "domain", "shortener"),
    [
        ("read https://www.example.com/a/b?c=1 now", "xdomainexamplecom", False),
        ("see www.bbc.co.uk/news", "xdomainbbccouk", False),
        ("go to example.org today", "xdomainexampleorg", False),
        ("cheap pills at bit.ly/abc123", "xdomainbitly", True),
        ("http://tinyurl.com/xyz", "xdomaintinyurlcom", True),
        ("HTTPS://BIT.LY/Free", "xdomainbitly", True),
        ("She loves Vena. trojmiasto.pl/Vena-Bus-Taxi-o59253.html", "xdomaintrojmiastopl", False),  # unlisted TLD, with a path
        ('<a href="http://rover.ebay.com/rover/1?x=1">cheap</a>', "xdomainroverebaycom", False),
        ("&lt;A HREF='https://bit.ly/3x'&gt;click&lt;/a&gt;", "xdomainbitly", True),
        ('<a class="x" href=spam.example.com/offer target=_blank>deal</a>', "xdomainspamexamplecom", False),
        ("cheap rooms at casino.example.pl/x", "xdomaincasinoexamplepl", False),
    ],
)
def test_urls_become_marker_tokens(text, domain, shortener):
    tokens = normalize(text).split()
    assert "xurl" in tokens
    assert domain in tokens
    assert ("xshortener" in tokens) is shortener
    assert not any("/" in t or "http" in t for t in tokens), tokens


@pytest.mark.parametrize("text", ["and/or", "e.g. this", "rated 4.5/5", "i.e. the end.So what", "a.b", "<b>bold</b> claim", "<a name=top>here</a>",
                                  "Node.js/Express", "Vue.js/React", "B.Sc/M.Sc", "the end.And/or maybe", "It was great.Really/truly",
                                  "yes.No/maybe", "Mr.Smith/Jones", "St.Paul/Minneapolis", "Ft.Worth/Dallas", "Jan.Feb/March", "page.html/"])
def test_things_that_are_not_links_stay_words(text):
    assert "xurl" not in normalize(text).split()


@pytest.mark.parametrize("text", ["write to jane.doe@example.org", "Contact: JOHN_SMITH+offers@mail.example.co.uk now"])
def test_emails_become_xemail(text):
    tokens = normalize(text).split()
    assert "xemail" in tokens
    assert not any("@" in t for t in tokens)
    assert "jane" not in tokens and "john_smith" not in tokens


@pytest.mark.parametrize("text", ["call +44 7700 900123 now", "whatsapp +1 555 0123 456", "ring (020) 7946-0958", "txt 07700900123"])
def test_phone_numbers_become_xphone(text):
    tokens = normalize(text).split()
    assert "xphone" in tokens
    assert not any(ch.isdigit() for t in tokens for ch in t), tokens


@pytest.mark.parametrize("text", ["in 2015 we won 3-1", "covid19", "12345"])
def test_short_numbers_are_not_phones(text):
    assert "xphone" not in normalize(text)


@pytest.mark.parametrize(
    ("text", "caps"),
    [
        ("THIS IS AN ABSOLUTE DISGRACE", True),
        ("YOU ARE ALL IDIOTS and fools", True),
        ("This is a perfectly normal sentence", False),
        ("GOAL!!!", False),  # fewer than 8 letters
        ("I read the BBC and ITV coverage today", False),
    ],
)
def test_shouting_appends_xcaps(text, caps):
    out = normalize(text)
    assert out.endswith(" xcaps") is caps
    assert out.count("xcaps") == int(caps)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("RT @someone: great goal", "great goal"),
        ("rt @some_one great goal", "great goal"),
        ("@editor you forgot the source", "you forgot the source"),
        ("RT great goal", "great goal"),
    ],
)
def test_twitter_artefacts_are_removed(text, kept):
    out = normalize(text)
    words = re.findall(r"[a-z0-9_]+", out)
    assert "rt" not in words
    assert "someone" not in words and "some_one" not in words and "editor" not in words
    assert kept in out


def test_words_containing_rt_are_kept():
    assert normalize("smart art report") == "smart art report"


def test_empty_and_blank_text():
    assert normalize("") == ""
    assert normalize(" \t\n\u200b ") == ""


# --- regressions: bugs found by these tests, now fixed ------------------------------------


@pytest.mark.parametrize("text", ["in 1000 years", "the year 2000", "999 problems"])
def test_numbers_with_repeated_digits_stay(text):
    assert normalize(text) == text


@pytest.mark.parametrize("disguised", ["ІDІОТ", "ΙDΙΟΤ"])
def test_capital_i_homoglyphs(disguised):
    assert normalize(disguised) == normalize("IDIOT") == "idiot"


@pytest.mark.parametrize("text", ["@ABCDEFGHIJ", "RT @BREAKINGNEWS"])
def test_xcaps_alone_has_no_leading_space(text):
    assert_well_formed(normalize(text))


def test_lone_surrogates_are_dropped_silently():
    # pytest runs with filterwarnings=error, so the RuntimeWarning surfaces as an exception.
    assert normalize("nice \ud83d game") == "nice game"


# --- pathological input -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 1_000_000, id="1MB-one-char"),
        pytest.param("a " * 500_000, id="1MB-a-space-pairs"),
        pytest.param("1" * 1_000_000, id="1MB-digits"),
        pytest.param("a." * 500_000, id="1MB-dotted-letters"),
        pytest.param("a" + "\u0301" * 100_000, id="100k-combining-accents"),
    ],
)
def test_pathological_input_is_linear(text):
    normalize("warm up the cached tables: é")
    start = time.perf_counter()
    out = normalize(text)
    assert time.perf_counter() - start < 10
    assert_well_formed(out)


# --- word_spans -------------------------------------------------------------------------


@no_deadline
@given(st.text())
def test_spans_point_into_the_original_text(text):
    spans = word_spans(text)
    covered = set()
    previous_end = 0
    for span in spans:
        assert text[span.start : span.end] == span.text
        assert span.text and not span.text[0].isspace() and not span.text[-1].isspace()
        assert span.start >= previous_end  # in order, never overlapping
        previous_end = span.end
        covered.update(range(span.start, span.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


@no_deadline
@given(tricky_text)
def test_spans_point_into_the_original_text_on_tricky_text(text):
    for span in word_spans(text):
        assert text[span.start : span.end] == span.text


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prefix=st.lists(st.text(alphabet=string.ascii_letters, min_size=2, max_size=6), max_size=3),
    letters=st.lists(st.sampled_from(string.ascii_letters), min_size=3, max_size=10),
    gaps=st.lists(st.text(alphabet=" ", min_size=1, max_size=3), min_size=10, max_size=10),  # as normalize joins them
    suffix=st.lists(st.text(alphabet=string.ascii_letters, min_size=2, max_size=6), max_size=3),
)
def test_spaced_letters_merge_into_one_span(prefix, letters, gaps, suffix):
    head = "".join(word + " " for word in prefix)
    run = letters[0] + "".join(gap + letter for gap, letter in zip(gaps, letters[1:]))
    text = head + run + "".join(" " + word for word in suffix)
    spans = word_spans(text)
    assert len(spans) == len(prefix) + 1 + len(suffix)
    merged = spans[len(prefix)]
    assert (merged.start, merged.end) == (len(head), len(head) + len(run))
    assert merged.text == run
    assert [s.text for s in spans[: len(prefix)]] == prefix
    assert [s.text for s in spans[len(prefix) + 1 :]] == suffix


@pytest.mark.parametrize(
    ("text", "run"),
    [
        ("the ref is an i d i o t!", "i d i o t!"),
        ("an i\u00a0d\u00a0i\u00a0o\u00a0t here", "i\u00a0d\u00a0i\u00a0o\u00a0t"),
        ("what a f . u . c . k", "a f . u . c . k"),
        ("F U C K off", "F U C K"),
    ],
)
def test_a_spaced_run_is_one_span_as_normalize_joins_it(text, run):
    spans = word_spans(text)
    assert run in [s.text for s in spans]
    assert normalize(run) in normalize(text)


def test_spaced_letters_example():
    text = "you f u c k ing idiot"
    spans = word_spans(text)
    assert [s.text for s in spans] == ["you", "f u c k", "ing", "idiot"]
    assert (spans[1].start, spans[1].end) == (4, 11)


@pytest.mark.parametrize("text", ["a b", "I am a b-side fan", "x y 1 z"])
def test_fewer_than_three_single_letters_do_not_merge(text):
    assert [s.text for s in word_spans(text)] == text.split()


@no_deadline
@given(
    st.lists(st.tuples(st.sampled_from(["a", "é", "1", ".", "ab"]), st.sampled_from([" ", "  ", "   ", "    ", "\t", "\u00a0"])), max_size=12).map(
        lambda pieces: "".join(word + gap for word, gap in pieces)
    )
    | tricky_text
)
def test_the_shortcut_past_merging_never_changes_the_spans(text):
    from moderation.text import _NON_SPACE, Span, _merge_spaced_letters

    raw = [Span(m.start(), m.end(), m.group(0)) for m in _NON_SPACE.finditer(text)]
    assert word_spans(text) == _merge_spaced_letters(text, raw)


@pytest.mark.parametrize(("text", "expected"), [
    ("call 0800 123 4567 today", ["call", "0800 123 4567", "today"]),
    ("txt +44 7700 900123 now", ["txt", "+44 7700 900123", "now"]),
    ("ring (020) 7946-0958.", ["ring", "(020) 7946-0958."]),
    ("call 08001234567 today", ["call", "08001234567", "today"]),
    ("scores 3 2 1 and 10 20", ["scores", "3", "2", "1", "and", "10", "20"]),  # too few digits for a phone
])
def test_a_phone_number_written_with_spaces_is_one_span(text, expected):
    spans = word_spans(text)
    assert [s.text for s in spans] == expected
    assert all(text[s.start : s.end] == s.text for s in spans)
