"""Dashboard charts as PNG images, drawn on the server with matplotlib (no script runs in the browser)."""

from __future__ import annotations

import io

from moderation.stats import DayCounts, LabelOverturns

_COLORS = {"auto accepted": "#7fb77e", "auto rejected": "#c96b6b", "held for people": "#e0b14a",
           "approved by people": "#4c8bc9", "rejected by people": "#8a5cc2"}


def _figure(width: float = 7.5, height: float = 2.8):
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def decisions_chart(days: list[DayCounts]) -> bytes:
    """Stacked bars per day: what the model decided alone, what it held, and what people decided."""
    figure = _figure()
    axes = figure.add_subplot()
    labels = [d.day.strftime("%d %b") for d in days]
    series = {
        "auto accepted": [d.auto_accepted for d in days], "auto rejected": [d.auto_rejected for d in days],
        "held for people": [d.held for d in days],
    }
    bottom = [0] * len(days)
    for name, values in series.items():
        axes.bar(labels, values, bottom=bottom, color=_COLORS[name], label=name, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values)]
    human = [d.human for d in days]
    axes.plot(labels, human, color=_COLORS["approved by people"], marker="o", markersize=3, label="decided by people")
    axes.set_ylabel("comments")
    axes.set_title("Decisions per day (UTC)", fontsize=10)
    axes.tick_params(axis="x", labelrotation=90, labelsize=7)
    axes.legend(fontsize=7, loc="upper left", frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def overturn_chart(overturns: list[LabelOverturns]) -> bytes:
    """Per label: share of the model's flags that people overturned (approved)."""
    figure = _figure(5.0, 2.6)
    axes = figure.add_subplot()
    names = [o.label for o in overturns]
    rates = [100 * (o.rate or 0.0) for o in overturns]
    bars = axes.barh(names, rates, color="#4c8bc9")
    for bar, item in zip(bars, overturns):
        text = f"{item.overturned}/{item.decided}" if item.decided else "no decisions"
        axes.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, text, va="center", fontsize=8)
    axes.set_xlim(0, 110)
    axes.set_xlabel("% of flagged comments approved by people")
    axes.set_title("How often people overturn the model, by label", fontsize=10)
    axes.invert_yaxis()
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)
