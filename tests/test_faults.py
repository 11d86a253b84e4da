"""Faults under a short load (benchmarks/faults.py runs the same scenarios longer and reports them).

Each scenario: 4 clients posting comments for a few seconds against the service on loopback,
one fault injected and lifted in the middle. Never touched: the PostgreSQL and Redis servers
(their outages are a TCP proxy we cut). Corrupt or missing model bundles are covered elsewhere:
tests/test_service_cli.py::test_serve_refuses_without_model_or_schema (at start) and
tests/test_learning_loop.py::test_a_tampered_bundle_is_never_promoted_nor_swapped_in (at promotion).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import _postgres_reachable

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("benchmarks_faults", ROOT / "benchmarks" / "faults.py")
faults = importlib.util.module_from_spec(_spec)
sys.modules["benchmarks_faults"] = faults
_spec.loader.exec_module(faults)


def _consistent(result: dict) -> None:
    """Every 201 is stored exactly once, nothing half-written, no row without an answer unexplained."""
    assert result["missing_201_rows"] == 0, result
    assert result["duplicated_rows"] == 0, result
    assert result["half_written_rows"] == 0, result
    assert result["refusals_without_retry_after"] == 0, result
    assert not any(kind.startswith("500") for kind in result["errors_by_kind"]), result
    # A row whose request got no 201 can only come from a request cut mid-flight.
    cut = sum(count for kind, count in result["errors_by_kind"].items() if kind.startswith(("socket", "503")))
    assert result["rows_without_201"] <= cut, result


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(faults.DEFAULT_REDIS_URL, socket_timeout=2).ping())
    except Exception:
        return False


def _require(reachable: bool, what: str) -> None:
    if not reachable:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs {what}")
        pytest.skip(f"{what} not reachable")


def test_a_killed_worker_is_replaced_and_no_comment_is_lost_or_doubled(tmp_path, tiny_bundle):
    result = faults.kill_worker(tmp_path, tiny_bundle, duration=4)
    _consistent(result)
    assert result["server_alive"] and result["workers_after"] == 2, result
    assert result["worker_replaced_s"] is not None and result["worker_replaced_s"] < 30, result
    assert result["recovery_s"] is not None, result
    assert result["integrity"] == "ok"
    assert result["201s"] > 0


def test_postgres_outage_answers_503_with_retry_after_and_recovers_by_itself(tmp_path, tiny_bundle):
    _require(_postgres_reachable(), f"PostgreSQL at {faults.DEFAULT_POSTGRES_URL}")
    result = faults.postgres_outage(tmp_path, tiny_bundle, duration=5, cut=2.5, postgres_url=faults.DEFAULT_POSTGRES_URL)
    _consistent(result)
    during = result["during_cut"]["by_kind"]
    assert during.get("503 unavailable", 0) > 0, result  # refused clearly while it is gone...
    assert set(during) <= {"503 unavailable", "201"}, result  # ...never a 500 or a dropped connection
    assert result["during_cut"]["slowest_answer_s"] < 10, result  # no hang: bounded by DATABASE_TIMEOUT_SECONDS=2
    assert result["recovery_s"] is not None and result["recovery_s"] < 10, result  # back without a restart
    assert result["server_alive"]


def test_redis_outage_does_not_stop_intake(tmp_path, tiny_bundle):
    _require(_redis_reachable(), f"Redis at {faults.DEFAULT_REDIS_URL}")
    result = faults.redis_outage(tmp_path, tiny_bundle, duration=5, cut=2.5, redis_url=faults.DEFAULT_REDIS_URL)
    _consistent(result)
    assert result["errors_by_kind"] == {}, result  # every comment got its 201
    assert result["during_cut"]["by_kind"].get("201", 0) > 0, result
    assert result["logged_fallback"], "the fall-back to in-memory counters must be logged"
    assert result["server_alive"]


def test_sqlite_locked_past_the_busy_timeout_answers_503_then_recovers_intact(tmp_path, tiny_bundle):
    result = faults.sqlite_busy(tmp_path, tiny_bundle, duration=5, hold=2.5)
    _consistent(result)
    assert result["errors_by_kind"].get("503 unavailable", 0) > 0, result
    assert any("busy" in message for message in result["error_messages"]), result
    assert result["recovery_s"] is not None and result["recovery_s"] < 10, result
    assert result["integrity"] == "ok"


def test_sqlite_disk_full_answers_503_stores_nothing_half_and_recovers_intact(tmp_path, tiny_bundle):
    result = faults.disk_full(tmp_path, tiny_bundle, duration=5, full=2.5)
    _consistent(result)
    assert result["during_full"]["by_kind"].get("503 unavailable", 0) > 0, result
    assert any("disk is full" in message for message in result["error_messages"]), result
    assert result["recovery_s"] is not None and result["recovery_s"] < 10, result
    assert result["integrity"] == "ok"
