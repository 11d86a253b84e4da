"""Near-duplicate grouping and the desk's text highlighting: pure functions."""

from moderation.desk.render import drivers, highlight
from moderation.similar import group_similar

WAVE = [
    "Earn $900 weekly working from home, visit www.jobs-now.example today!",
    "Earn $900 weekly working from home!! visit www.jobs-now.example today",
    "EARN $900 WEEKLY WORKING FROM HOME visit www.jobs-now.example TODAY",
    "Earn $9OO weekly w0rking from h0me, visit www.jobs-now.example today!",
    "Earn $900 weekly wоrking frоm hоme, visit www.jobs-now.example today!",  # Cyrillic o
]
OTHERS = [
    "The council vote on the budget is next Tuesday.",
    "I think the referee got the penalty decision wrong.",
    "Does anyone know when the bridge reopens?",
]


def test_a_spam_wave_with_small_changes_is_one_group_and_different_comments_stay_apart():
    groups = group_similar(OTHERS[:2] + WAVE + OTHERS[2:], 0.8)
    assert groups == [[2, 3, 4, 5, 6]]


def test_nothing_to_group():
    assert group_similar([], 0.8) == [] and group_similar(["only one"], 0.8) == []
    assert group_similar(["", ""], 0.8) == []
    assert group_similar(OTHERS, 0.8) == []


def test_highlight_keeps_every_character_and_marks_only_the_named_labels():
    text = "you idiot, buy pills"
    terms = [{"start": 4, "end": 9, "label": "toxic", "weight": 2.0}, {"start": 15, "end": 20, "label": "spam", "weight": 1.0},
             {"start": 4, "end": 9, "label": "insult", "weight": 1.5}, {"start": 50, "end": 60, "label": "spam", "weight": 9.0}]
    segments = highlight(text, terms)
    assert "".join(s.text for s in segments) == text
    assert [(s.text, s.label) for s in segments if s.label] == [("idiot", "toxic"), ("pills", "spam")]
    only_spam = highlight(text, terms, {"spam"})
    assert [(s.text, s.label) for s in only_spam if s.label] == [("pills", "spam")]


def test_the_labels_worth_highlighting_are_those_the_reasons_name_or_the_model_finds_likely():
    scores = {"spam": 0.08, "toxic": 0.7, "insult": 0.2}
    assert drivers(scores, ["spam score 0.08 is at or above the review threshold 0.05"]) == {"spam", "toxic"}
    assert drivers(scores, []) == {"toxic"}


def test_groups_are_kept_for_the_same_texts_and_recomputed_when_any_text_changes(monkeypatch):
    import moderation.similar as similar

    similar.forget_groups()
    fits = []
    real = similar.TfidfVectorizer.fit_transform
    monkeypatch.setattr(similar.TfidfVectorizer, "fit_transform", lambda self, texts: fits.append(1) or real(self, texts))
    texts = OTHERS[:2] + WAVE + OTHERS[2:]
    first = group_similar(texts, 0.8)
    first[0].append(99)  # a caller changing its answer cannot change the next caller's
    assert group_similar(list(texts), 0.8) == [[2, 3, 4, 5, 6]] and len(fits) == 1
    decided = texts[:3] + texts[4:]  # one comment of the wave decided: a new set of held texts
    assert group_similar(decided, 0.8) == [[2, 3, 4, 5]] and len(fits) == 2
    assert group_similar(texts, 0.7) == [[2, 3, 4, 5, 6]] and len(fits) == 3  # another threshold
    assert group_similar(["ab", "c"], 0.8) == [] and group_similar(["a", "bc"], 0.8) == [] and len(fits) == 5  # no key collision
