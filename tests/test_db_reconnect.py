"""PostgreSQL connections are pinged only after sitting idle; dead ones are replaced."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text

from moderation import db
from tests.conftest import POSTGRES_URL


def _pid(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT pg_backend_pid()"))


def _kill(pid: int) -> None:
    admin = db.make_engine(POSTGRES_URL)
    with admin.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


@pytest.fixture
def engine(postgres_schema):
    engine = db.make_engine(POSTGRES_URL, schema=postgres_schema)
    engine.pool.dispose()
    yield engine
    engine.dispose()


def test_a_dead_idle_connection_is_replaced_before_the_request_sees_it(engine, monkeypatch):
    first = _pid(engine)
    _kill(first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had sat idle
    assert _pid(engine) != first


def test_a_busy_connection_is_not_pinged_and_a_dead_one_fails_once_then_reconnects(engine):
    pings = []
    original = engine.dialect.do_ping
    engine.dialect.do_ping = lambda connection: pings.append(1) or original(connection)
    first = _pid(engine)
    assert _pid(engine) == first and not pings  # reused within a second: trusted, no extra round trip
    _kill(first)
    with pytest.raises(exc.DBAPIError) as failed:
        _pid(engine)
    assert failed.value.connection_invalidated
    assert _pid(engine) != first
