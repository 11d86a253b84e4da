"""Prometheus metrics: requests, latency, decisions (automatic and human), queue depth, model version.

Under gunicorn every worker is its own process, so metrics are kept in
PROMETHEUS_MULTIPROC_DIR (set by `moderation serve`) and merged at scrape time.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter("moderation_http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "moderation_http_request_seconds", "Time to answer an HTTP request", ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DECISIONS = Counter("moderation_decisions_total", "Automatic decisions at intake", ["outcome"])
HUMAN_DECISIONS = Counter(
    "moderation_human_decisions_total", "Decisions people applied (API, review desk, Akismet reports), by action and reason",
    ["action", "reason"],
)
LABEL_FLAGS = Counter(
    "moderation_label_flags_total", "Comments whose label score reached its review threshold (the article section's, if it has its own), "
    "by label and by the decision taken at intake", ["label", "outcome"],
)
MODEL_INFO = Gauge("moderation_model_info", "The model version this process serves (value 1)", ["version"], multiprocess_mode="liveall")


def record_decision(outcome: str, scores: dict | None, thresholds: dict[str, dict[str, float]]) -> None:
    """Count one decision at intake, and each label that flagged it under ``thresholds`` (the comment's section's)."""
    DECISIONS.labels(outcome).inc()
    for label, score in (scores or {}).items():
        limits = thresholds.get(label)
        if limits and score >= limits["review_at"]:
            LABEL_FLAGS.labels(label, outcome).inc()


def record_human_decision(action: str, reason: str | None) -> None:
    """Count one applied human decision; `store.decide` calls it, so every door counts alike."""
    HUMAN_DECISIONS.labels(action, reason or "").inc()


class _QueueDepth:
    """Reads the queue depth from the database at scrape time (the same for every worker)."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from moderation import store
        from moderation.db import get_session

        family = GaugeMetricFamily("moderation_comments", "Comments by status", labels=["status"])
        try:
            with self.app.app_context():
                for status, count in store.count_by_status(get_session()).items():
                    family.add_metric([status], count)
        except Exception:  # the database being down must not break the scrape
            return
        yield family


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics."""

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        if endpoint != "/metrics":
            REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
            if "request_started" in g:
                LATENCY.labels(endpoint).observe(time.perf_counter() - g.request_started)
        return response

    @app.get("/metrics")
    def metrics_endpoint():
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(registry)
        else:
            from prometheus_client import REGISTRY

            registry = REGISTRY
        output = generate_latest(registry)
        queue_registry = CollectorRegistry()
        queue_registry.register(_QueueDepth(current_app._get_current_object()))
        return Response(output + generate_latest(queue_registry), mimetype=CONTENT_TYPE_LATEST)
