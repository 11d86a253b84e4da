"""Every error path answers in the one shape {"error": {"code", "message", "fields"?}} with the right status."""

from __future__ import annotations

import json

import pytest

from conftest import assert_error


def post(api, body, headers=None, **kwargs):
    return api.client.post("/api/v1/comments", headers=headers or api.headers("site"), **({"json": body} if body is not None else {}), **kwargs)


def test_malformed_json_is_400(api):
    assert_error(post(api, None, data="{not json", content_type="application/json"), 400, "bad_request")


def test_wrong_content_type_is_415(api):
    assert_error(post(api, None, data="text=hello", content_type="application/x-www-form-urlencoded"), 415, "unsupported_media_type")


def test_body_over_the_limit_is_413(make_api):
    api = make_api(MAX_BODY_BYTES=1000)
    assert_error(post(api, {"text": "x" * 2000}), 413, "payload_too_large")


@pytest.mark.parametrize("body,field", [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": 42}, "text"),
    ({"text": "x" * 10_001}, "text"),
    ({"text": "null byte \x00 here"}, "text"),
    ({"text": "bell \x07"}, "text"),
    ({"text": "hi", "author": "bob"}, "author"),
    ({"text": "hi", "author": {"email": "not-an-email"}}, "author.email"),
    ({"text": "hi", "author": {"ip": "999.1.1.1"}}, "author.ip"),
    ({"text": "hi", "author": {"url": "javascript:alert(1)"}}, "author.url"),
    ({"text": "hi", "author": {"name": ["x"]}}, "author.name"),
    ({"text": "hi", "article": {"id": {"x": 1}}}, "article.id"),
    ({"text": "hi", "parent_id": "7"}, "parent_id"),
    ({"text": "hi", "parent_id": 987654}, "parent_id"),
    ({"text": "hi", "external_id": True}, "external_id"),
])
def test_invalid_fields_are_422_naming_the_field(api, body, field):
    assert_error(post(api, body), 422, "invalid", (field,))


def test_lone_surrogates_are_422(api):
    raw = json.dumps({"text": "broken \ud800 text"})  # json escapes it as \\ud800, as a client would send it
    assert_error(post(api, None, data=raw, content_type="application/json"), 422, "invalid", ("text",))


def test_a_json_array_body_is_422(api):
    assert_error(post(api, ["text"]), 422, "invalid", ("body",))


def test_invalid_input_stores_nothing(api):
    post(api, {"text": "x" * 10_001})
    post(api, {"text": "fine", "author": {"ip": "nope"}})
    assert api.get("/api/v1/queue").get_json()["comments"] == []


def _revoke(api, name: str = "site-test") -> None:
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(api.app.extensions["moderation.engine"]) as session:
        assert store.revoke_key(session, name)


def test_missing_unknown_and_revoked_keys_are_401(make_api):
    api = make_api(API_KEY_CACHE_SECONDS=0)
    assert_error(api.client.post("/api/v1/comments", json={"text": "hi"}), 401, "unauthorized")
    assert_error(post(api, {"text": "hi"}, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert post(api, {"text": "hi"}).status_code == 201
    _revoke(api)
    assert_error(post(api, {"text": "hi"}), 401, "unauthorized")


def test_a_revoked_key_is_refused_once_the_key_cache_time_has_passed(make_api, monkeypatch):
    import time

    from moderation import auth

    api = make_api(API_KEY_CACHE_SECONDS=5)
    now = [time.monotonic()]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    assert post(api, {"text": "first"}).status_code == 201  # looked up and remembered
    _revoke(api)
    now[0] += 4.9
    assert post(api, {"text": "second"}).status_code == 201  # the documented grace: at most API_KEY_CACHE_SECONDS
    now[0] += 0.2
    assert_error(post(api, {"text": "third"}), 401, "unauthorized")
    assert_error(post(api, {"text": "fourth"}), 401, "unauthorized")  # a refused key is not remembered as live


def test_an_unknown_key_is_not_remembered(make_api):
    api = make_api(API_KEY_CACHE_SECONDS=60)
    from sqlalchemy.orm import Session

    from moderation import store

    assert_error(post(api, {"text": "hi"}, headers={"Authorization": "Bearer cm_s_later"}), 401, "unauthorized")
    with Session(api.app.extensions["moderation.engine"]) as session:
        raw = store.create_key(session, "site-later", "site")
    assert post(api, {"text": "hi"}, headers={"Authorization": f"Bearer {raw}"}).status_code == 201


def test_the_wrong_kind_of_key_is_403(api):
    assert_error(api.client.post("/api/v1/comments", json={"text": "hi"}, headers=api.headers("moderator")), 403, "forbidden")
    assert_error(api.get("/api/v1/queue", role="site"), 403, "forbidden")
    assert_error(api.get("/api/v1/audit", role="site"), 403, "forbidden")


def test_unknown_ids_and_paths_are_404(api):
    assert_error(api.get("/api/v1/comments/424242"), 404, "not_found")
    assert_error(api.decide(424242), 404, "not_found")
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405(api):
    assert_error(api.client.delete("/api/v1/comments/1", headers=api.headers("moderator")), 405, "method_not_allowed")


def test_conflict_is_409_with_the_current_state(api):
    comment_id = post(api, {"text": "hello"}).get_json()["id"]
    api.decide(comment_id)
    error = assert_error(api.decide(comment_id, "reject", "spam"), 409, "conflict")
    assert error["comment"]["id"] == comment_id


@pytest.mark.parametrize("body,field", [
    ({}, "action"),
    ({"action": "maybe"}, "action"),
    ({"action": "reject"}, "reason"),
    ({"action": "reject", "reason": "ugly"}, "reason"),
    ({"action": "approve", "expected_status": "limbo"}, "expected_status"),
    ({"action": "approve", "note": 5}, "note"),
])
def test_bad_decisions_are_422(api, body, field):
    comment_id = post(api, {"text": "hello"}).get_json()["id"]
    response = api.client.post(f"/api/v1/comments/{comment_id}/decision", json=body, headers=api.headers("moderator"))
    assert_error(response, 422, "invalid", (field,))


@pytest.mark.parametrize("query,field", [
    ("?limit=0", "limit"), ("?limit=abc", "limit"), ("?sort=random", "sort"), ("?status=lost", "status"),
    ("?cursor=garbage", "cursor"), ("?label=nonsense", "label"), ("?older_than=-5", "older_than"),
])
def test_bad_queue_parameters_are_422(api, query, field):
    assert_error(api.get("/api/v1/queue" + query), 422, "invalid", (field,))


def test_bad_audit_parameters_are_422(api):
    assert_error(api.get("/api/v1/audit?since=yesterday"), 422, "invalid", ("since",))


def test_rate_limited_is_429_with_retry_after(make_api):
    api = make_api(RATE_LIMIT="1 per day")
    post(api, {"text": "one", "author": {"email": "a@example.org"}})
    response = post(api, {"text": "two", "author": {"email": "a@example.org"}})
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"]
