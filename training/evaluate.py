"""Measure a model per dataset: ranking quality, and the workload its thresholds create.

Metrics are always reported per dataset (never only pooled), because the sets come from
different sites at different base rates. Pure functions: arrays in, dicts out.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from training.datasets import Example
from training.train import label_rows


def workload(p: np.ndarray, y: np.ndarray, review_at: float, reject_at: float) -> dict[str, float]:
    """Return what the thresholds do to a stream of comments with labels ``y``.

    ``missed_bad``: share of bad comments published without review;
    ``wrongly_rejected``: share of good comments rejected automatically.
    """
    accepted = p < review_at
    rejected = p >= reject_at
    bad, good = y == 1, y == 0
    return {
        "accepted": float(accepted.mean()),
        "reviewed": float((~accepted & ~rejected).mean()),
        "rejected": float(rejected.mean()),
        "missed_bad": float((accepted & bad).sum() / max(bad.sum(), 1)),
        "wrongly_rejected": float((rejected & good).sum() / max(good.sum(), 1)),
    }


def ranking(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision: threshold-free, so every candidate is judged alike (NaN with one class)."""
    if len(set(y.tolist())) < 2:
        return {"roc_auc": float("nan"), "average_precision": float("nan")}
    return {"roc_auc": float(roc_auc_score(y, p)), "average_precision": float(average_precision_score(y, p))}


def label_metrics(p: np.ndarray, y: np.ndarray, thresholds: dict[str, float]) -> dict[str, float]:
    """Return ROC AUC, average precision, F1 at both thresholds and the workload."""
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        **ranking(y, p),
        "f1_at_review": float(f1_score(y, p >= thresholds["review_at"], zero_division=0)),
        "f1_at_reject": float(f1_score(y, p >= thresholds["reject_at"], zero_division=0)),
        **workload(p, y, thresholds["review_at"], thresholds["reject_at"]),
    }


def per_dataset(probabilities: np.ndarray, labels: list[str], examples: list[Example], thresholds: dict) -> list[dict]:
    """Return one metrics row per (dataset, label) that the examples carry."""
    rows = []
    sources = sorted({e.source for e in examples})
    for label in labels:
        column = labels.index(label)
        index, y = label_rows(examples, label)
        for source in sources:
            mask = np.array([examples[i].source == source for i in index], dtype=bool)
            if mask.sum() == 0:
                continue
            p = probabilities[index[mask], column]
            rows.append({"dataset": source, "label": label, **label_metrics(p, y[mask], thresholds[label])})
    return rows


def threshold_sweep(p: np.ndarray, y: np.ndarray, points: int = 41) -> list[dict]:
    """Return the workload at review thresholds across the score range (reject fixed at 1)."""
    return [{"review_at": float(t), **workload(p, y, t, 1.01)} for t in np.linspace(0, 1, points)]


def reliability(p: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = 10) -> tuple[list[dict], float]:
    """Compare predicted and observed rates of bad comments per score bin, with row weights.

    :return: one row per non-empty bin ``{"scores", "predicted", "observed", "share"}``, and
        the expected calibration error (weighted mean gap between predicted and observed).
    """
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows, error, total = [], 0.0, w.sum()
    for b in range(bins):
        mask = which == b
        mass = w[mask].sum()
        if mass == 0:
            continue
        predicted = float((w[mask] * p[mask]).sum() / mass)
        observed = float((w[mask] * y[mask]).sum() / mass)
        error += mass / total * abs(predicted - observed)
        rows.append({"scores": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "predicted": predicted, "observed": observed, "share": float(mass / total)})
    return rows, float(error)
