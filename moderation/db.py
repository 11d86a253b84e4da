"""Database access: one engine per app, one session per request, Alembic-owned schema.

SQLite (the embedded default) runs in WAL mode with a busy timeout, so readers never
block the writer. PostgreSQL URLs as hosting platforms hand them out
(``postgres://`` or ``postgresql://user@host/db``) are mapped onto the psycopg 3 driver.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported by the functions that read or run migrations, not here: a command
# that only queries (`score` looking up the live model) is spared its ~0.15 s import.
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK = 724_331  # pg_advisory_lock key: one migrator at a time across hosts


class SchemaOutOfDate(RuntimeError):
    """The database schema is behind the code; `moderation db upgrade` fixes it."""


def normalize_url(url: str) -> str:
    """Map plain PostgreSQL URLs onto the psycopg 3 driver; leave others alone."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, schema: str | None = None, *, timeout: float = 30.0, background_checkpoints: bool = False) -> Engine:
    """Create an engine; ``schema`` (PostgreSQL only) sets the search path, e.g. for test isolation.

    ``timeout`` bounds every wait for the database: SQLite's busy timeout (a writer
    waiting for another's lock), PostgreSQL's connect timeout and the wait for a free
    pooled connection. Past it the request fails (the API answers 503) instead of hanging.
    ``background_checkpoints`` (SQLite files): see `SqliteCheckpointer`.
    """
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": timeout, "check_same_thread": False})
        busy_ms = int(timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if checkpointer is not None:
                cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
                checkpointer.start()
            cursor.close()

        checkpointer = SqliteCheckpointer(engine, database) if background_checkpoints and database and database != ":memory:" else None
        return engine
    connect_args = {"options": f"-c search_path={schema}"} if schema else {}
    connect_args["connect_timeout"] = max(1, round(timeout))  # libpq takes whole seconds
    engine = create_engine(url, pool_size=5, max_overflow=10, pool_timeout=timeout, connect_args=connect_args)
    _ping_when_idle(engine)
    return engine


CHECKPOINT_SECONDS = 0.25
SAFETY_CHECKPOINT_PAGES = 10_000  # ~40 MB of WAL: the foreground checkpoints only if the background ones stop


class SqliteCheckpointer:
    """Copies an SQLite database's write-ahead log back into the database file from a background
    thread, every CHECKPOINT_SECONDS, instead of in whichever request's commit crossed the
    WAL's 1,000-page mark: that commit waited for the copy and its fsync (20-40 ms here, a
    p99 of its own) and, on average, every request for 0.3 ms.

    The checkpoints are PASSIVE: they never wait for, nor block, readers and writers (a
    writer appends to the WAL while earlier frames are copied). Durability is unchanged:
    a commit is in the WAL before the answer is sent, as before. If the thread stops, the
    engine's connections checkpoint by themselves past SAFETY_CHECKPOINT_PAGES. One thread
    per process and engine, started on the first connection (so in each gunicorn worker,
    after the fork); it ends when the engine is gone.
    """

    def __init__(self, engine: Engine, database: str):
        self._engine = weakref.ref(engine)
        self.database = database
        self._pid: int | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True).start()

    def _run(self) -> None:
        import sqlite3

        pid, connection = os.getpid(), None
        try:
            while self._engine() is not None and self._pid == pid:
                time.sleep(CHECKPOINT_SECONDS)
                try:
                    if connection is None:  # mode=rw: never create the file it checkpoints
                        connection = sqlite3.connect(f"file:{Path(self.database).resolve()}?mode=rw", uri=True, timeout=0, check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    pass  # busy, or the file is gone: try again next time
        finally:
            if connection is not None:
                connection.close()


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle for PING_AFTER_IDLE_SECONDS.

    pool_pre_ping would cost a round trip on every request. Connections that were in use
    a moment ago are trusted; those that sat idle (when restarts and dropped idle
    connections happen) are checked, and a dead one is replaced before the request sees
    it. A connection killed in the second since its last use fails its request once, and
    SQLAlchemy then replaces every pooled connection (error-driven reconnect).
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection, record):
        record.info["last_used"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        if time.monotonic() - record.info.get("last_used", 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection is dead: {error}") from error  # the pool connects anew


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest migration; on PostgreSQL, one host at a time."""
    from alembic import command

    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(engine), "head")
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
    else:
        command.upgrade(alembic_config(engine), "head")


def check_schema(engine: Engine) -> None:
    """Raise `SchemaOutOfDate` unless the database is at the latest migration."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, the code needs {head}: run `moderation db upgrade`"
        )


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory, and close sessions after each request."""
    engine = make_engine(app.config["DATABASE_URL"], app.config.get("DATABASE_SCHEMA"),
                         timeout=float(app.config.get("DATABASE_TIMEOUT_SECONDS") or 30.0), background_checkpoints=True)
    app.extensions["moderation.engine"] = engine
    app.extensions["moderation.sessions"] = sessionmaker(engine, expire_on_commit=False)
    # PostgreSQL only: SQLite's driver already starts a transaction only before a write.
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
    app.extensions["moderation.autocommit_sessions"] = sessionmaker(autocommit, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def get_engine() -> Engine:
    return current_app.extensions["moderation.engine"]


def get_session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["moderation.sessions"]()
    return g.db_session


def open_autocommit_session() -> Session:
    """Open this request's session in autocommit mode, before anything else uses one.

    For views whose every write is a single statement: on PostgreSQL each statement then
    commits on its own, saving the BEGIN and COMMIT round trips (durability is the same:
    the server has committed before it answers). Elsewhere, the usual session.
    """
    if "db_session" in g:
        raise RuntimeError("this request already has a database session")
    g.db_session = current_app.extensions["moderation.autocommit_sessions"]()
    return g.db_session


def close_session(_error=None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
