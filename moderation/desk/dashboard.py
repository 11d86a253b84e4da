"""The dashboard: queue depth and age, decisions per day, automatic vs human, overturns by label.

Each chart is its own request and asks only for the numbers it draws.
"""

from __future__ import annotations

from flask import Response, current_app, render_template

from moderation import charts, stats
from moderation.db import get_session
from moderation.drift import overturn_alerts
from moderation.desk import bp
from moderation.desk.signin import signed_in

DAYS = 30


def _png(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "private, max-age=60"})


@bp.get("/dashboard")
@signed_in()
def dashboard():
    service, config = current_app.extensions["moderation.service"], current_app.config
    numbers = stats.dashboard(get_session(), service.rules.thresholds, days=DAYS)
    alerts = overturn_alerts(numbers.overturns, alert_rate=config["DRIFT_ALERT_OVERTURN"], min_decisions=config["DRIFT_MIN_DECISIONS"])
    return render_template(
        "desk/dashboard.html", numbers=numbers, days=DAYS, alerts=alerts,
        model_version=service.assessor.model.version if service.assessor else None, model_error=service.model_error,
    )


@bp.get("/dashboard/decisions.png")
@signed_in()
def decisions_chart():
    return _png(charts.decisions_chart(stats.decisions_per_day(get_session(), stats.window_start(DAYS), DAYS)))


@bp.get("/dashboard/overturns.png")
@signed_in()
def overturns_chart():
    thresholds = current_app.extensions["moderation.service"].rules.thresholds
    return _png(charts.overturn_chart(stats.overturns(get_session(), stats.window_start(DAYS), thresholds)[0]))
