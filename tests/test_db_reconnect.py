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


def test_intake_on_a_dead_busy_connection_fails_once_with_503_then_reconnects(make_api, database):
    """Intake runs its statements on the connection's own cursor (store._OnCursor): a connection
    that died while in use fails that one request, in the usual 503 shape, and the next one
    gets a fresh connection, as with SQLAlchemy's own execution."""
    if "DATABASE_SCHEMA" not in database:
        pytest.skip("PostgreSQL only: a SQLite connection cannot be lost")
    api = make_api()
    assert api.post_comment("first").status_code == 201
    engine = api.app.extensions["moderation.engine"]
    _kill(_pid(engine))  # the one pooled connection, used a moment ago: it is not pinged
    failed = api.post_comment("second")
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "5"
    assert "connection was lost" in failed.get_json()["error"]["message"]
    assert api.post_comment("third").status_code == 201
    assert [c["text"] for c in api.get("/api/v1/queue?sort=age").get_json()["comments"]] == ["first", "third"]


def test_intake_errors_are_sqlalchemys(make_api, database, monkeypatch):
    """A constraint the database enforces surfaces as SQLAlchemy's IntegrityError from the cursor path,
    which intake answers as a retry (here: a race with the comment stored under the same external_id)."""
    from moderation import store

    api = make_api()
    first = api.post_comment("original", external_id="race-1").get_json()
    real = store.intake_facts
    # As if the original were stored between the lookup and the INSERT: the lookup misses it.
    monkeypatch.setattr(store, "intake_facts", lambda session, **kw: store.IntakeFacts() if kw["external_id"] == "race-1" else real(session, **kw))
    raced = api.post_comment("original", external_id="race-1")
    assert raced.status_code == 200 and raced.get_json()["id"] == first["id"]
