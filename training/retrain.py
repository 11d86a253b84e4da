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
from moderation.labels import Labelled
from training.datasets import Example, select_datasets
from training.evaluate import per_dataset
from training.pipeline import run_training
from training.train import TrainingConfig, load_examples

SITE = "site"


def site_examples(rows: list[Labelled], holdout_share: float) -> list[Example]:
    """The site's decisions as examples: the oldest for training, the newest ``holdout_share`` held out."""
    ordered = sorted(rows, key=lambda row: row.decided_at)
    cut = len(ordered) - int(round(len(ordered) * holdout_share))
    return [Example(row.text, dict(row.labels), SITE, SITE, "train" if i < cut else "dev") for i, row in enumerate(ordered)]


def site_facts(examples: list[Example]) -> dict:
    return {
        "name": SITE, "license": "the site's own moderation decisions", "open_license": True,
        "labels": sorted({label for e in examples for label in e.labels}),
        "train_rows": sum(e.split == "train" for e in examples), "dev_rows": sum(e.split == "dev" for e in examples), "files": {},
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
    data_dir: Path, out_dir: Path, champion_dir: Path, site_rows: list[Labelled], *,
    names: list[str] | None = None, open_only: bool = False, config: TrainingConfig | None = None,
    site_weight: float = 3.0, holdout_share: float = 0.2, tolerance: float = 0.01, backend: str = "memory",
    progress: Callable[[str], None] = lambda stage: None,
) -> Outcome:
    """Train a challenger into ``out_dir`` and judge it against the champion on the same held-out rows.

    ``backend``: "memory" (TF-IDF, all rows at once) or "streaming" (hashed features, chunk by chunk).
    """
    config = config or TrainingConfig()
    config.source_boost = {SITE: site_weight}
    site = site_examples(site_rows, holdout_share)
    manifest, _ = run_training(
        data_dir, out_dir, names=names, open_only=open_only, config=config, extra=site, extra_facts=[site_facts(site)], backend=backend, progress=progress,
    )
    progress("judging champion and challenger on the same held-out rows")
    held_out = [e for e in load_examples(data_dir, select_datasets(data_dir, names, open_only)) + site if e.split == "dev"]
    texts = [e.text for e in held_out]
    rows = {}
    for role, folder in (("champion", champion_dir), ("challenger", out_dir)):
        model = bundle.load(folder)
        rows[role] = per_dataset(model.predict_proba(texts), model.labels, held_out, model.thresholds) if texts else []
    verdict = judge(rows["champion"], rows["challenger"], tolerance=tolerance)
    counts = {"train": sum(e.split == "train" for e in site), "held_out": sum(e.split == "dev" for e in site)}
    return Outcome(manifest, verdict, side_by_side(rows["champion"], rows["challenger"]), counts)
