"""moderation backup / restore: a consistent SQLite copy while the server writes, checked restores, PostgreSQL's commands,
the copy's permissions, and the erasures a restore would undo."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner

from moderation import backup as backups
from moderation.cli import cli


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def counts(path) -> dict:
    with sqlite3.connect(path) as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("comments", "audit_log")}


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_backup_while_writing_then_restore_into_a_fresh_database(api, database, sqlite_template, tmp_path, monkeypatch):
    source = backups.sqlite_path(database["DATABASE_URL"])
    stop, posted, errors = threading.Event(), [], []

    def keep_posting():
        client = api.app.test_client()
        while not stop.is_set() and len(posted) < 2000:
            response = client.post("/api/v1/comments", headers=api.headers("site"),
                                   json={"text": f"Comment number {len(posted)} on the bridge story", "article": {"id": "a1"}})
            (posted if response.status_code == 201 else errors).append(response.status_code)

    writer = threading.Thread(target=keep_posting)
    writer.start()
    try:
        while len(posted) < 20:
            time.sleep(0.01)
        monkeypatch.setenv("MODERATION_DATABASE_URL", database["DATABASE_URL"])
        out = tmp_path / "copy.db"
        result = run("backup", "--out", str(out))
        during = len(posted)
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert not errors
    assert "integrity ok" in result.output
    assert 20 <= during and len(posted) > 20
    copied = counts(out)
    assert 20 <= copied["comments"] <= len(posted)
    assert copied["audit_log"] == copied["comments"], "each comment and its audit entry are written together: a consistent copy has both"
    with sqlite3.connect(out) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert run("backup", "--out", str(out)).exit_code != 0  # never overwrites

    fresh = tmp_path / "fresh" / "moderation.db"
    fresh.parent.mkdir()
    shutil.copy(sqlite_template, fresh)
    monkeypatch.setenv("MODERATION_DATABASE_URL", f"sqlite:///{fresh}")
    declined = run("restore", str(out), input="n\n")
    assert declined.exit_code != 0 and counts(fresh) == {"comments": 0, "audit_log": 0}
    restored = run("restore", str(out), "--yes")
    assert restored.exit_code == 0, restored.output
    assert counts(fresh) == copied
    assert run("db", "upgrade").exit_code == 0  # the restored database is one the code accepts


def test_restore_refuses_a_damaged_file_or_another_schema_version(sqlite_template, tmp_path, monkeypatch):
    target = tmp_path / "moderation.db"
    shutil.copy(sqlite_template, target)
    monkeypatch.setenv("MODERATION_DATABASE_URL", f"sqlite:///{target}")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\0" + b"\xff" * 5000)
    refused = run("restore", str(garbage), "--yes")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    older = tmp_path / "older.db"
    shutil.copy(sqlite_template, older)
    with sqlite3.connect(older) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'abc123'")
    refused = run("restore", str(older), "--yes")
    assert refused.exit_code != 0 and "abc123" in refused.output
    with pytest.raises(backups.BackupError, match="abc123"):
        backups.restore_sqlite(older, target, "head")


def test_postgresql_gets_the_pg_dump_commands_without_the_password(monkeypatch):
    monkeypatch.setenv("MODERATION_DATABASE_URL", "postgresql://mod:s3cret-pw@db.internal:5432/moderation")
    monkeypatch.setenv("MODERATION_DATABASE_SCHEMA", "site_a")
    for command in (["backup"], ["restore", __file__, "--yes"]):
        result = run(*command)
        assert result.exit_code == 1
        assert "pg_dump --format=custom --schema=site_a" in result.output and "pg_restore --clean" in result.output
        assert "mod@db.internal:5432/moderation" in result.output and "s3cret-pw" not in result.output


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_restore_says_which_erasures_it_undoes(api, database, tmp_path, monkeypatch):
    """A backup taken before a reader's erasure brings their data back: the restore must say so, loudly."""
    from sqlalchemy.orm import Session

    from moderation import privacy

    monkeypatch.setenv("MODERATION_DATABASE_URL", database["DATABASE_URL"])
    api.post_comment("Before the erasure.", author={"email": "reader@example.org", "name": "A Reader"})
    out = tmp_path / "before-erasure.db"
    assert run("backup", "--out", str(out)).exit_code == 0
    assert "erasures" not in run("restore", str(out), "--yes").output  # nothing undone: nothing said
    with Session(api.app.extensions["moderation.engine"]) as session:
        assert privacy.erase(session, "reader@example.org", actor="dpo").comments == 1
    restored = run("restore", str(out), "--yes")
    assert restored.exit_code == 0, restored.output
    assert "warning: 1 erasures were made after this backup was taken" in restored.output
    assert "1 erasures to run again" in restored.output


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_backup_is_never_readable_by_more_people_than_the_database(api, database, tmp_path, monkeypatch):
    import os
    import stat

    source = backups.sqlite_path(database["DATABASE_URL"])
    os.chmod(source, 0o600)  # the operator keeps readers' data, key hashes and webhook secrets to the service's user
    monkeypatch.setenv("MODERATION_DATABASE_URL", database["DATABASE_URL"])
    out = tmp_path / "copy.db"
    assert run("backup", "--out", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_backup_to_a_folder_that_does_not_exist_fails_in_one_line(api, database, tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_DATABASE_URL", database["DATABASE_URL"])
    result = CliRunner().invoke(cli, ["backup", "--out", str(tmp_path / "no" / "such" / "copy.db")])
    assert result.exit_code == 1 and not isinstance(result.exception, OSError)
    assert result.output.startswith("Error: cannot write") and len(result.output.strip().splitlines()) == 1
