import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import sklearn

from moderation import bundle
from moderation.model import ModerationModel
from moderation.scorer import FastScorer
from moderation.weights import ScoringModel

TEXTS = ["you are an idiot", "buy cheap pills at bit.ly/x", "nice article", "F R E E   money!!! www.example.com", ""]


def test_round_trip_keeps_scores_and_manifest(tiny_bundle, tiny_model):
    manifest = bundle.read_manifest(tiny_bundle)
    for key in ("version", "created", "labels", "thresholds", "datasets", "dev_metrics", "libraries", "sha256"):
        assert key in manifest, key
    assert manifest["libraries"]["scikit-learn"] == sklearn.__version__
    assert manifest["datasets"][0]["name"] == "examples"
    assert manifest["datasets"][0]["files"]["examples.csv"]
    assert tiny_model.version == manifest["version"]
    again = bundle.load(tiny_bundle)
    texts = ["you are an idiot", "buy cheap pills at bit.ly/x", "nice article"]
    assert (again.predict_proba(texts) == tiny_model.predict_proba(texts)).all()


def flip_middle_byte(path) -> None:
    """Damage a file the way a bad disk or a tamperer might: one byte in its middle."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _without_scoring_arrays(bundle_dir, *, name_the_file: bool) -> None:
    """Rewrite a bundle's manifest as training wrote it before ``weights.npz``."""
    manifest_path = bundle_dir / bundle.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    (bundle_dir / manifest.pop("weights_file")).unlink()
    del manifest["weights_sha256"]
    if not name_the_file:
        del manifest["model_file"]  # the oldest manifests did not name it
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name_the_file", [True, False])
def test_bundles_written_before_the_scoring_arrays_still_load_and_score(tiny_bundle_copy, tiny_model, name_the_file):
    _without_scoring_arrays(tiny_bundle_copy, name_the_file=name_the_file)
    assert (bundle.load(tiny_bundle_copy).predict_proba(TEXTS) == tiny_model.predict_proba(TEXTS)).all()
    assert isinstance(bundle.load_for_scoring(tiny_bundle_copy), ModerationModel)  # no arrays: the whole model
    model_file = tiny_bundle_copy / bundle.MODEL_FILE
    flip_middle_byte(model_file)
    with pytest.raises(bundle.BundleError, match="does not match the sha256"):
        bundle.load_for_scoring(tiny_bundle_copy)


def test_scoring_arrays_score_and_explain_as_the_whole_model(any_tiny_bundle, any_tiny_model):
    light = bundle.load_for_scoring(any_tiny_bundle)
    assert isinstance(light, ScoringModel)
    assert (light.labels, light.thresholds, light.version) == (any_tiny_model.labels, any_tiny_model.thresholds, any_tiny_model.version)
    whole, arrays = FastScorer(any_tiny_model), FastScorer(light)
    assert arrays.word_vocabulary == whole.word_vocabulary and arrays.char_vocabulary == whole.char_vocabulary
    expected, terms = whole.explain_batch(TEXTS)
    got, got_terms = arrays.explain_batch(TEXTS)
    np.testing.assert_array_equal(got, expected)
    assert got_terms == terms
    assert [arrays.score(text) for text in TEXTS] == [whole.score(text) for text in TEXTS]


@pytest.mark.parametrize("damaged", [bundle.WEIGHTS_FILE, bundle.MODEL_FILE])
def test_scoring_refuses_a_bundle_altered_anywhere(tiny_bundle_copy, damaged):
    path = tiny_bundle_copy / damaged
    flip_middle_byte(path)
    with pytest.raises(bundle.BundleError, match="does not match the sha256"):
        bundle.load_for_scoring(tiny_bundle_copy)


def test_scoring_from_the_arrays_never_imports_scikit_learn(any_tiny_bundle, tmp_path):
    """What `score --input` gains from the arrays: no scikit-learn import at start-up."""
    source = tmp_path / "comments.csv"
    source.write_text("text\nyou are an idiot\nnice article\n")
    script = (
        "import sys; from moderation.cli import cli; "
        f"cli(['score', '--model', {str(any_tiny_bundle)!r}, '--input', {str(source)!r}], standalone_mode=False); "
        "sys.exit(3 if 'sklearn' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_tampered_model_file_is_refused_before_unpickling(tiny_bundle_copy):
    path = tiny_bundle_copy / bundle.MODEL_FILE
    flip_middle_byte(path)
    with pytest.raises(bundle.BundleError, match="does not match the sha256"):
        bundle.load(tiny_bundle_copy)


def test_other_scikit_learn_version_is_refused_with_advice(tiny_bundle_copy):
    path = tiny_bundle_copy / bundle.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(bundle.BundleError, match="retrain"):
        bundle.load(tiny_bundle_copy)


@pytest.mark.parametrize("damage", ["no_manifest", "no_model", "bad_json", "no_sha"])
def test_damaged_bundles_give_clear_errors(tiny_bundle_copy, damage):
    manifest_path = tiny_bundle_copy / bundle.MANIFEST_FILE
    if damage == "no_manifest":
        manifest_path.unlink()
    elif damage == "no_model":
        (tiny_bundle_copy / bundle.MODEL_FILE).unlink()
    elif damage == "bad_json":
        manifest_path.write_text("{not json")
    else:
        manifest = json.loads(manifest_path.read_text())
        del manifest["sha256"]
        manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(bundle.BundleError):
        bundle.load(tiny_bundle_copy)


def test_save_replaces_a_bundle_whole(tiny_model, tmp_path):
    out = tmp_path / "bundle"
    first = bundle.save(tiny_model, out, {"note": "first"})
    second = bundle.save(tiny_model, out, {"note": "second"})
    assert bundle.read_manifest(out)["note"] == "second"
    assert first["sha256"] == second["sha256"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bundle-")]


def test_a_bundle_with_features_this_version_cannot_compute_is_refused(tiny_bundle_copy):
    """Rolling back the code while a newer model is live must not score with part of its weights."""
    path = tiny_bundle_copy / bundle.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    assert manifest["feature_blocks"] == ["words", "chars"]
    manifest["feature_blocks"].append("sentence_vectors")
    path.write_text(json.dumps(manifest))
    for load in (bundle.load, bundle.load_for_scoring):
        with pytest.raises(bundle.BundleError, match="newer comment-moderation"):
            load(tiny_bundle_copy)


@pytest.fixture
def own_tiny_model(tiny_model):
    """A copy of the shared tiny model: `bundle.save` sets the version of the model it is given."""
    return copy.copy(tiny_model)


def test_save_refuses_a_folder_that_is_neither_empty_nor_a_bundle(own_tiny_model, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("years of work")
    webapp = tmp_path / "webapp"  # another project's manifest.json is not a bundle
    webapp.mkdir()
    (webapp / bundle.MANIFEST_FILE).write_text('{"name": "my app", "icons": []}')
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    for target in (notes, webapp, a_file):
        with pytest.raises(bundle.BundleError, match="refusing to"):
            bundle.save(own_tiny_model, target, {})
    assert (notes / "notes.txt").read_text() == "years of work"
    assert (webapp / bundle.MANIFEST_FILE).read_text() == '{"name": "my app", "icons": []}'
    assert a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "notes", "webapp"]  # no staging left behind


def test_save_fills_an_empty_folder(own_tiny_model, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    bundle.save(own_tiny_model, out, {"note": "first"})
    assert bundle.read_manifest(out)["note"] == "first"


def test_a_failed_swap_keeps_the_old_bundle(own_tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "bundle"
    bundle.save(own_tiny_model, out, {"note": "old"})
    real_replace = bundle.os.replace

    def failing_replace(source, target):
        if str(source).startswith(str(tmp_path / ".bundle-")) and "-old-" not in str(source) and str(target) == str(out):
            raise OSError("disk trouble")
        return real_replace(source, target)

    monkeypatch.setattr(bundle.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk trouble"):
        bundle.save(own_tiny_model, out, {"note": "new"})
    assert bundle.read_manifest(out)["note"] == "old"
    bundle.load(out)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
