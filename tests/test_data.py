"""Quality of our own examples file and the rules of the dataset registry."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from training import datasets
from training.datasets import EXAMPLES_CSV, REGISTRY, default_data_dir, is_available, load_dataset, select_datasets

LABELS = ("spam", "toxic", "insult", "offensive", "hate")
HEADER = ["text", *LABELS, "category"]
CATEGORIES = {"clean", "tricky_clean", "spam", "insult", "threat", "obscene", "identity_hate", "harassment"}
PUBLIC = [name for name in REGISTRY if name != "examples"]


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    with open(EXAMPLES_CSV, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- data/examples.csv ------------------------------------------------------------------


def test_examples_file_format():
    raw = EXAMPLES_CSV.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert b"\r\n" not in raw
    raw.decode("utf-8")
    with open(EXAMPLES_CSV, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        assert next(reader) == HEADER
        assert all(len(row) == len(HEADER) for row in reader)


def test_examples_labels_are_binary(rows):
    assert len(rows) >= 100
    for row in rows:
        for label in LABELS:
            assert row[label] in {"0", "1"}, (label, row)


def test_examples_texts_are_present_and_short(rows):
    for row in rows:
        assert row["text"].strip(), row
        assert len(row["text"]) < 600, row["text"][:80]


def test_examples_have_no_duplicate_texts(rows):
    counts = Counter(" ".join(row["text"].split()).lower() for row in rows)
    assert [text for text, count in counts.items() if count > 1] == []


def test_examples_categories_are_known(rows):
    assert {row["category"] for row in rows} <= CATEGORIES
    assert {row["category"] for row in rows} == CATEGORIES  # every category is represented


def test_examples_label_rules(rows):
    for row in rows:
        v = {label: int(row[label]) for label in LABELS}
        if v["hate"] or v["insult"]:
            assert v["toxic"], row
        if v["toxic"]:
            assert v["offensive"], row
        if row["category"] in ("clean", "tricky_clean"):
            assert not any(v.values()), row
        assert bool(v["spam"]) == (row["category"] == "spam"), row


def test_every_label_has_enough_positives(rows):
    for label in LABELS:
        positives = sum(int(row[label]) for row in rows)
        assert positives >= 15, label
        assert positives < len(rows), label  # negatives too


def test_examples_load_through_the_registry(rows):
    examples = load_dataset("examples", default_data_dir())
    assert len(examples) == len(rows)
    assert {e.split for e in examples} == {"train", "dev"}
    assert all(set(e.labels) == set(LABELS) and e.source == "examples" for e in examples)


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_dataset_names_a_license(name):
    dataset = REGISTRY[name]
    assert dataset.name == name
    assert isinstance(dataset.license, str) and dataset.license.strip()
    assert isinstance(dataset.open_license, bool)
    assert dataset.labels and set(dataset.labels) <= set(LABELS)


def fake_data_dir(root: Path) -> Path:
    """Create an (empty-bodied) train/dev file for every public set."""
    for name in PUBLIC:
        for path in datasets.dataset_files(name, root):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("text\n", encoding="utf-8")
    return root


def test_select_datasets_open_only_drops_closed_licenses(tmp_path):
    data_dir = fake_data_dir(tmp_path)
    everything = select_datasets(data_dir)
    assert everything == list(REGISTRY)
    open_only = select_datasets(data_dir, open_only=True)
    assert open_only == [name for name in REGISTRY if REGISTRY[name].open_license]
    closed = [name for name in REGISTRY if not REGISTRY[name].open_license]
    assert closed, "the registry should have at least one research-only set"
    assert not set(closed) & set(open_only)


def test_select_datasets_keeps_the_requested_order(tmp_path):
    data_dir = fake_data_dir(tmp_path)
    closed = next(name for name in REGISTRY if not REGISTRY[name].open_license)
    assert select_datasets(data_dir, ["examples", closed]) == ["examples", closed]
    assert select_datasets(data_dir, ["examples", "youtube_spam"], open_only=True) == ["examples", "youtube_spam"]


def test_named_datasets_excluded_by_the_license_option_are_an_error(tmp_path):
    data_dir = fake_data_dir(tmp_path)
    closed = next(name for name in REGISTRY if not REGISTRY[name].open_license)
    with pytest.raises(ValueError, match=f"{closed} excluded by the open-licenses-only option"):
        select_datasets(data_dir, ["examples", closed], open_only=True)


def test_named_datasets_missing_from_the_data_dir_are_an_error(tmp_path):
    data_dir = tmp_path / "nonexistent"
    with pytest.raises(ValueError, match=f"youtube_spam not found in {data_dir}"):
        select_datasets(data_dir, ["youtube_spam", "examples"])
    closed = next(name for name in REGISTRY if not REGISTRY[name].open_license)
    with pytest.raises(ValueError) as raised:
        select_datasets(data_dir, ["sms_spam", closed, "examples"], open_only=True)
    assert f"sms_spam, {closed} not found in {data_dir}" in str(raised.value)
    assert f"{closed} excluded by the open-licenses-only option" in str(raised.value)
    assert select_datasets(data_dir) == ["examples"]  # none named: what is there, as before


def test_select_datasets_drops_unavailable_sets(tmp_path):
    assert select_datasets(tmp_path / "empty") == ["examples"]  # our own file is always there
    data_dir = fake_data_dir(tmp_path / "some")
    (data_dir / PUBLIC[0] / "train.csv").unlink()
    assert PUBLIC[0] not in select_datasets(data_dir)
    assert not is_available(PUBLIC[0], data_dir)


@pytest.mark.parametrize("names", [["nope"], ["examples", "Examples"], ["sms_spam", "sms-spam"]])
def test_unknown_dataset_names_raise(tmp_path, names):
    with pytest.raises(ValueError, match="unknown dataset"):
        select_datasets(tmp_path, names)


def test_default_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODERATION_DATA_DIR", str(tmp_path / "elsewhere"))
    assert default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("MODERATION_DATA_DIR")
    assert default_data_dir() == datasets.REPO_ROOT.parent / "shared" / "data"


def test_dataset_without_dev_file_splits_by_text_hash(tmp_path):
    name = next(n for n in PUBLIC if not REGISTRY[n].has_dev)
    folder = tmp_path / name
    folder.mkdir()
    texts = [f"comment {i}" for i in range(500)]
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "Insult"])
        writer.writerows([[t, str(i % 2)] for i, t in enumerate(texts)] + [["", "1"]])
    examples = load_dataset(name, tmp_path)
    assert len(examples) == len(texts)  # the blank row is dropped
    dev_share = sum(e.split == "dev" for e in examples) / len(examples)
    assert 0.12 < dev_share < 0.28
    assert [e.split for e in examples] == [e.split for e in load_dataset(name, tmp_path)]


# --- the public sets, when present --------------------------------------------------------


@pytest.mark.parametrize("name", PUBLIC)
def test_public_dataset_loads_with_both_splits_and_declared_labels(name):
    data_dir = default_data_dir()
    if not is_available(name, data_dir):
        pytest.skip(f"{name} not found in {data_dir}")
    examples = load_dataset(name, data_dir)
    assert examples
    assert {e.split for e in examples} == {"train", "dev"}
    declared = set(REGISTRY[name].labels)
    for label in declared:
        values = {e.labels[label] for e in examples if label in e.labels}
        assert values <= {0, 1}, (label, values)
        assert values == {0, 1}, f"{name} has a single class for {label}"
    for e in examples:
        assert e.labels and set(e.labels) <= declared, e.labels
        assert e.text and e.source == name and e.group


@pytest.mark.parametrize("kind,labels", [
    ("0", {"toxic": 1, "offensive": 1, "hate": 1}),
    ("1", {"toxic": 1, "offensive": 1, "hate": 0}),
    (" 2 ", {"toxic": 0, "offensive": 0, "hate": 0}),
    ("", None),  # `"" in "01"` is True: a row without a class was labelled toxic
    ("01", None),
    ("3", None),
])
def test_davidson_classes_map_onto_labels_and_rows_without_a_class_are_dropped(kind, labels):
    assert REGISTRY["davidson_hate_offensive"].to_labels({"class": kind}) == labels


@pytest.mark.parametrize(("a", "b", "c", "insult"), [
    ("OFF", "TIN", "IND", 1),  # a targeted insult at a person
    ("OFF", "TIN", "GRP", 0),  # at a group ("Democrats are miserable humans"): toxic, not an insult to a person
    ("OFF", "TIN", "OTH", 0),
    ("OFF", "UNT", "", 0),  # untargeted swearing
    ("NOT", "", "", 0),
])
def test_olid_insult_is_a_targeted_insult_at_an_individual(a, b, c, insult):
    labels = REGISTRY["olid_offenseval2019"].to_labels({"subtask_a": a, "subtask_b": b, "subtask_c": c})
    assert labels == {"toxic": int(a == "OFF"), "offensive": int(a == "OFF"), "insult": insult}
