"""Language detection: the identifier's answers, and the shortcut for plainly English text."""

from __future__ import annotations

import re
import unicodedata

import pytest

from moderation import language

# Readers' comments as they come, short and long, in the languages a European news site sees.
OTHER_LANGUAGES = {
    "fr": [
        "Je pense que le conseil municipal a pris une très mauvaise décision sur ce pont.",
        "Encore un article qui oublie les habitants de la banlieue.",
        "C'est une honte. Les élus nous ont promis des logements et nous attendons toujours, "
        "pendant que les loyers augmentent chaque année et que personne ne fait rien pour les familles.",
        "Il faut lire le rapport en entier avant de juger, mais je trouve que le journaliste a bien résumé le problème.",
    ],
    "de": [
        "Das ist doch alles nur Symbolpolitik, die uns gar nichts bringt.",
        "Ich wohne seit zwanzig Jahren hier und die Straße war noch nie so schlecht.",
        "Guter Artikel. Wer die Zahlen aus dem letzten Jahr kennt, weiß, dass die Stadt das Geld längst "
        "für andere Projekte ausgegeben hat und jetzt wieder die Bürger zahlen sollen.",
        "Warum wird nicht erwähnt, dass der Bürgermeister selbst im Aufsichtsrat sitzt? Das ist ein Skandal.",
    ],
    "es": [
        "No estoy de acuerdo con el autor, pero el artículo está bien escrito.",
        "¿Alguien sabe cuándo empiezan las obras en la avenida principal?",
        "Llevo años diciendo que el transporte público en esta ciudad es un desastre, y cada gobierno "
        "promete lo mismo antes de las elecciones y luego se olvida de nosotros.",
        "Qué vergüenza de gestión. Los vecinos merecemos respuestas claras y no más excusas.",
    ],
    "it": [
        "Non capisco perché il comune non abbia ancora risposto ai cittadini.",
        "Articolo molto interessante, grazie per averlo scritto con tanta chiarezza.",
        "Abito in questo quartiere da quando ero bambino e non ho mai visto una situazione così grave: "
        "le strade sono piene di buche e nessuno si prende la responsabilità.",
    ],
    "pt": [
        "Concordo plenamente com o que foi dito, a cidade precisa de mais escolas.",
        "Isso é um absurdo, o governo não pode aumentar os impostos outra vez sem explicar para onde vai o dinheiro.",
        "Parabéns pela reportagem, finalmente alguém falou sobre o problema da água no bairro.",
    ],
    "nl": [
        "Ik ben het helemaal eens met de schrijver van dit stuk.",
        "Waarom duurt het zo lang voordat de gemeente iets doet aan de verkeersveiligheid bij de school? "
        "Het is wachten op een ongeluk en iedereen weet het.",
        "Goed artikel, maar de cijfers over de woningmarkt zijn niet helemaal juist.",
    ],
    "sv": [
        "Jag håller inte med om att skatterna måste höjas igen.",
        "Det här är den bästa artikeln jag har läst om bostadskrisen på länge, tack för att ni tar upp det.",
    ],
    "da": [
        "Jeg synes, at kommunen skulle have lyttet til borgerne for længe siden.",
        "Det er en rigtig god artikel, men man glemmer helt de ældre, som ikke kan tage cyklen hver dag.",
    ],
    "pl": [
        "Nie zgadzam się z autorem, ale to jest ważny temat dla naszego miasta.",
        "Mieszkam tu od dziesięciu lat i jeszcze nigdy nie widziałem tak złego stanu dróg.",
    ],
    "id": [
        "Saya setuju dengan pendapat penulis, pemerintah harus segera bertindak.",
        "Berita ini sangat penting untuk warga yang tinggal di dekat sungai karena banjir bisa datang kapan saja.",
    ],
    "pcm": [  # Nigerian Pidgin: English words, another language
        "Wetin dey happen for dis country? Dem no go gree make we get light, na so dem dey do us every time.",
        "Una don see wetin the governor talk? E no make sense at all, people dey suffer for this state.",
    ],
    "tl": [
        "Grabe naman yung traffic dito sa amin, sana ayusin na nila yung kalsada bago pa lumala.",
    ],
    "tr": [
        "Bu haberi okuyunca çok üzüldüm, belediye neden hiçbir şey yapmıyor?",
    ],
}


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


NON_ENGLISH = [(code, text) for code, texts in OTHER_LANGUAGES.items() for text in texts]
# Typed without accents (phones, keyboards): ASCII-only text that must still reach the identifier.
NON_ENGLISH_ASCII = [(code, _without_accents(text)) for code, text in NON_ENGLISH if code in ("fr", "de", "es", "it", "pt", "nl")]
MIXED = [  # another language quoting English, and English words in another language's sentence
    ("de", "Der Minister sagte wörtlich „we will see what the people think“, aber das ist doch keine Antwort auf unsere Fragen."),
    ("fr", "Le slogan « make it happen » ne veut rien dire quand les trains ne circulent pas depuis trois semaines."),
    ("es", "El alcalde dijo que the project is on track, pero los vecinos seguimos sin agua caliente desde hace un mes."),
    ("tl", "Sana ayusin na nila yung kalsada, because the people are suffering every day dito sa amin."),  # 5 of 16 words English
    ("id", "Jalan di depan rumah saya rusak, and the council has done nothing about it since last year, tidak ada yang peduli."),
]
ENGLISH = [
    "I think this is the best article I have read about the budget.",
    "Why are they closing the library when it is the only place the kids can go?",
    "Great reporting! I didn't know that the council had already spent the money.",
    "I don't agree with everything in this piece, but the point about housing targets being missed every year is hard to argue with.",
    "We have lived on this street for twenty years and the traffic has never been this bad. Something has to be done before "
    "someone gets hurt, and the council should stop pretending that the new bypass will fix it, because it won't.",
]


@pytest.mark.parametrize(("code", "text"), NON_ENGLISH + NON_ENGLISH_ASCII + MIXED)
def test_other_languages_always_reach_the_identifier(code, text):
    assert not language.plainly_english(text)
    detected, confidence = language.detect(text, ["en"])
    assert (detected, confidence) == language.detect(text)  # the identifier's own answer
    if (code, text) not in MIXED:
        assert detected == code  # the sentences are what they claim to be


@pytest.mark.parametrize("text", ENGLISH)
def test_plainly_english_text_skips_the_identifier_only_when_english_is_accepted(text, monkeypatch):
    assert language.plainly_english(text)
    assert language.detect(text)[0] == "en"  # what the identifier says of it
    assert language.detect(text, ["de", "en"]) == ("en", 1.0)
    monkeypatch.setattr(language, "_identifier", lambda: pytest.fail("the identifier was asked"))
    assert language.detect(text, ["en"]) == ("en", 1.0)


def test_english_still_goes_to_the_identifier_where_english_is_not_accepted():
    text = ENGLISH[1]
    detected, confidence = language.detect(text, ["de"])
    assert (detected, confidence) == language.detect(text) and detected == "en" and confidence != 1.0


@pytest.mark.parametrize("text", [
    "The the the Café très bien, and the and the people know it",  # an accented letter: not plainly English
    "Thanks a lot, that was a lovely read",  # too few of the listed words (3 needed)
    "Brexit Johnson Westminster Sunak Starmer parliament vote tonight again campaign leaflets flyers posters ballots turnout "
    "polls seats majority the and that",  # the listed words are under a fifth of the words
])
def test_not_plainly_english(text):
    assert not language.plainly_english(text)


def test_too_short_to_tell():
    assert language.detect("ok lol 123 ___ !!!", ["en"]) == (None, 0.0)
    assert language.detect("the and that this with i", ["en"]) == (None, 0.0)  # 19 letters: under MIN_LETTERS
    assert language.detect("the and that this with it", ["en"]) == ("en", 1.0)  # 20


@pytest.mark.parametrize("text", [
    "", "a" * 19, "a" * 20, "_" * 40, "1234567890" * 5, "²³¹½ⅧⅨ" * 5 + "abc", "é" * 20, "ab_cd-ef 12 gh" * 3,
    "日本語のテキスト" * 3, "\u0660\u0661" * 30 + "x" * 19, "🙂" * 30 + "z" * 20, "x\u0301" * 20,
])
def test_letters_are_counted_as_before(text):
    """The letter count (a regex match, no list) agrees with counting every letter as the regex [^\\W\\d_] finds it."""
    enough = len(re.findall(r"[^\W\d_]", text)) >= language.MIN_LETTERS
    assert (language.detect(text, ["en"]) != (None, 0.0)) == enough


def test_the_rules_hold_english_where_it_is_not_accepted_and_publish_it_where_it_is(make_api):
    from tests.test_rules import PUBLISH, posted

    text = ENGLISH[3]
    assert posted(make_api(THRESHOLDS=PUBLISH, LANGUAGES=["en"]), text)["status"] == "published"
    held = posted(make_api(THRESHOLDS=PUBLISH, LANGUAGES=["de"]), text)
    assert held["status"] == "pending" and "'en'" in held["reasons"][-1]


def test_letters_are_counted_as_before_on_random_mixes():
    import random

    rng = random.Random(7)
    pool = ["a", "Z", "é", "1", "_", " ", "²", "½", "\u0663", "🙂", "\u0301", "日", "-", "ß", "\n"]
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randrange(60)))
        assert (language._ENOUGH_LETTERS.match(text) is not None) == (len(re.findall(r"[^\W\d_]", text)) >= language.MIN_LETTERS), text
