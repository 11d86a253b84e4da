"""Is the live model still right for this site? Score drift and agreement with moderators.

Drift is measured per label with the population stability index (PSI) between score
histograms: the last N days against the model's training data (public dev rows), and
against the site's own N days before (its recent habit). By convention PSI under 0.1 is
stable, 0.1-0.25 a moderate shift, above 0.25 a major one. Agreement comes from the
moderators' decisions on the comments each label flagged; when people overturn a
label's flags more often than DRIFT_ALERT_OVERTURN, an alert line says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation.schema import Comment
from moderation.stats import LabelOverturns

BINS = np.linspace(0.0, 1.0, 11)
FLOOR = 1e-4  # an empty bin counts as this share, so PSI stays finite


def shares(scores: list[float]) -> np.ndarray:
    counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=BINS)
    return counts / max(counts.sum(), 1)


def psi(reference: list[float], current: list[float]) -> float:
    """Population stability index of ``current`` against ``reference`` (NaN when either is empty)."""
    if not reference or not current:
        return float("nan")
    r, c = np.maximum(shares(reference), FLOOR), np.maximum(shares(current), FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def shift(value: float) -> str:
    if math.isnan(value):
        return "no data"
    return "stable" if value < 0.1 else "moderate shift" if value < 0.25 else "major shift"


def site_scores(session: Session, since: datetime, until: datetime | None = None, chunk: int = 2000) -> dict[str, list[float]]:
    """Scores of the comments received in [since, until), per label (read in chunks)."""
    query = select(Comment.scores).where(Comment.created_at >= since)
    if until is not None:
        query = query.where(Comment.created_at < until)
    found: dict[str, list[float]] = {}
    for partition in session.execute(query.execution_options(yield_per=chunk)).partitions():
        for (scores,) in partition:
            for label, value in (scores or {}).items():
                found.setdefault(label, []).append(float(value))
    return found


@dataclass
class DriftRow:
    label: str
    recent: int
    recent_mean: float
    training_mean: float
    psi_training: float
    psi_before: float
    flagged_decided: int
    overturn_rate: float | None


def report(labels: list[str], recent: dict, before: dict, training: dict, overturns: list[LabelOverturns],
           *, alert_rate: float, min_decisions: int) -> tuple[list[DriftRow], list[str]]:
    """One row per label, and the alert lines (overturn rates above ``alert_rate`` on enough decisions)."""
    by_label = {o.label: o for o in overturns}
    rows = []
    for label in labels:
        now, then, trained = recent.get(label, []), before.get(label, []), training.get(label, [])
        judged = by_label.get(label, LabelOverturns(label))
        rows.append(DriftRow(
            label=label, recent=len(now), recent_mean=float(np.mean(now)) if now else float("nan"),
            training_mean=float(np.mean(trained)) if trained else float("nan"),
            psi_training=psi(trained, now), psi_before=psi(then, now), flagged_decided=judged.decided, overturn_rate=judged.rate,
        ))
    return rows, overturn_alerts([by_label[label] for label in labels if label in by_label], alert_rate=alert_rate, min_decisions=min_decisions)


def overturn_alerts(overturns: list[LabelOverturns], *, alert_rate: float, min_decisions: int) -> list[str]:
    """An alert line per label whose flags people overturn more often than ``alert_rate`` (on enough decisions)."""
    return [
        f"ALERT {o.label}: moderators overturned {o.overturned} of {o.decided} flags ({o.rate:.0%}, above {alert_rate:.0%}): "
        "review the thresholds or retrain"
        for o in overturns if o.rate is not None and o.decided >= min_decisions and o.rate > alert_rate
    ]
