"""Score a comment, explain the score and decide: the one call serving and the CLI share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from moderation.policy import decide, with_overrides
from moderation.scorer import FastScorer

if TYPE_CHECKING:
    from moderation.model import ModerationModel
    from moderation.weights import ScoringModel


class Assessor:
    """Holds one loaded model (once per process) and turns text into a scored decision."""

    def __init__(self, model: ModerationModel | ScoringModel, *, decision_labels: list[str], thresholds: dict | None = None, explain_top: int = 5):
        self.model = model
        self.scorer = FastScorer(model)
        self.thresholds = with_overrides(model.thresholds, thresholds)
        self.decision_labels = [label for label in decision_labels if label in model.labels]
        self.explain_top = explain_top

    @classmethod
    def from_config(cls, model: ModerationModel | ScoringModel, config: dict) -> "Assessor":
        return cls(model, decision_labels=config["DECISION_LABELS"], thresholds=config["THRESHOLDS"], explain_top=config["EXPLAIN_TOP"])

    def _result(self, scores: dict[str, float], terms: list[dict]) -> dict:
        decision = decide(scores, self.thresholds, self.decision_labels)
        return {
            "scores": {label: round(score, 6) for label, score in scores.items()},
            "decision": decision.action,
            "reasons": decision.reasons,
            "terms": terms,
            "model_version": self.model.version,
        }

    def assess_batch(self, texts: list[str], *, explain: bool = True, chunk: int = 2000) -> Iterator[dict]:
        """Assess many comments in order, as `assess` would one by one, but batched.

        Works through ``chunk`` comments at a time, so memory stays bounded and results
        can be written while the rest is scored. ``explain=False`` leaves ``terms`` empty.
        """
        labels = self.scorer.labels
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            if explain:
                probabilities, terms = self.scorer.explain_batch(part, top=self.explain_top)
            else:
                probabilities, terms = self.scorer.score_batch(part), [[] for _ in part]
            for row, found in zip(probabilities.tolist(), terms):
                yield self._result(dict(zip(labels, row)), found)

    def assess(self, text: str, normalized: str | None = None) -> dict:
        """Return ``{"scores", "decision", "reasons", "terms", "model_version"}`` for one comment."""
        scores, terms = self.scorer.score_and_explain(text, top=self.explain_top, normalized=normalized)
        return self._result(scores, terms)
