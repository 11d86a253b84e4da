"""Retrain on the site's own decisions and judge the challenger against the live champion.

Both models are scored on the same held-out rows: the newest SITE_HOLDOUT_SHARE of the
site's decisions (never trained on) and the public dev splits. Which of the site's rows
are held out is fixed by the first pass over them and kept in every later pass, however
the decisions change meanwhile (see `hold_out_once`). The challenger is promoted only if
it scores every deciding label the champion scores, is better on the site's held-out decisions
(mean average precision over the labels they carry, at least MIN_HELD_OUT of each
outcome) without losing more than ``tolerance`` average precision on any of those labels,
and loses no more than ``tolerance`` ROC AUC on any public set. `judge` is pure: metric
rows in, verdict out.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

from moderation import bundle
from training.datasets import Example, select_datasets
from training.evaluate import per_dataset
from training.pipeline import held_out_batches, run_training, score_held_out
from training.streaming import Chunks
from training.train import TrainingConfig, load_examples

SITE = "site"
MIN_HELD_OUT = 5  # held-out site decisions of each outcome a label needs before its average precision says anything


def _key(text: str) -> bytes:
    """A site row's name across passes, in 8 bytes: its text. (The text stands for every comment with the same
    normalised text; if another of them becomes the one shown, that row is new, so trained on, never judged.)"""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def hold_out_once(site: Chunks) -> tuple[Chunks, dict]:
    """Fix which of the site's rows are held out, by one pass; return the stream marking them so in every pass, and its facts.

    Each pass reads the database again, and decisions go on meanwhile: an import of old
    decisions or a purge moves the newest-share cut, an overturn or a new comment with a
    known text moves that text to the end. Marked afresh in each pass, a row trained on
    could come back as held out, and be judged by a model that learned it. Here a row is
    held out in every pass if and only if its text was held out in the first one; rows
    that appear later are trained on, never judged. Memory: 8 bytes a held-out row.
    """
    held: set[bytes] = set()
    labels, splits = set(), {"train": 0, "dev": 0}
    for chunk in site():
        for e in chunk:
            labels.update(e.labels)
            splits[e.split] += 1
            if e.split == "dev":
                held.add(_key(e.text))

    def chunks() -> Iterator[list[Example]]:
        for chunk in site():
            yield [replace(e, split="dev" if _key(e.text) in held else "train") for e in chunk]

    facts = {
        "name": SITE, "license": "the site's own moderation decisions", "open_license": True,
        "labels": sorted(labels), "train_rows": splits["train"], "dev_rows": splits["dev"], "files": {},
    }
    return chunks, facts


@dataclass
class Verdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else float("nan")


def _judged(row: dict) -> bool:
    """Whether a site row holds enough decisions of each outcome for its average precision to mean something."""
    positives = row.get("positives", 0)
    return positives >= MIN_HELD_OUT and row.get("rows", 0) - positives >= MIN_HELD_OUT and not math.isnan(row["average_precision"])


def judge(champion: list[dict], challenger: list[dict], *, tolerance: float,
          required_labels: tuple[str, ...] = (), challenger_labels: tuple[str, ...] = ()) -> Verdict:
    """Promote only if the challenger scores every one of ``required_labels`` (the deciding labels the
    champion scores), is better on the site's held-out decisions without losing more than ``tolerance``
    average precision on any of their labels, and is not worse beyond ``tolerance`` ROC AUC on any public set."""
    missing = [label for label in required_labels if label not in challenger_labels]
    if missing:
        return Verdict(False, [f"the challenger cannot score {', '.join(missing)}, which the live model scores: "
                               "comments would no longer be held or rejected for it"])
    before = {(r["dataset"], r["label"]): r for r in champion}
    after = {(r["dataset"], r["label"]): r for r in challenger}
    common = [key for key in after if key in before]
    site = [key for key in common if key[0] == SITE and _judged(before[key]) and _judged(after[key])]
    reasons = []
    site_before = _mean([before[key]["average_precision"] for key in site])
    site_after = _mean([after[key]["average_precision"] for key in site])
    if math.isnan(site_before) or math.isnan(site_after):
        return Verdict(False, [f"no held-out site decisions with at least {MIN_HELD_OUT} of each outcome for any label yet: "
                               "nothing shows the challenger is better"])
    better = site_after > site_before
    reasons.append(f"site held-out decisions: mean average precision {site_before:.3f} -> {site_after:.3f} "
                   f"({'better' if better else 'not better'})")
    worse = []
    for key in site:
        old, new = before[key]["average_precision"], after[key]["average_precision"]
        if new < old - tolerance:
            worse.append(f"site / {key[1]}: average precision {old:.3f} -> {new:.3f}, more than {tolerance} worse")
    for key in common:
        if key[0] == SITE:
            continue
        old, new = before[key]["roc_auc"], after[key]["roc_auc"]
        if not (math.isnan(old) or math.isnan(new)) and new < old - tolerance:
            worse.append(f"{key[0]} / {key[1]}: ROC AUC {old:.3f} -> {new:.3f}, more than {tolerance} worse")
    reasons += worse or [f"no site label nor public dev set is worse by more than {tolerance}"]
    return Verdict(better and not worse, reasons)


def side_by_side(champion: list[dict], challenger: list[dict]) -> list[dict]:
    """One row per (dataset, label): both models' ROC AUC, average precision and review share at their thresholds."""
    before = {(r["dataset"], r["label"]): r for r in champion}
    rows = []
    for r in challenger:
        old = before.get((r["dataset"], r["label"]))
        if old is None:
            continue
        rows.append({
            "dataset": r["dataset"], "label": r["label"], "rows": r["rows"],
            "auc_live": old["roc_auc"], "auc_new": r["roc_auc"],
            "ap_live": old["average_precision"], "ap_new": r["average_precision"],
            "reviewed_live": old["reviewed"], "reviewed_new": r["reviewed"],
            "missed_live": old["missed_bad"], "missed_new": r["missed_bad"],
        })
    return rows


@dataclass
class Outcome:
    manifest: dict
    verdict: Verdict
    table: list[dict]
    site_rows: dict


def retrain(
    data_dir: Path, out_dir: Path, champion_dir: Path, site: Chunks, *,
    names: list[str] | None = None, open_only: bool = False, config: TrainingConfig | None = None,
    site_weight: float = 3.0, tolerance: float = 0.01, backend: str = "memory", pieces_dir: Path | None = None,
    decision_labels: tuple[str, ...] | None = None, progress: Callable[[str], None] = lambda stage: None,
) -> Outcome:
    """Train a challenger into ``out_dir`` and judge it against the champion on the same held-out rows.

    ``site``: the site's decisions as a stream of chunks, the newest already marked as dev
    rows (`training.streaming.site_chunks`); its first pass fixes which stay held out
    (`hold_out_once`). ``backend``: "memory" (TF-IDF, all rows at once: the site's rows are
    gathered into a list) or "streaming" (hashed features; the site's rows are read chunk
    by chunk in every pass, for training and for judging).
    ``pieces_dir``: the piece-vector table to train with (`run_training`). ``decision_labels``:
    the labels that decide (DECISION_LABELS); a challenger lacking one the champion scores is
    never promoted (None: every label the champion scores).
    """
    config = config or TrainingConfig()
    config.source_boost = {SITE: site_weight}
    site, facts = hold_out_once(site)
    progress(f"site decisions: {facts['train_rows']:,} to train on, {facts['dev_rows']:,} held out")
    streamed = backend == "streaming"
    manifest, _ = run_training(
        data_dir, out_dir, names=names, open_only=open_only, config=config, extra_facts=[facts], backend=backend,
        pieces_dir=pieces_dir, progress=progress,
        extra=None if streamed else [e for chunk in site() for e in chunk], extra_chunks=site if streamed else None,
    )
    progress("judging champion and challenger on the same held-out rows")
    public_dev = [e for e in load_examples(data_dir, select_datasets(data_dir, names, open_only)) if e.split == "dev"]
    models = [bundle.load(champion_dir), bundle.load(out_dir)]
    scores, held_out = score_held_out(models, held_out_batches(public_dev, site))
    rows = [per_dataset(p, model.labels, held_out, model.thresholds) if held_out else [] for p, model in zip(scores, models)]
    required = tuple(label for label in models[0].labels if decision_labels is None or label in decision_labels)
    verdict = judge(rows[0], rows[1], tolerance=tolerance, required_labels=required, challenger_labels=tuple(models[1].labels))
    counts = {"train": facts["train_rows"], "held_out": facts["dev_rows"]}
    return Outcome(manifest, verdict, side_by_side(rows[0], rows[1]), counts)
