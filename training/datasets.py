"""The dataset registry: where each labelled set lives, what it labels, under which license.

Public sets are read from a data directory (default: ``../shared/data`` beside the
checkout; ``--data DIR`` or ``MODERATION_DATA_DIR`` override it) and never copied into
the repository. Our own hand-written examples live in ``data/examples.csv``.

Each set maps its own columns onto the product's labels; a label a set does not carry
is simply absent for its rows (never guessed as 0), so every label is learned only
from the sets that really label it.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_CSV = REPO_ROOT / "data" / "examples.csv"


@dataclass(frozen=True)
class Example:
    """One labelled comment. ``group`` is the finest known origin (a YouTube video, a site)."""

    text: str
    labels: dict[str, int]
    source: str
    group: str
    split: str  # "train" or "dev"


@dataclass(frozen=True)
class Dataset:
    """How to read one labelled set and map it onto our labels."""

    name: str
    license: str
    open_license: bool  # may a commercial newsroom train on it without asking anyone?
    labels: tuple[str, ...]
    to_labels: Callable[[dict], dict[str, int] | None]  # None drops the row
    group: Callable[[dict], str]
    has_dev: bool = True


def _flag(column: str, positive="1") -> Callable[[dict], int]:
    return lambda row: int(row[column].strip() == positive)


def _youtube(row):
    return {"spam": _flag("spam")(row)}


def _sms(row):
    return {"spam": _flag("spam")(row)}


def _impermium(row):
    insult = _flag("Insult")(row)
    return {"toxic": insult, "insult": insult}


def _davidson(row):
    kind = row["class"].strip()  # 0 hate speech, 1 offensive, 2 neither
    if kind not in ("0", "1", "2"):
        return None  # no class: the row's labels are unknown, never guessed (and "" is `in "01"`)
    bad = kind in ("0", "1")
    return {"toxic": int(bad), "offensive": int(bad), "hate": int(kind == "0")}


def _olid(row):
    offensive = int(row["subtask_a"].strip() == "OFF")
    # Our insult is aimed at a person: a targeted insult or threat (TIN) at an individual (IND),
    # not at a group (GRP: "Democrats are ...") or anything else (OTH).
    insult = int(row["subtask_b"].strip() == "TIN" and (row.get("subtask_c") or "").strip() == "IND")
    return {"toxic": offensive, "offensive": offensive, "insult": insult}


def _jigsaw(row):
    return {"toxic": _flag("toxic")(row)}


def _examples(row):
    return {label: int(row[label]) for label in ("spam", "toxic", "insult", "offensive", "hate")}


def _same(name: str) -> Callable[[dict], str]:
    return lambda row: name


REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("youtube_spam", "CC BY 4.0", True, ("spam",), _youtube, lambda row: row["video"]),
        Dataset("sms_spam", "CC BY 4.0", True, ("spam",), _sms, _same("sms_spam")),
        Dataset(
            "impermium_insults", "Kaggle competition rules (research only)", False, ("toxic", "insult"),
            _impermium, _same("impermium_insults"), has_dev=False,
        ),
        Dataset("davidson_hate_offensive", "MIT", True, ("toxic", "offensive", "hate"), _davidson, _same("davidson_hate_offensive")),
        Dataset("olid_offenseval2019", "none stated (research use)", False, ("toxic", "offensive", "insult"), _olid, _same("olid_offenseval2019")),
        Dataset("jigsaw_toxic_binary_sample", "CC0 (text CC BY-SA 3.0)", True, ("toxic",), _jigsaw, _same("jigsaw_toxic_binary_sample")),
        Dataset("examples", "project's own (CC0)", True, ("spam", "toxic", "insult", "offensive", "hate"), _examples, _same("examples"), has_dev=False),
    )
}


def default_data_dir() -> Path:
    """Return ``MODERATION_DATA_DIR`` if set, else ``../shared/data`` beside the checkout."""
    configured = os.environ.get("MODERATION_DATA_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


def _dev_by_hash(text: str, share: float = 0.2) -> bool:
    """Put a stable ``share`` of texts in dev: the same text always lands on the same side."""
    digest = hashlib.sha256(" ".join(text.split()).lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def dataset_files(name: str, data_dir: Path) -> list[Path]:
    """Return the files a dataset is read from (for hashing into the manifest)."""
    if name == "examples":
        return [EXAMPLES_CSV]
    folder = Path(data_dir) / name
    return [folder / "train.csv"] + ([folder / "dev.csv"] if REGISTRY[name].has_dev else [])


def is_available(name: str, data_dir: Path) -> bool:
    return all(path.is_file() for path in dataset_files(name, data_dir))


def load_dataset(name: str, data_dir: Path) -> list[Example]:
    """Read one registered dataset into `Example` rows with train/dev splits."""
    dataset = REGISTRY[name]
    examples: list[Example] = []
    for path in dataset_files(name, data_dir):
        for row in _read_rows(path):
            text = (row.get("text") or "").strip()
            labels = dataset.to_labels(row)
            if not text or labels is None:
                continue
            if dataset.has_dev:
                split = "dev" if path.stem == "dev" else "train"
            else:
                split = "dev" if _dev_by_hash(text) else "train"
            examples.append(Example(text, labels, name, dataset.group(row), split))
    return examples


def select_datasets(data_dir: Path, names: list[str] | None = None, open_only: bool = False) -> list[str]:
    """Return the registered sets to train on: those named (or all), available, license-permitted.

    Without ``names``, the sets that are missing or excluded by ``open_only`` are skipped (the
    manifest lists the ones used). Sets named explicitly are never skipped silently: a ValueError
    names those missing from ``data_dir`` or excluded by ``open_only``.
    """
    chosen = names or list(REGISTRY)
    unknown = [n for n in chosen if n not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown dataset(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    missing = [n for n in chosen if not is_available(n, data_dir)]
    excluded = [n for n in chosen if open_only and not REGISTRY[n].open_license]
    if names and (missing or excluded):
        problems = ([f"{', '.join(missing)} not found in {data_dir}"] if missing else []) + (
            [f"{', '.join(excluded)} excluded by the open-licenses-only option (no open license)"] if excluded else [])
        raise ValueError(f"dataset(s) asked for but not usable: {'; '.join(problems)}")
    return [n for n in chosen if n not in missing and n not in excluded]
