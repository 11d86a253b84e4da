"""Structured logs: JSON lines with the request id, and no API key, password or full email address in any of them."""

from __future__ import annotations

import io
import json
import logging

import pytest

from moderation import logs
from tests.conftest import PASSWORD, Desk


@pytest.fixture
def captured(api):
    """Every log line the app writes during a test, through the app's own handler and formatter."""
    stream = io.StringIO()
    handler = logs.configure("json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_requests_are_logged_as_json_with_their_id_and_without_secrets(api, captured):
    email = "jane.reader@example.org"
    response = api.client.post("/api/v1/comments", headers={**api.headers("site"), "X-Request-ID": "req-abc.123"},
                               json={"text": f"Write to me at {email} please", "author": {"email": email}})
    assert response.status_code == 201 and response.headers["X-Request-ID"] == "req-abc.123"
    # a key in the query string (where some clients put it) and a bad one in the header
    api.client.get(f"/api/v1/queue?key={api.moderator_key}", headers={"Authorization": f"Bearer {api.moderator_key}"})
    api.client.post("/api/v1/comments", headers={"Authorization": "Bearer cm_s_notarealkeybutsecret"}, json={"text": "x"})
    desk = Desk(api)
    desk.add_user("mia")
    assert desk.login("mia").status_code == 302
    assert desk.login("mia", "wrong " + PASSWORD).status_code != 302
    logging.getLogger("moderation.test").warning("reader %s sent key %s with form %r", email, api.site_key, {"name": "mia", "password": PASSWORD})

    text = captured.getvalue()
    entries = lines(captured)
    for secret in (api.site_key, api.moderator_key, "cm_s_notarealkeybutsecret", PASSWORD, "battery", email, "jane.reader"):
        assert secret not in text, secret
    assert "j***@example.org" in text
    access = [e for e in entries if e["logger"] == "moderation.access"]
    first = access[0]
    assert first["request_id"] == "req-abc.123" and first["method"] == "POST" and first["path"] == "/api/v1/comments"
    assert first["status"] == 201 and first["key_name"] == "site-test" and first["duration_ms"] >= 0
    queue = next(e for e in access if e["path"] == "/api/v1/queue")
    assert queue["key_name"] == "moderator-test" and "key=" not in json.dumps(queue)
    assert {e["path"] for e in access} >= {"/moderate/login"}
    assert all(len(e["request_id"]) == 32 for e in access[1:]), "fresh ids for requests that sent none"
    assert len({e["request_id"] for e in access}) == len(access)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_every_line_of_a_request_carries_its_id_and_insane_ids_are_replaced(api, captured):
    app = api.app

    @app.get("/_log_twice")
    def _log_twice():
        logging.getLogger("moderation.somewhere").info("inside the request")
        return "ok"

    response = api.client.get("/_log_twice", headers={"X-Request-ID": "bad id <script>" + "x" * 200})
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and " " not in request_id
    mine = [e for e in lines(captured) if e["request_id"] == request_id]
    assert [e["logger"] for e in mine] == ["moderation.somewhere", "moderation.access"]


def test_redaction_of_each_kind():
    line = logs.redact('Authorization: Bearer abc.def-ghi whsec_Zx9 cm_a_AAAA-bb "password": "hunter2" '
                       "password=s3cret&name=x to bob.smith+tag@mail.example.co.uk")
    for secret in ("abc.def-ghi", "Zx9", "AAAA-bb", "hunter2", "s3cret", "bob.smith", "+tag"):
        assert secret not in line, secret
    assert "b***@mail.example.co.uk" in line and "name=x" in line


def _redact_every_pass(line: str) -> str:
    """The five substitutions without the shortcut for lines that cannot hold a secret."""
    for pattern, replacement in logs._SECRETS:
        line = pattern.sub(replacement, line)
    return logs._EMAIL.sub(r"\1***@\2", line)


@pytest.mark.parametrize("line", [
    '{"message": "POST /api/v1/comments 201", "key_name": "site-1", "remote_addr": "127.0.0.1", "request_id": "abc"}',
    "GET /moderate 200", "key=abcdefghij", "KEY: 'abcdefghijk'", 'x "api_key" : "abcdefghijkl"', "Secret=abcdefghij1",
    "TOKEN = abcdefghij", "BEARER abc", "basic Zm9vOmJhcg==", "PassWd: hunter22", "PASSWORD=x", "cm_s_abc", "whsec_x",
    "ssc_abc", "mail Ann.Smith@Example.org now", "key\u212a: abcdefghij", "\u212aey: abcdefghij", "pa\u017fs: abcdefgh",
    "caf\u00e9 token: abcdefghij", "request_id: cm_m_0123456789", "nothing to see", "",
])
def test_the_shortcut_for_lines_without_secrets_changes_nothing(line):
    assert logs.redact(line) == _redact_every_pass(line)


def test_text_format_and_unknown_format():
    stream = io.StringIO()
    handler = logs.configure("text", stream=stream)
    try:
        logging.getLogger("moderation.test").warning("mail a@b.org")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "WARNING moderation.test [None] mail a***@b.org" in stream.getvalue()
    with pytest.raises(ValueError):
        logs.configure("yaml")
