"""The out-of-core training path: hashed features, SGD over chunks, served like any other bundle."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import AWKWARD_TEXTS as TEXTS
from sklearn.feature_extraction.text import HashingVectorizer
from sqlalchemy.orm import Session

from moderation import bundle, labels
from moderation.assessor import Assessor
from moderation.cli import cli
from moderation.db import make_engine
from moderation.features import HashedVocabulary
from moderation.schema import AuditEntry, Comment
from moderation.scorer import FastScorer
from training.datasets import Example, default_data_dir, load_dataset
from training.streaming import StreamingConfig, cell_weights, in_chunks, interleave, site_chunks, train_streaming
from training.train import label_rows, source_weights

SMALL = StreamingConfig(n_features=2**16, epochs=3)


def synthetic(n: int, seed: int) -> list[Example]:
    """Rows from word lists: spam sells, toxic insults, clean talks about the news; two sources."""
    rng = random.Random(seed)
    clean = "council budget tram harbour library school vote report park bridge plan thanks article".split()
    spam = "cheap pills casino bonus crypto profit click www.deals.example earn cash".split()
    toxic = "idiot moron stupid loser pathetic clown trash".split()
    rows = []
    for i in range(n):
        kind = rng.choice(["clean", "clean", "spam", "toxic"])
        words = rng.sample(clean, 5) + (rng.sample(spam, 3) if kind == "spam" else rng.sample(toxic, 2) if kind == "toxic" else [])
        rng.shuffle(words)
        rows.append(Example(" ".join(words), {"spam": int(kind == "spam"), "toxic": int(kind == "toxic")}, f"synthetic_{i % 2}", "s", "train"))
    return rows


@pytest.fixture(scope="module")
def rows() -> list[Example]:
    return load_dataset("examples", default_data_dir()) + synthetic(400, seed=1)


@pytest.fixture(scope="module")
def streamed(rows):
    return train_streaming(in_chunks(rows, 64, seed=0), streaming=SMALL)


def test_hashed_vocabulary_gives_the_hashing_vectorizer_columns():
    rng = random.Random(0)
    grams = ["".join(rng.choice("abcdefghij xyz'!?") for _ in range(rng.randint(1, 8))) for _ in range(3000)]
    vectorizer = HashingVectorizer(analyzer=lambda text: [text], n_features=2**12, alternate_sign=False, norm=None)
    vocabulary = HashedVocabulary(2**12)
    assert [vocabulary.get(g) for g in grams] == [vectorizer.transform([g]).indices[0] for g in grams]


def test_cell_weights_are_source_weights_from_counts(rows):
    index, y = label_rows(rows, "spam")
    cells = cell_weights(Counter((rows[i].source, int(v)) for i, v in zip(index, y)), prior=0.15)
    expected = source_weights(rows, index, y, prior=0.15)
    np.testing.assert_allclose([cells[(rows[i].source, int(v))] for i, v in zip(index, y)], expected, rtol=1e-12)


def test_streaming_model_learns_and_serves_like_any_bundle(streamed, tmp_path):
    model, facts = streamed
    assert model.labels[:2] == ["spam", "toxic"] and facts["spam"]["rows"] > 300
    held_out = synthetic(200, seed=99)
    probabilities = model.predict_proba([e.text for e in held_out])
    from sklearn.metrics import roc_auc_score

    for column, label in enumerate(("spam", "toxic")):
        assert roc_auc_score([e.labels[label] for e in held_out], probabilities[:, column]) > 0.95
    bundle.save(model, tmp_path / "model", {"training": {"backend": "streaming"}})
    loaded = bundle.load(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["training"]["backend"] == "streaming"
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), model.predict_proba(TEXTS))
    assessor = Assessor(loaded, decision_labels=["spam", "toxic"])
    result = assessor.assess("cheap pills and casino bonus at www.deals.example, earn cash")
    assert result["scores"]["spam"] > 0.5
    assert any(term["label"] == "spam" and term["text"] in ("pills", "casino", "cash", "www.deals.example,") for term in result["terms"])


def test_a_hashed_bundle_scores_the_same_from_its_arrays(streamed, tmp_path):
    bundle.save(streamed[0], tmp_path / "model", {})
    whole, light = bundle.load(tmp_path / "model"), bundle.load_for_scoring(tmp_path / "model")
    assert isinstance(light.weights.char_vocabulary, HashedVocabulary)
    expected, terms = FastScorer(whole).explain_batch(TEXTS)
    got, got_terms = FastScorer(light).explain_batch(TEXTS)
    np.testing.assert_array_equal(got, expected)
    assert got_terms == terms


def test_fast_and_batch_scores_equal_the_pipeline(streamed, rows):
    model, _ = streamed
    scorer = FastScorer(model)
    texts = TEXTS + [e.text for e in rows[:150]]
    expected = model.predict_proba(texts)
    one_by_one = np.array([list(scorer.score(text).values()) for text in texts])
    np.testing.assert_allclose(one_by_one, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scorer.score_batch(texts), one_by_one, rtol=0, atol=1e-9)
    probabilities, terms = scorer.explain_batch(texts)
    for text, row, found in zip(texts, probabilities, terms):
        scores, single = scorer.score_and_explain(text)
        np.testing.assert_allclose(row, list(scores.values()), rtol=0, atol=1e-9)
        assert found == single
        assert all(text[t["start"] : t["end"]] == t["text"] and t["weight"] > 0 for t in found)


def test_span_weights_add_up_to_the_log_odds(streamed):
    from moderation.text import normalize, word_spans

    scorer = FastScorer(streamed[0])
    text = "you stupid clown, visit www.deals.example for cheap pills"
    blocks = scorer._vectors(normalize(text))
    contribution = scorer._span_contributions(word_spans(text), *blocks)
    np.testing.assert_allclose(contribution.sum(axis=0), scorer._logits(*blocks) - scorer.intercept, atol=1e-9)


def test_chunking_is_deterministic_and_dev_rows_are_never_fitted(rows, streamed):
    model, facts = streamed
    again, _ = train_streaming(in_chunks(rows, 64, seed=0), streaming=SMALL)
    np.testing.assert_array_equal(again.pipeline[-1].coef, model.pipeline[-1].coef)
    other, other_facts = train_streaming(in_chunks(rows, 500, seed=0), streaming=SMALL)  # one chunk: other updates, same counts
    assert not np.array_equal(other.pipeline[-1].coef, model.pipeline[-1].coef)
    assert other_facts["spam"]["rows"] == facts["spam"]["rows"]
    assert facts["spam"]["rows"] + facts["spam"]["calibration_rows"] == sum(e.split == "train" and "spam" in e.labels for e in rows)


def test_calibration_sample_is_bounded(rows):
    _, facts = train_streaming(in_chunks(rows, 64), streaming=StreamingConfig(n_features=2**14, epochs=1, max_calibration_rows=20))
    assert facts["spam"]["calibration_rows"] > 40
    assert facts["spam"]["calibration_sample"] < 40


def test_cli_trains_a_streaming_bundle(tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, ["train", "--backend", "streaming", "--datasets", "examples", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["backend"] == "streaming"
    assert manifest["training"]["streaming"]["n_features"] == 2**20
    assert FastScorer(bundle.load(out)).score("you idiot")["toxic"] > 0.5


def test_cli_backend_comes_from_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_TRAINING_BACKEND", "streaming")
    out = tmp_path / "model"
    assert CliRunner().invoke(cli, ["train", "--datasets", "examples", "--out", str(out)]).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["training"]["backend"] == "streaming"


def _decide(session, text: str, digest: str, decisions: list[tuple[str, str | None]], at: datetime) -> None:
    comment = Comment(site="s", text=text, text_hash=digest, status="pending", decision="review", risk=0.5, scores={}, reasons=[], terms=[], created_at=at)
    session.add(comment)
    session.flush()
    session.add(AuditEntry(comment_id=comment.id, actor="model", action="review", new_status="pending", scores={}, created_at=at))
    for minutes, (action, reason) in enumerate(decisions, start=1):
        session.add(AuditEntry(comment_id=comment.id, actor="mia", action=action, reason=reason, new_status="x", scores={}, created_at=at + timedelta(minutes=minutes)))
        session.flush()


def test_site_labels_stream_in_chunks_with_the_latest_decision_per_text(database):
    engine = make_engine(database["DATABASE_URL"], database.get("DATABASE_SCHEMA"))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Session(engine) as session:
        for n in range(7):
            _decide(session, f"clean {n}", f"h{n}", [("approve", None)], start + timedelta(hours=n))
        for n in range(3):  # a spam wave: one text, three comments
            _decide(session, "buy pills", "wave", [("reject", "spam")], start + timedelta(hours=10 + n))
        _decide(session, "clean 3", "h3", [("reject", "abuse")], start + timedelta(hours=20))  # the same text decided again later
        _decide(session, "undecided", "u", [("reject", "spam"), ("reject", "other")], start + timedelta(hours=21))  # overturned to no label
        session.commit()
        chunks = list(labels.stream_site_labels(session, chunk=3))
        expected = labels.site_labels(session)
    engine.dispose()
    assert all(len(chunk) <= 3 for chunk in chunks) and len(chunks) >= 3
    streamed = [(row.text, row.labels) for chunk in chunks for row in chunk]
    assert streamed == [(row.text, row.labels) for row in expected]
    assert ("clean 3", {"toxic": 1}) in streamed and ("buy pills", {"spam": 1}) in streamed
    assert len(streamed) == 8 and "undecided" not in {text for text, _ in streamed}
    engine = make_engine(database["DATABASE_URL"], database.get("DATABASE_SCHEMA"))
    site = [e for chunk in site_chunks(engine, holdout_share=0.25, size=3)() for e in chunk]
    engine.dispose()
    assert [(e.text, e.labels) for e in site] == streamed
    assert [e.split for e in site] == ["train"] * 6 + ["dev"] * 2 and {e.source for e in site} == {"site"}


def test_the_newest_decisions_by_time_are_held_out_even_when_inserted_first(database):
    """Imported decisions keep their own times: the held-out share is the newest by decision time, not by insertion."""
    engine = make_engine(database["DATABASE_URL"], database.get("DATABASE_SCHEMA"))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Session(engine) as session:
        for n in reversed(range(10)):  # inserted newest first, as an import of an old archive after recent work would be
            _decide(session, f"comment {n}", f"h{n}", [("approve", None) if n % 2 else ("reject", "spam")], start + timedelta(days=n))
        session.commit()
    site = [e for chunk in site_chunks(engine, holdout_share=0.3, size=4)() for e in chunk]
    engine.dispose()
    assert [e.text for e in site] == [f"comment {n}" for n in range(10)]
    assert [e.text for e in site if e.split == "dev"] == ["comment 7", "comment 8", "comment 9"]


def test_interleave_takes_a_chunk_from_each_source_in_turn():
    def source(name: str, sizes: list[int]):
        return lambda: ([Example(f"{name}{i}", {}, name, name, "train")] * size for i, size in enumerate(sizes))

    stream = interleave(source("a", [1, 1, 1]), source("b", [2, 0, 2, 2, 2]))
    chunks = list(stream())
    assert [(chunk[0].text, len(chunk)) for chunk in chunks] == [("a0", 1), ("b0", 2), ("a1", 1), ("a2", 1), ("b2", 2), ("b3", 2), ("b4", 2)]
    assert list(stream()) == chunks  # each call streams every source again: one pass per epoch


def test_hashed_counter_and_featurizer_equal_the_hashing_pipeline(rows):
    from moderation.features import HashedCounter, build_hashed_features
    from training.streaming import _Featurizer

    texts = TEXTS + [e.text for e in rows[:300]]
    idf = (np.linspace(1, 3, 2**14), np.linspace(2, 4, 2**14))
    features = build_hashed_features(n_features=2**14, idf=idf)
    expected = features.transform(texts)
    actual = _Featurizer(features, HashedCounter(2**14))(texts)
    expected.sort_indices()
    np.testing.assert_array_equal(actual.indptr, expected.indptr)
    np.testing.assert_array_equal(actual.indices, expected.indices)
    np.testing.assert_allclose(actual.data, expected.data, rtol=1e-12)
