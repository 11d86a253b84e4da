"""Service commands: db upgrade, keys, serve's refusals, and the schema check at start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from moderation import create_app
from moderation.cli import cli
from moderation.config import SETTINGS, ConfigError, load_config
from moderation.db import SchemaOutOfDate, make_engine

README = Path(__file__).resolve().parents[1] / "README.md"
CLI = Path(sys.executable).parent / "moderation"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("MODERATION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("MODERATION_DATABASE_URL", raising=False)
    return tmp_path


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_keys_are_printed_once_listed_without_secret_and_revocable(env):
    assert run("db", "upgrade").exit_code == 0
    created = run("keys", "create", "--name", "example.org", "--role", "site")
    assert created.exit_code == 0
    key = created.output.strip()
    assert created.output == key + "\n" and re.fullmatch(r"cm_s_[\w-]{40,}", key)
    listed = run("keys", "list").output
    assert "example.org\tsite" in listed and key not in listed
    assert run("keys", "create", "--name", "example.org").exit_code != 0
    assert run("keys", "revoke", "example.org").exit_code == 0
    assert "revoked" in run("keys", "list").output
    assert run("keys", "revoke", "example.org").exit_code != 0


def test_revoked_key_is_refused_by_the_api(env, tiny_bundle):
    run("db", "upgrade")
    key = run("keys", "create", "--name", "blog").output.strip()
    app = create_app({"MODEL_DIR": str(tiny_bundle), "API_KEY_CACHE_SECONDS": 0})  # the cache's grace is tested in test_error_shape
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/v1/comments", json={"text": "hello"}, headers=headers).status_code == 201
    run("keys", "revoke", "blog")
    assert client.post("/api/v1/comments", json={"text": "hello"}, headers=headers).status_code == 401


def test_a_rotated_key_keeps_the_sites_comments_retries_and_polling(env, tiny_bundle):
    run("db", "upgrade")
    old = run("keys", "create", "--name", "news.example").output.strip()
    app = create_app({"MODEL_DIR": str(tiny_bundle), "API_KEY_CACHE_SECONDS": 0})
    client = app.test_client()
    body = {"text": "hello", "external_id": "wp-1"}
    first = client.post("/api/v1/comments", json=body, headers={"Authorization": f"Bearer {old}"})
    assert first.status_code == 201
    rotated = run("keys", "rotate", "news.example")
    new = rotated.output.strip()
    assert rotated.exit_code == 0 and rotated.output == new + "\n" and new != old and new.startswith("cm_s_")
    assert client.post("/api/v1/comments", json=body, headers={"Authorization": f"Bearer {old}"}).status_code == 401
    headers = {"Authorization": f"Bearer {new}"}
    retry = client.post("/api/v1/comments", json=body, headers=headers)
    assert (retry.status_code, retry.get_json()["id"]) == (200, first.get_json()["id"]), "a retry after rotation is no new comment"
    assert client.get(f"/api/v1/comments/{first.get_json()['id']}", headers=headers).status_code == 200
    run("keys", "revoke", "news.example")
    back = run("keys", "rotate", "news.example").output.strip()  # a revoked key is brought back with a new secret
    assert client.post("/api/v1/comments", json=body, headers={"Authorization": f"Bearer {back}"}).status_code == 200
    assert "active" in run("keys", "list").output
    missing = CliRunner().invoke(cli, ["keys", "rotate", "nobody"])
    assert missing.exit_code != 0 and "no key named 'nobody'" in missing.output


def test_the_app_refuses_an_out_of_date_schema(env, tiny_bundle):
    with pytest.raises(SchemaOutOfDate, match="moderation db upgrade"):
        create_app({"MODEL_DIR": str(tiny_bundle)})


def test_serve_refuses_without_model_or_schema(env, tiny_bundle):
    result = run("serve", "--model", str(env / "missing"))
    assert result.exit_code != 0 and "moderation train" in result.output
    result = run("serve", "--model", str(tiny_bundle))
    assert result.exit_code != 0 and "db upgrade" in result.output


def test_postgres_urls_as_platforms_hand_them_out_are_accepted():
    from moderation.db import normalize_url

    assert normalize_url("postgresql://user@host:5432/db") == "postgresql+psycopg://user@host:5432/db"
    assert normalize_url("postgres://user:pw@host/db") == "postgresql+psycopg://user:pw@host/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert make_engine("postgresql://postgres@127.0.0.1:5432/test").dialect.driver == "psycopg"


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert not missing, f"README.md does not document: {missing}"


def test_configuration_layers(tmp_path):
    toml = tmp_path / "moderation.toml"
    toml.write_text('max_links = 5\nrate_limit = "3 per minute"\n')
    environ = {"MODERATION_CONFIG": str(toml), "MODERATION_MAX_LINKS": "7", "MODERATION_LANGUAGES": '["en", "fr"]'}
    config = load_config({"RATE_LIMIT": "9 per minute"}, environ=environ)
    assert config["MAX_LINKS"] == 7  # environment beats the file
    assert config["RATE_LIMIT"] == "9 per minute"  # overrides beat everything
    assert config["LANGUAGES"] == ["en", "fr"]
    assert load_config(environ={"MODERATION_CONFIG": str(toml)})["RATE_LIMIT"] == "3 per minute"


def test_the_toml_file_is_found_in_the_instance_dir_the_environment_names(tmp_path):
    (tmp_path / "moderation.toml").write_text("max_links = 7\n")
    assert load_config(environ={"MODERATION_INSTANCE_DIR": str(tmp_path)})["MAX_LINKS"] == 7
    assert load_config({"INSTANCE_DIR": str(tmp_path)}, environ={})["MAX_LINKS"] == 7


@pytest.mark.parametrize("toml_text, environ, named", [
    ("max_linkz = 7\n", {}, "MAX_LINKZ (did you mean MAX_LINKS?)"),
    ("rate_limit = 5\n", {}, "RATE_LIMIT must be a string"),
    ("max_links = 2.5\n", {}, "MAX_LINKS must be a whole number"),
    ("max_links = [\n", {}, "not valid TOML"),
    ("", {"MODERATION_MAX_LINKS": "three"}, "MODERATION_MAX_LINKS='three' is not an int"),
    ("", {"MODERATION_THRESHOLDS": "nope"}, "MODERATION_THRESHOLDS='nope' is not a JSON"),
    ("", {"MODERATION_THRESHOLDS": '{"toxic": {"review_at": "x"}}'}, "toxic.review_at must be a number"),
    ("", {"MODERATION_THRESHOLDS": '{"toxic": {"review": 0.3}}'}, "only review_at and reject_at are known"),
    ("", {"MODERATION_SECTION_THRESHOLDS": '{"politics": {"toxic": 0.3}}'}, "section 'politics'"),
    ("", {"MODERATION_SECTION_THRESHOLDS": '{"politics": {}, "Politics ": {}}'}, "sections 'politics' and 'Politics ' are one section"),
    ("", {"MODERATION_LANGUAGES": '"en"'}, "LANGUAGES must be a list of strings"),
])
def test_unknown_or_mistyped_settings_are_refused_by_name(tmp_path, toml_text, environ, named):
    (tmp_path / "moderation.toml").write_text(toml_text)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(environ={"MODERATION_INSTANCE_DIR": str(tmp_path), **environ})


def test_a_bad_setting_stops_a_command_with_one_line(tmp_path):
    result = subprocess.run([str(CLI), "keys", "list"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "MODERATION_INSTANCE_DIR": str(tmp_path), "MODERATION_MAX_LINKS": "three"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["Error: MODERATION_MAX_LINKS='three' is not an int (default 2)"]


def test_desk_users_are_added_with_a_password_from_stdin_and_managed_from_the_shell(env):
    from sqlalchemy.orm import Session

    from moderation import accounts

    run("db", "upgrade")
    runner = CliRunner()
    added = runner.invoke(cli, ["users", "add", "mia", "--role", "admin"], input="a long enough secret\n")
    assert added.exit_code == 0, added.output
    assert "a long enough secret" not in added.output
    assert runner.invoke(cli, ["users", "add", "mia"], input="another long secret\n").exit_code != 0  # taken
    short = runner.invoke(cli, ["users", "add", "max"], input="short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    assert runner.invoke(cli, ["users", "add", "max"], input="").exit_code != 0  # no password at all
    assert re.search(r"^mia\tadmin\t", run("users", "list").output, re.M)
    engine = make_engine(load_config()["DATABASE_URL"])
    with Session(engine) as session:
        assert accounts.authenticate(session, "mia", "a long enough secret", max_failures=5, lockout=timedelta(0)).user
        for _ in range(5):
            accounts.authenticate(session, "mia", "wrong", max_failures=5, lockout=timedelta(hours=1))
        assert accounts.authenticate(session, "mia", "a long enough secret", max_failures=5, lockout=timedelta(hours=1)).user is None
    assert run("users", "unlock", "mia").exit_code == 0
    assert runner.invoke(cli, ["users", "passwd", "mia"], input="a brand new secret\n").exit_code == 0
    assert run("users", "disable", "mia").exit_code == 0
    assert "disabled" in run("users", "list").output
    assert run("users", "disable", "nobody").exit_code != 0
    with Session(engine) as session:
        assert accounts.authenticate(session, "mia", "a brand new secret", max_failures=5, lockout=timedelta(0)).user is None
    engine.dispose()
