"""Write an evaluation report: report.md, metrics.json and PNG plots.

The plots are the ones a newsroom needs to pick its workload: ROC and precision-recall
per label, score histograms by class, and the review-rate vs missed-bad curve.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from moderation.bundle import json_ready  # noqa: E402
from training.evaluate import threshold_sweep, workload  # noqa: E402

SWEEP_POINTS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)

METRIC_COLUMNS = (
    "dataset", "label", "rows", "positives", "roc_auc", "average_precision", "f1_at_review", "f1_at_reject",
    "accepted", "reviewed", "rejected", "missed_bad", "wrongly_rejected",
)


def markdown_table(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    """Render rows as a Markdown table; floats to three decimals."""
    def cell(value):
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.3f}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot_label(path: Path, label: str, p: np.ndarray, y: np.ndarray, thresholds: dict[str, float]) -> None:
    """Draw ROC, precision-recall, score histograms and the workload curve for one label."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    if len(set(y.tolist())) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        axes[0].plot(fpr, tpr)
        precision, recall, _ = precision_recall_curve(y, p)
        axes[1].plot(recall, precision)
    axes[0].set(title=f"{label}: ROC", xlabel="false positive rate", ylabel="true positive rate")
    axes[1].set(title=f"{label}: precision-recall", xlabel="recall", ylabel="precision")
    bins = np.linspace(0, 1, 41)
    axes[2].hist(p[y == 0], bins=bins, alpha=0.6, label="good", log=True)
    axes[2].hist(p[y == 1], bins=bins, alpha=0.6, label="bad", log=True)
    for name, value in thresholds.items():
        axes[2].axvline(value, linestyle="--", color="black" if name == "reject_at" else "grey")
    axes[2].set(title=f"{label}: scores by class", xlabel="score")
    axes[2].legend()
    sweep = threshold_sweep(p, y)
    axes[3].plot([s["accepted"] for s in sweep], [s["missed_bad"] for s in sweep], marker=".")
    axes[3].set(title=f"{label}: auto-accepted vs bad let through", xlabel="share auto-accepted", ylabel="share of bad comments missed")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(
    report_dir: Path,
    *,
    title: str,
    rows: list[dict],
    labels: list[str],
    probabilities: np.ndarray,
    truth: dict[str, np.ndarray],
    thresholds: dict[str, dict[str, float]],
    sections: dict[str, str] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write report.md, metrics.json (strict JSON: NaN as null) and one PNG per label; return the report folder.

    :param truth: per label, an array with 0/1 where known and -1 where the row lacks it.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {title}", "", "## Per dataset", "", markdown_table(rows, METRIC_COLUMNS), ""]
    parts += [
        "Thresholds: below `review_at` a comment is published, at or above `reject_at` it is rejected, "
        "in between it is held for review. `missed_bad` is the share of bad comments published unreviewed; "
        "`wrongly_rejected` the share of good comments rejected automatically.",
        "",
        markdown_table([{"label": k, **v} for k, v in thresholds.items()], ["label", "review_at", "reject_at"]),
        "",
    ]
    parts += ["## Workload across review thresholds", "",
              "All evaluation rows pooled, each at its dataset's own rate, with the label's `reject_at` kept fixed.", ""]
    for column, label in enumerate(labels):
        known = truth[label] >= 0
        if not known.any() or label not in thresholds:
            continue
        p, y = probabilities[known, column], truth[label][known]
        sweep = [{"review_at": t, **workload(p, y, t, max(t, thresholds[label]["reject_at"]))} for t in SWEEP_POINTS]
        parts += [f"### {label}", "", markdown_table(sweep, ["review_at", "accepted", "reviewed", "rejected", "missed_bad", "wrongly_rejected"]), ""]
    for heading, body in (sections or {}).items():
        parts += [f"## {heading}", "", body, ""]
    parts += ["## Plots", ""]
    for column, label in enumerate(labels):
        known = truth[label] >= 0
        if not known.any() or label not in thresholds:
            continue
        name = f"{label}.png"
        plot_label(report_dir / name, label, probabilities[known, column], truth[label][known], thresholds[label])
        parts.append(f"![{label}]({name})")
    (report_dir / "report.md").write_text("\n".join(parts) + "\n")
    metrics = {"title": title, "per_dataset": rows, "thresholds": thresholds, **(extra or {})}
    # Strict JSON: NaN (e.g. ROC AUC of a label with one class) is written as null.
    (report_dir / "metrics.json").write_text(json.dumps(json_ready(metrics), indent=2, default=float, allow_nan=False) + "\n")
    return report_dir
