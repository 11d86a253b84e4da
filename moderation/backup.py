"""Backups: SQLite through its online backup API, PostgreSQL through pg_dump (printed, not run).

`backup_sqlite` copies a live database page by page inside one read transaction, so the
copy is consistent even while the server keeps writing (WAL mode lets writers go on).
`restore_sqlite` first checks the copy (``PRAGMA integrity_check``, and that its schema
revision is the one this code expects), then copies it over the target, again through the
backup API, so a server holding the database open sees either the old or the new data.

A backup holds everything the database held when it was taken: readers' data that was
erased or purged since comes back with a restore. `erasures_since` counts the erasures a
restore would undo (the audit log records that one happened, never whose), so the command
can say that they must be run again. A copy gets the database file's permissions, never
looser: it holds the same personal data, key hashes and webhook secrets.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

COUNTED = ("comments", "audit_log", "api_keys", "users")


class BackupError(Exception):
    """The backup or restore was refused or failed; the message says why."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL; None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def default_name(source: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return source.with_name(f"{source.stem}-backup-{stamp}.db")


def check(path: Path) -> dict:
    """Integrity and contents of a backup file: {"integrity", "revision", "counts"}; raise BackupError if unreadable."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise BackupError(f"{path}: {error}") from None
    try:
        integrity = "; ".join(row[0] for row in connection.execute("PRAGMA integrity_check"))
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED if table in tables}
    except sqlite3.Error as error:
        raise BackupError(f"{path} is not a moderation database: {error}") from None
    finally:
        connection.close()
    return {"integrity": integrity, "revision": revision[0] if revision else None, "counts": counts}


def backup_sqlite(source: Path, out: Path) -> dict:
    """Copy the live database ``source`` to ``out`` (written to a temporary file, then renamed); return `check` of it."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if out.exists():
        raise BackupError(f"{out} exists; choose another --out")
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    mode = stat.S_IMODE(source.stat().st_mode) & 0o666
    try:  # created before any byte is written: never readable by more people than the database itself
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode))
        os.chmod(partial, mode)  # os.open's mode is cut by the umask, never widened
    except OSError as error:
        raise BackupError(f"cannot write {out}: {error.strerror}") from None
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)  # all pages in one step: one read transaction, one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    except sqlite3.Error as error:
        raise BackupError(f"backup failed: {error}") from None
    finally:
        dst.close()
        src.close()
    result = check(partial)
    if result["integrity"] != "ok":
        raise BackupError(f"the copy failed its integrity check: {result['integrity']}")
    os.replace(partial, out)
    return result


def erasures_since(backup: Path, target: Path) -> int:
    """How many erasures the database ``target`` holds that ``backup`` does not: restoring ``backup``
    brings those readers' data back, so they must be run again. Erasures are few: compared whole."""
    if not target.is_file():
        return 0
    query = "SELECT id, comment_id, actor, created_at FROM audit_log WHERE action = 'erase'"
    try:
        with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as copy:
            kept = set(copy.execute(query))
        with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=30)) as live:
            return sum(row not in kept for row in live.execute(query))
    except sqlite3.Error as error:
        raise BackupError(f"cannot compare {backup} with {target}: {error}") from None


def restore_sqlite(backup: Path, target: Path, expected_revision: str) -> dict:
    """Replace the database ``target`` with ``backup`` after checking the backup; return `check` of it."""
    result = check(backup)
    if result["integrity"] != "ok":
        raise BackupError(f"{backup} failed its integrity check: {result['integrity']}")
    if result["revision"] != expected_revision:
        raise BackupError(f"{backup} has schema revision {result['revision']}, this code needs {expected_revision}: "
                          "restore it with the version of the code that made it, or restore then run `moderation db upgrade` "
                          "with that version")
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
    except sqlite3.Error as error:
        raise BackupError(f"restore failed: {error}") from None
    finally:
        dst.close()
        src.close()
    return result


def postgres_commands(database_url: str, schema: str | None, out: str | None) -> str:
    """What to run for PostgreSQL: pg_dump and pg_restore (the password is not printed: use PGPASSWORD or ~/.pgpass)."""
    url = make_url(database_url)._replace(drivername="postgresql", password=None)  # URL.set ignores None
    plain = url.render_as_string(hide_password=False)
    only = f" --schema={schema}" if schema else ""
    out = out or "moderation-$(date -u +%Y%m%dT%H%M%SZ).dump"
    return (
        "PostgreSQL is backed up with its own tools; this command does not run them. Back up (consistent while the server runs):\n"
        f"  pg_dump --format=custom{only} --file={out} '{plain}'\n"
        "Restore (stop the service first; --clean drops what the dump recreates):\n"
        f"  pg_restore --clean --if-exists --no-owner{only} --dbname='{plain}' {out}\n"
        "then `moderation db upgrade` if the dump came from an older version. A restore brings back readers' data erased "
        "since the dump was taken (`moderation erase`: run those erasures again) and purged since (run `moderation purge`)."
    )
