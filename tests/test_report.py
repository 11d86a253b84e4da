"""The evaluation report's metrics.json and the bundle manifest are strict JSON, even when a metric is undefined."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from training.datasets import Example
from training.evaluate import per_dataset
from training.report import write_report

THRESHOLDS = {"spam": {"review_at": 0.3, "reject_at": 0.9}, "toxic": {"review_at": 0.3, "reject_at": 0.9}}


def strict_json(text: str):
    def refuse(constant):
        pytest.fail(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_metrics_json_writes_null_for_a_label_with_one_class(tmp_path):
    # spam has both classes; toxic only 0s: its ROC AUC and average precision are undefined (NaN).
    examples = [Example(f"t{i}", {"spam": i % 2, "toxic": 0}, "site", "site", "dev") for i in range(6)]
    probabilities = np.array([[0.1 + 0.15 * i, 0.2] for i in range(6)])
    rows = per_dataset(probabilities, ["spam", "toxic"], examples, THRESHOLDS)
    toxic = next(r for r in rows if r["label"] == "toxic")
    assert np.isnan(toxic["roc_auc"])
    truth = {"spam": np.array([i % 2 for i in range(6)]), "toxic": np.zeros(6, dtype=int)}
    write_report(tmp_path, title="one class", rows=rows, labels=["spam", "toxic"], probabilities=probabilities,
                 truth=truth, thresholds=THRESHOLDS, extra={"numpy": np.float64("nan"), "count": np.int64(3)})
    metrics = strict_json((tmp_path / "metrics.json").read_text())
    toxic = next(r for r in metrics["per_dataset"] if r["label"] == "toxic")
    assert toxic["roc_auc"] is None and toxic["average_precision"] is None
    assert 0 <= next(r for r in metrics["per_dataset"] if r["label"] == "spam")["roc_auc"] <= 1  # defined: a number
    assert metrics["numpy"] is None and metrics["count"] == 3
    assert "| site | toxic | 6 | 0 | n/a |" in (tmp_path / "report.md").read_text()


def test_manifest_dev_metrics_write_null_for_nan(tiny_model, tmp_path):
    from moderation import bundle

    bundle.save(copy.copy(tiny_model), tmp_path / "model", {"dev_metrics": [{"dataset": "site", "label": "toxic", "roc_auc": float("nan"),
                                                                  "average_precision": float("inf")}]})
    manifest = strict_json((tmp_path / "model" / bundle.MANIFEST_FILE).read_text())
    assert manifest["dev_metrics"][0]["roc_auc"] is None and manifest["dev_metrics"][0]["average_precision"] is None
    assert bundle.read_manifest(tmp_path / "model")["version"] == manifest["version"]
