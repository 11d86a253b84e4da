"""Behaviour of a model trained on the real public datasets (invariance, direction, minimum function)."""

from __future__ import annotations

import pytest

from conftest import public_data_or_skip
from moderation import bundle
from moderation.scorer import FastScorer
from training.pipeline import run_training
from training.train import TrainingConfig

# Floors far below what the model measures (see the training report); a broken
# normaliser, label mapping or calibration falls through them.
DEV_AUC_FLOORS = {
    ("youtube_spam", "spam"): 0.95,
    ("sms_spam", "spam"): 0.95,
    ("jigsaw_toxic_binary_sample", "toxic"): 0.90,
    ("davidson_hate_offensive", "toxic"): 0.90,
    ("impermium_insults", "toxic"): 0.80,
    ("olid_offenseval2019", "toxic"): 0.72,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data_dir = public_data_or_skip()
    out = tmp_path_factory.mktemp("real") / "model"
    config = TrainingConfig(kind="logreg", max_word_features=60_000, max_char_features=100_000)
    manifest, rows = run_training(data_dir, out, config=config)
    return bundle.load(out), manifest, rows


@pytest.fixture(scope="module")
def scorer(trained):
    return FastScorer(trained[0])


def test_real_data_training_meets_dev_floors(trained):
    _, manifest, rows = trained
    measured = {(r["dataset"], r["label"]): r["roc_auc"] for r in rows}
    for key, floor in DEV_AUC_FLOORS.items():
        assert measured[key] >= floor, (key, measured[key])
    used = {d["name"] for d in manifest["datasets"]}
    assert {"youtube_spam", "jigsaw_toxic_binary_sample", "examples"} <= used


def test_obfuscated_insults_score_alike(scorer):
    plain = scorer.score("you are a stupid idiot")["toxic"]
    for disguised in ("you are a stuuupid 1d10t", "you are a s t u p i d i.d.i.o.t", "you are a stu\u200bpid іdіоt"):
        assert scorer.score(disguised)["toxic"] == pytest.approx(plain, abs=0.05), disguised


def test_a_link_shortener_raises_spam(scorer):
    base = "Interesting take on the budget, I wrote more about it"
    before, after = scorer.score(base)["spam"], scorer.score(base + " here: bit.ly/3xYz9")["spam"]
    assert after > before + 0.05 and after > 3 * before, (before, after)


def test_an_insult_raises_toxicity(scorer):
    base = "I disagree with the council's decision on the bridge"
    before, after = scorer.score(base)["toxic"], scorer.score(base + ", you moron")["toxic"]
    assert after > before + 0.05 and after > 3 * before, (before, after)


@pytest.mark.parametrize("text", [
    "Thank you for this thorough report on the school funding changes.",
    "The match last night was fantastic, what a second half from the midfield.",
    "I think the council should publish the full consultation responses.",
])
def test_clean_comments_score_low(scorer, text):
    scores = scorer.score(text)
    assert scores["toxic"] < 0.2 and scores["spam"] < 0.2, scores


@pytest.mark.parametrize("text,label", [
    ("Make $500 a day from home!!! Whatsapp me +1 555 0134 or visit easy-cash-now.xyz", "spam"),
    ("SUBSCRIBE to my channel for free giveaways, check out my channel!!!", "spam"),
    ("You are a worthless piece of shit and everybody hates you", "toxic"),
    ("shut up you fucking idiot", "toxic"),
])
def test_obvious_bad_comments_score_high(scorer, text, label):
    assert scorer.score(text)[label] > 0.6
