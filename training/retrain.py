"""Retrain on the site's own decisions and judge the challenger against the live champion.

Both models are scored on the same held-out rows: the newest SITE_HOLDOUT_SHARE of the
site's decisions (never trained on) and the public dev splits. The challenger is
promoted only if it is better on the site's held-out decisions (mean average precision
over the labels they carry) and loses no more than ``tolerance`` ROC AUC on any public
set. `judge` is pure: metric rows in, verdict out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from moderation import bundle
from training.datasets import select_datasets
from training.evaluate import per_dataset
from training.pipeline import held_out_batches, run_training, score_held_out
from training.streaming import Chunks
from training.train import TrainingConfig, load_examples

SITE = "site"


def site_facts(site: Chunks) -> dict:
    """Describe the site's decisions for the manifest (one pass over the stream)."""
    labels, splits = set(), {"train": 0, "dev": 0}
    for chunk in site():
        for e in chunk:
            labels.update(e.labels)
            splits[e.split] += 1
    return {
        "name": SITE, "license": "the site's own moderation decisions", "open_license": True,
        "labels": sorted(labels), "train_rows": splits["train"], "dev_rows": splits["dev"], "files": {},
    }


@dataclass
class Verdict:
    promote: bool
    reasons: list[str] = field(default_factory=list)


def _mean(values: list[float]) -> float:
    present = [v for v in values if not math.isnan(v)]
    return sum(present) / len(present) if present else float("nan")


def judge(champion: list[dict], challenger: list[dict], *, tolerance: float) -> Verdict:
    """Promote only if better on the site's held-out decisions and not worse beyond ``tolerance`` on any public set."""
    before = {(r["dataset"], r["label"]): r for r in champion}
    after = {(r["dataset"], r["label"]): r for r in challenger}
    common = [key for key in after if key in before]
    site = [key for key in common if key[0] == SITE]
    reasons = []
    site_before = _mean([before[key]["average_precision"] for key in site])
    site_after = _mean([after[key]["average_precision"] for key in site])
    if math.isnan(site_before) or math.isnan(site_after):
        return Verdict(False, ["no held-out site decisions with both outcomes yet: nothing shows the challenger is better"])
    better = site_after > site_before
    reasons.append(f"site held-out decisions: mean average precision {site_before:.3f} -> {site_after:.3f} "
                   f"({'better' if better else 'not better'})")
    worse = []
    for key in common:
        if key[0] == SITE:
            continue
        old, new = before[key]["roc_auc"], after[key]["roc_auc"]
        if not (math.isnan(old) or math.isnan(new)) and new < old - tolerance:
            worse.append(f"{key[0]} / {key[1]}: ROC AUC {old:.3f} -> {new:.3f}, more than {tolerance} worse")
    reasons += worse or [f"no public dev set is worse by more than {tolerance} ROC AUC"]
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
    progress: Callable[[str], None] = lambda stage: None,
) -> Outcome:
    """Train a challenger into ``out_dir`` and judge it against the champion on the same held-out rows.

    ``site``: the site's decisions as a stream of chunks, the newest already marked as dev
    rows (`training.streaming.site_chunks`). ``backend``: "memory" (TF-IDF, all rows at
    once: the site's rows are gathered into a list) or "streaming" (hashed features; the
    site's rows are read chunk by chunk in every pass, for training and for judging).
    ``pieces_dir``: the piece-vector table to train with (`run_training`).
    """
    config = config or TrainingConfig()
    config.source_boost = {SITE: site_weight}
    facts = site_facts(site)
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
    verdict = judge(rows[0], rows[1], tolerance=tolerance)
    counts = {"train": facts["train_rows"], "held_out": facts["dev_rows"]}
    return Outcome(manifest, verdict, side_by_side(rows[0], rows[1]), counts)
