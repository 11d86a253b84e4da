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
