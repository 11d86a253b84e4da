"""Pure helpers that turn stored comments into what the templates show.

Nothing here produces HTML: templates escape every piece, so a comment's text, names
and links can never become markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from moderation.schema import utcnow
from moderation.store import aware


@dataclass(frozen=True)
class Segment:
    """A piece of a comment's text; ``label`` and ``weight`` are set when the piece drove a score."""

    text: str
    label: str | None = None
    weight: float = 0.0


def drivers(scores: dict[str, float], reasons: list[str], likely: float = 0.5) -> set[str]:
    """The labels worth highlighting: those a policy reason names, and any the model thinks likely."""
    named = {label for label in scores for reason in reasons if reason.startswith(f"{label} score")}
    return named | {label for label, score in scores.items() if score >= likely}


def highlight(text: str, terms: list[dict], labels: set[str] | None = None) -> list[Segment]:
    """Split ``text`` at the spans named in ``terms`` (of ``labels`` only, when given); where spans overlap, the heaviest wins.

    Only the labels that drove the decision are worth a moderator's eye: on a clean comment
    every word nudges some label a little, and marking them all would be noise.
    """
    best: dict[tuple[int, int], dict] = {}
    for term in terms or []:
        if labels is not None and term.get("label") not in labels:
            continue
        start, end = term.get("start"), term.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            continue  # a stored term that does not fit this text is ignored, never trusted
        key = (start, end)
        if key not in best or term.get("weight", 0) > best[key].get("weight", 0):
            best[key] = term
    segments, position = [], 0
    for (start, end), term in sorted(best.items()):
        if start < position:
            continue  # overlapping spans: keep the first
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], term.get("label"), float(term.get("weight", 0.0))))
        position = end
    if position < len(text):
        segments.append(Segment(text[position:]))
    return segments


def web_link(url: str | None) -> str | None:
    """Return ``url`` only if it is a plain http(s) address: a ``javascript:`` link must never become clickable."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "http://[": not a link anyone can follow
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """'just now', '5 min', '3 h', '2 d': how long a comment has waited."""
    if moment is None:
        return "—"
    seconds = max(0, int(((now or utcnow()) - aware(moment)).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now"


def duration(delta: timedelta | None) -> str:
    return "—" if delta is None else age(utcnow() - delta)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


def flagged(scores: dict[str, float], reasons: list[str], limits: dict[str, dict[str, float]], deciding: list[str]) -> set[str]:
    """The labels that flagged this comment: decision labels (``deciding``; the others decide nothing)
    whose score reached the label's review threshold (``limits``, with the comment's section's
    overrides), and those a threshold reason names.

    Unlike `drivers`, a label the model merely finds likely is not enough: on a harmless comment
    every word nudges some label a little, and marking those words would say they are the problem.
    """
    reached = {label for label, score in scores.items()
               if label in deciding and label in limits and "review_at" in limits[label] and score >= limits[label]["review_at"]}
    named = {label for label in scores for reason in reasons
             if reason.startswith(f"{label} score") and (" threshold " in reason or "beyond doubt" in reason)}
    return reached | named


def strongest(segments: list[Segment]) -> dict[str, float]:
    """The heaviest weight among each label's marked segments: what a term's strength is relative to."""
    found: dict[str, float] = {}
    for segment in segments:
        if segment.label:
            found[segment.label] = max(found.get(segment.label, 0.0), segment.weight)
    return found


def strength(weight: float, top: float) -> str:
    """A term's weight in words, relative to the strongest term of its label in the same comment.

    Weights are shares of the label's log-odds, on no scale a moderator knows ("5.05" beside a
    score of 0.03 says nothing); next to the strongest term, they do."""
    ratio = weight / top if top > 0 else 0.0
    return "strongest" if ratio >= 0.99 else "strong" if ratio >= 0.5 else "weaker"


def meter_bounds(limit: dict[str, float] | None) -> tuple[float, float] | None:
    """A score bar's low and high marks: the label's review and reject thresholds, kept inside 0-1
    (a threshold of 2.0 means never) and in order; None for a label without thresholds."""
    if not limit or "review_at" not in limit or "reject_at" not in limit:
        return None
    low = round(min(max(limit["review_at"], 0.0), 1.0), 4)
    high = round(min(max(limit["reject_at"], 0.0), 1.0), 4)
    return low, max(low, high)
