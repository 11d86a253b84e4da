"""A serving app's SQLite write-ahead log is copied back into the database file by a background
thread (db.SqliteCheckpointer), never in a request's commit."""

from __future__ import annotations

import time

from sqlalchemy import text

from moderation import db


def _wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_commits_leave_the_checkpoint_to_the_background_thread(tmp_path):
    path = tmp_path / "m.db"
    engine = db.make_engine(f"sqlite:///{path}", background_checkpoints=True)
    try:
        with engine.begin() as connection:
            assert connection.scalar(text("PRAGMA wal_autocheckpoint")) == db.SAFETY_CHECKPOINT_PAGES
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)"))
        size_before = path.stat().st_size
        for _ in range(20):  # ~2,000 pages of WAL: past the 1,000 at which a commit would checkpoint itself
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (payload) VALUES (:p)"), [{"p": "x" * 4000}] * 100)
        assert _wait_for(lambda: path.stat().st_size > size_before + 4_000_000), "the rows never reached the database file"
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM t")) == 2000
    finally:
        engine.dispose()


def test_without_it_the_usual_automatic_checkpoints_stay(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'cli.db'}")  # commands that write in bulk: SQLite's own checkpoints
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("PRAGMA wal_autocheckpoint")) == 1000
    finally:
        engine.dispose()


def test_the_app_checkpoints_in_the_background(api, database):
    if "DATABASE_SCHEMA" in database:
        return  # PostgreSQL: nothing to checkpoint
    with api.app.extensions["moderation.engine"].connect() as connection:
        assert connection.scalar(text("PRAGMA wal_autocheckpoint")) == db.SAFETY_CHECKPOINT_PAGES
    assert api.post_comment("stored").status_code == 201
