"""Piece vectors: cut token by token exactly as the tokenizer cuts whole texts, carried whole
through training, the bundle, the CLI and every scoring path."""

import json
import pickle

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import AWKWARD_TEXTS
from moderation import bundle
from moderation.cli import cli
from moderation.pieces import load_pieces
from moderation.scorer import FastScorer
from moderation.text import normalize


@pytest.fixture(scope="module")
def pieces(tiny_pieces):
    return load_pieces(tiny_pieces)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["you", "idiot", "free", "money!!", "don't", "x", "ünïcode", "naïve", "?", "🙂", "idiots", "cl1ck"]), max_size=8)
       .map(" ".join) | st.text(max_size=40))
def test_token_by_token_pieces_equal_the_whole_text_cut(pieces, text):
    """Caching pieces per white-space token is only sound because no piece crosses white space."""
    normalized = normalize(text)
    whole = [i for i in pieces._tokenizer.encode(normalized, add_special_tokens=False).ids if i != pieces.unknown_id]
    assert pieces.pieces(normalized).tolist() == whole


def test_vectors_have_unit_length_or_are_zero(pieces):
    unknown_only = "abcdefghij" * 15  # WordPiece gives up on a word over 100 characters: one unknown piece, dropped
    assert normalize(unknown_only) and not pieces.pieces(normalize(unknown_only)).size
    vectors = pieces.transform([normalize(t) for t in AWKWARD_TEXTS] + [normalize(unknown_only)])
    norms = np.linalg.norm(vectors, axis=1)
    assert np.allclose(norms[norms > 0], 1.0)
    assert norms[-1] == 0.0  # nothing but unknown pieces: no direction at all, not NaN


def test_pieces_survive_pickling(pieces):
    again = pickle.loads(pickle.dumps(pieces))
    texts = [normalize(t) for t in AWKWARD_TEXTS]
    np.testing.assert_array_equal(again.transform(texts), pieces.transform(texts))
    assert again.digest == pieces.digest


def test_the_manifest_names_the_table_and_the_blend(tiny_pieces_bundle, pieces):
    manifest = bundle.read_manifest(tiny_pieces_bundle)
    assert manifest["training"]["pieces"]["sha256"] == pieces.digest
    assert manifest["feature_blocks"] == ["words", "chars", "pieces"]
    blends = [facts["stacking"] for facts in manifest["training"]["label_facts"].values() if "stacking" in facts]
    assert blends and all(blend["pieces"] != 0 for blend in blends)
    coef = bundle.load(tiny_pieces_bundle).weights.coef
    assert np.abs(coef[:, -pieces.dims:]).sum() > 0  # the piece block has weight in the folded model


def test_scoring_uses_the_piece_block(tiny_pieces_bundle):
    """Silencing the piece weights of the trained model changes its scores: they are not decoration."""
    scorer = FastScorer(bundle.load_for_scoring(tiny_pieces_bundle))
    before = scorer.score_batch(AWKWARD_TEXTS)
    scorer.piece_logits = np.zeros_like(scorer.piece_logits)
    scorer.__dict__.pop("batch", None)
    silenced = scorer.score_batch(AWKWARD_TEXTS)
    assert np.abs(before - silenced).max() > 0.01
    np.testing.assert_allclose([list(scorer.score(t).values()) for t in AWKWARD_TEXTS], silenced, atol=1e-9)  # both paths


@pytest.mark.parametrize("text", [
    "What utter morons, click for free money",  # spans claim exactly the comment's pieces
    "u r a m0r0n l0s3r",  # the normaliser joins spaced letters: the spans' pieces differ from the comment's
    "YOU ARE AN IDIOT OK",  # every capitalised span claims the shouting marker the comment has once
    "f u c k you moron",
    "👍",
])
def test_spans_share_out_the_comment_pieces_never_more(tiny_pieces_bundle, pieces, text):
    """With the n-gram weights silenced, the spans' shares add up to the pull of exactly those of the
    comment's pieces that some span claims (each counted as often as the comment has it), over the
    length of the comment's piece sum: nothing invented, nothing counted twice."""
    from collections import Counter

    from moderation.text import word_spans

    scorer = FastScorer(bundle.load_for_scoring(tiny_pieces_bundle))
    scorer.word_weights, scorer.char_weights = np.zeros_like(scorer.word_weights), np.zeros_like(scorer.char_weights)
    spans = word_spans(text)
    contribution = scorer._span_contributions(spans, *scorer._vectors(normalize(text)))
    comment = Counter(pieces.pieces(normalize(text)).tolist())
    claimed = {p for span in spans for p in pieces.pieces(normalize(span.text)).tolist()}
    ids = [p for p, n in comment.items() if p in claimed for _ in range(n)]
    length = np.linalg.norm(pieces.sums(pieces.pieces(normalize(text))))
    expected = scorer.piece_logits[ids].sum(axis=0) / length if ids else np.zeros(len(scorer.labels))
    np.testing.assert_allclose(contribution.sum(axis=0), expected, atol=1e-9)
    _, batch_terms = scorer.explain_batch([text])
    assert batch_terms[0] == scorer.score_and_explain(text)[1]


def test_train_cli_uses_the_table_and_refuses_a_missing_one(tiny_pieces, tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_INSTANCE_DIR", str(tmp_path / "instance"))
    runner = CliRunner()
    missing = runner.invoke(cli, ["train", "--datasets", "examples", "--kind", "logreg", "--out", str(tmp_path / "a"), "--embeddings", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "no piece-vector table" in missing.output
    made = runner.invoke(cli, ["train", "--datasets", "examples", "--kind", "logreg", "--out", str(tmp_path / "b"), "--embeddings", str(tiny_pieces)])
    assert made.exit_code == 0, made.output
    assert json.loads((tmp_path / "b" / bundle.MANIFEST_FILE).read_text())["training"]["pieces"]["shape"] == [459, 16]
    monkeypatch.setenv("MODERATION_EMBEDDINGS_DIR", str(tiny_pieces))  # the setting, when built, is the default
    default = runner.invoke(cli, ["train", "--datasets", "examples", "--kind", "logreg", "--out", str(tmp_path / "c")])
    assert default.exit_code == 0 and json.loads((tmp_path / "c" / bundle.MANIFEST_FILE).read_text())["training"]["pieces"]
    off = runner.invoke(cli, ["train", "--datasets", "examples", "--kind", "logreg", "--out", str(tmp_path / "d"), "--no-embeddings"])
    assert off.exit_code == 0 and json.loads((tmp_path / "d" / bundle.MANIFEST_FILE).read_text())["training"]["pieces"] is None


def test_the_report_says_what_the_model_reads(tiny_bundle, tiny_pieces_bundle):
    with_pieces = (tiny_pieces_bundle / "report" / "report.md").read_text()
    assert "## Features" in with_pieces and "piece vectors: seeded noise distilled by tests/conftest.py, table 459 x 16" in with_pieces
    assert "No piece-vector table was found" in (tiny_bundle / "report" / "report.md").read_text()


def test_the_distiller_writes_the_files_the_service_reads():
    """training/distill_pieces.py runs in the torch venv without the project, so it names the files itself."""
    from moderation import pieces as service
    from training import distill_pieces

    assert (distill_pieces.TABLE_FILE, distill_pieces.TOKENIZER_FILE, distill_pieces.SOURCE_FILE) == (
        service.TABLE_FILE, service.TOKENIZER_FILE, service.SOURCE_FILE)
