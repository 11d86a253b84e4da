"""The OpenAPI document against reality: a valid document, one operation per route, and
real requests and answers (successes and every error status) that validate against it.

Fixtures here are prefixed ``oa_`` so they never clash with tests/conftest.py's.
"""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.validation.request.exceptions import RequestValidationError
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder

from conftest import assert_error
from moderation import create_app, store, validation
from moderation.auth import ROLES
from moderation.db import make_engine, upgrade
from moderation.openapi import NO_CONTROL, document_for

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
HOLD_SPAM = {"spam": {"review_at": 0.0, "reject_at": 2.0}}  # forces every ordinary comment to 'pending'


def build_app(directory, tiny_bundle, **overrides):
    url = f"sqlite:///{directory}/t.db"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app({"DATABASE_URL": url, "MODEL_DIR": str(tiny_bundle), "TESTING": True, "RATE_LIMIT": "1000 per minute",
                      "INSTANCE_DIR": str(directory), "THRESHOLDS": HOLD_SPAM, **overrides})
    with Session(engine) as session:
        keys = {"site": store.create_key(session, "site", "site"), "moderator": store.create_key(session, "mod", "moderator"),
                "admin": store.create_key(session, "admin", "admin")}
    engine.dispose()
    return app, keys


class Checked:
    """A test client whose every call is validated against the app's own OpenAPI document."""

    def __init__(self, app, keys):
        self.app, self.keys, self.client = app, keys, app.test_client()
        self.document = self.client.get("/api/v1/openapi.json").get_json()
        # Checking the document on load costs a second; test_the_served_document_is_valid_openapi checks it once.
        self.spec = OpenAPI.from_dict(self.document, config=Config(spec_validator_cls=None))

    def call(self, method: str, path: str, *, role: str | None = None, headers: dict | None = None, request_valid: bool | None = True, **kwargs):
        """Send the request; validate the answer always, and the request as ``request_valid`` says.

        ``request_valid`` True: the document must accept the request; False: it must reject
        it (the document and the code agree it is invalid); None: not checked.
        """
        headers = {**({"Authorization": f"Bearer {self.keys[role]}"} if role else {}), **(headers or {})}
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        request = WerkzeugOpenAPIRequest(EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request())
        if request_valid is True:
            self.spec.validate_request(request)
        elif request_valid is False:
            with pytest.raises(RequestValidationError):
                self.spec.validate_request(request)
        self.spec.validate_response(request, WerkzeugOpenAPIResponse(response))
        return response

    def post_comment(self, text: str | None = None, **fields):
        text = text or f"A thoughtful remark about the bridge report {uuid.uuid4().hex[:8]}."
        body = {"text": text, "article": {"id": "a1", "section": "news"}, **fields}
        response = self.call("POST", "/api/v1/comments", role="site", json=body)
        assert response.status_code in (200, 201), response.get_json()
        return response

    def pending(self) -> int:
        comment = self.post_comment().get_json()
        assert comment["status"] == "pending", comment
        return comment["id"]

    def decide(self, comment_id: int, body: dict, **kwargs):
        return self.call("POST", f"/api/v1/comments/{comment_id}/decision", role="moderator", json=body, **kwargs)


@pytest.fixture(scope="module")
def oa(tiny_bundle, tmp_path_factory) -> Checked:
    """One app for the module: every test makes its own comments and filters to them."""
    app, keys = build_app(tmp_path_factory.mktemp("openapi"), tiny_bundle)
    yield Checked(app, keys)
    app.extensions["moderation.engine"].dispose()


# --- the document itself ------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_and_public(oa):
    response = oa.call("GET", "/api/v1/openapi.json")  # no key
    assert response.status_code == 200
    document = response.get_json()
    validate_spec(document)
    assert document["openapi"].startswith("3.1")
    assert document == document_for(oa.app)


def _api_rules(app):
    """Every route but static files, the review desk (HTML for people, not part of the API) and Coral's
    external moderation phase: its contract is Coral's, authenticated by an HMAC of the body rather than
    by our keys, so the key-role checks below cannot apply (tests/test_coral.py holds it to Coral's contract)."""
    return [rule for rule in app.url_map.iter_rules()
            if rule.endpoint != "static" and not rule.endpoint.startswith(("desk.", "coral."))]


def _app_operations(app) -> set[tuple[str, str]]:
    operations = set()
    for rule in _api_rules(app):
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return operations


def _documented_operations(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in HTTP_METHODS}


def test_every_route_is_documented_and_every_documented_operation_exists(oa):
    app_operations = _app_operations(oa.app)
    assert {p for p, _ in app_operations} >= {"/healthz", "/readyz", "/metrics", "/api/v1/comments", "/api/v1/queue"}
    assert _documented_operations(oa.document) == app_operations


def test_path_parameters_match_the_route_converters(oa):
    for rule in _api_rules(oa.app):
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = oa.document["paths"][path][method.lower()]
            documented = {p["name"]: p["schema"]["type"] for p in operation.get("parameters", []) if p["in"] == "path"}
            expected = {name: "integer" if converter == "int" else "string"
                        for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", rule.rule)}
            assert documented == expected, (path, method)


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_documented_roles_and_auth_statuses_are_what_the_code_enforces(oa):
    """A role outside x-roles gets 403 (documented); a role inside it gets past the key check. Every role
    the project has is tried: an admin key on GET /api/v1/comments/{id} is a 403 too."""
    assert set(oa.keys) == set(ROLES)
    comment_id = oa.pending()
    webhook_id = oa.call("POST", "/api/v1/webhooks", role="site", json={"url": "https://site.example/hooks"}).get_json()["id"]
    for path, method, operation in _operations(oa.document):
        if operation.get("security") == []:
            assert "401" not in operation["responses"]
            assert oa.call(method.upper(), path, request_valid=None).status_code == 200, path
            continue
        url = path.replace("{comment_id}", str(comment_id)).replace("{webhook_id}", str(webhook_id))
        assert "401" in operation["responses"], path
        assert oa.call(method.upper(), url, request_valid=False).status_code == 401
        assert set(operation["x-roles"]) <= set(ROLES), path
        for role in ROLES:
            status = oa.call(method.upper(), url, role=role, request_valid=None).status_code
            if role in operation["x-roles"]:
                assert status not in (401, 403), (path, role, status)
            else:
                assert status == 403 and "403" in operation["responses"], (path, role, status)
        assert ("403" in operation["responses"]) == (set(operation["x-roles"]) != set(ROLES)), path


def test_queue_labels_are_exactly_the_ones_the_api_accepts(oa):
    parameter = next(p for p in oa.document["paths"]["/api/v1/queue"]["get"]["parameters"] if p["name"] == "label")
    labels = parameter["schema"]["enum"]
    assert labels == list(oa.app.extensions["moderation.service"].rules.thresholds)
    for label in labels:
        assert oa.call("GET", f"/api/v1/queue?label={label}", role="moderator").status_code == 200
    assert_error(oa.call("GET", "/api/v1/queue?label=nonsense", role="moderator", request_valid=False), 422, "invalid", ("label",))


# --- successful answers ---------------------------------------------------------------------


def test_a_created_comment_and_its_idempotent_retry(oa):
    body = {"author": {"name": "Ann", "email": "ann@example.org", "ip": "2001:DB8::1", "url": "https://ann.example.org", "user_agent": "UA"},
            "article": {"id": 42, "url": "https://news.example/a", "title": "Bridge", "section": "local"}, "external_id": 7}
    created = oa.post_comment("Thanks for the report on the bridge.", **body)
    assert created.status_code == 201
    comment = created.get_json()
    assert created.headers["Location"] == f"/api/v1/comments/{comment['id']}"
    assert "X-RateLimit-Remaining" in created.headers  # the author is rate-limited, so the headers are sent
    assert comment["external_id"] == "7" and comment["article"]["id"] == "42" and comment["author"]["ip"] == "2001:db8::1"
    retry = oa.post_comment("Thanks for the report on the bridge.", **body)
    assert retry.status_code == 200 and retry.get_json() == comment
    assert retry.headers["Location"] == created.headers["Location"]


def test_a_minimal_comment_with_nulls_and_a_parent(oa):
    parent = oa.pending()
    response = oa.call("POST", "/api/v1/comments", role="site", json={
        "text": "A reply with nothing else.", "author": None, "article": {"id": None}, "parent_id": parent, "external_id": None})
    assert response.status_code == 201
    assert response.get_json()["parent_id"] == parent and response.get_json()["external_id"] is None


def test_the_x_api_key_header_is_accepted(oa):
    response = oa.call("GET", "/api/v1/queue", headers={"X-API-Key": oa.keys["moderator"]})
    assert response.status_code == 200


def test_get_comment_with_its_history(oa):
    comment_id = oa.pending()
    assert oa.decide(comment_id, {"action": "approve", "note": "fine"}).status_code == 200
    for role in ("site", "moderator"):
        response = oa.call("GET", f"/api/v1/comments/{comment_id}", role=role)
        assert response.status_code == 200
        history = response.get_json()["history"]
        assert [(h["action"], h["previous_status"], h["reason"]) for h in history] == [("review", None, None), ("approve", "pending", None)]


def test_the_queue_with_and_without_a_cursor(oa):
    section = f"s-{uuid.uuid4().hex[:8]}"
    ids = [oa.post_comment(article={"id": "q", "section": section}).get_json()["id"] for _ in range(3)]
    for sort in ("risk", "age"):
        seen, cursor = [], None
        while True:
            query = f"/api/v1/queue?section={section}&sort={sort}&limit=2&status=pending&older_than=0&newer_than=3600"
            query += f"&cursor={cursor}" if cursor else ""
            response = oa.call("GET", query, role="moderator")
            assert response.status_code == 200
            page = response.get_json()
            seen += [c["id"] for c in page["comments"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids), sort
    empty = oa.call("GET", "/api/v1/queue?status=rejected&article=nowhere&author=x@y.z&ip=192.0.2.1", role="moderator").get_json()
    assert empty == {"comments": [], "next_cursor": None}


def test_a_decision_then_a_conflict_then_an_overturn(oa):
    comment_id = oa.pending()
    decided = oa.decide(comment_id, {"action": "reject", "reason": "spam", "note": "link farm"})
    assert decided.status_code == 200 and decided.get_json()["status"] == "rejected"
    assert decided.get_json()["history"][-1]["reason"] == "spam"
    late = assert_error(oa.decide(comment_id, {"action": "approve"}), 409, "conflict")
    assert late["comment"]["id"] == comment_id and late["comment"]["status"] == "rejected"
    overturned = oa.decide(comment_id, {"action": "approve", "expected_status": "rejected", "reason": None, "note": None})
    assert overturned.status_code == 200 and overturned.get_json()["status"] == "published"


def test_bulk_decisions_each_result_kind(oa):
    first, second = oa.pending(), oa.pending()
    oa.decide(second, {"action": "approve"})
    response = oa.call("POST", "/api/v1/decisions", role="moderator", json={"decisions": [
        {"comment_id": first, "action": "reject", "reason": "abuse"},
        {"comment_id": second, "action": "reject", "reason": "other"},
        {"comment_id": 10**9, "action": "approve"},
    ]})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [(r["comment_id"], r["result"]) for r in results] == [(first, "decided"), (second, "conflict"), (10**9, "not_found")]


def test_the_audit_log_and_its_filters(oa):
    comment_id = oa.pending()
    oa.decide(comment_id, {"action": "approve"})
    everything = oa.call("GET", f"/api/v1/audit?comment_id={comment_id}", role="moderator").get_json()
    assert [e["action"] for e in everything["entries"]] == ["approve", "review"]
    newest = everything["entries"][0]
    page = oa.call("GET", f"/api/v1/audit?comment_id={comment_id}&before_id={newest['id']}&limit=1&actor=model&action=review"
                          f"&since=2000-01-01&until=2999-01-01T00:00:00", role="moderator").get_json()
    assert [e["id"] for e in page["entries"]] == [everything["next_before_id"]]
    assert oa.call("GET", "/api/v1/audit?actor=nobody", role="moderator").get_json() == {"entries": [], "next_before_id": None}


def test_health_readiness_and_metrics(oa):
    assert oa.call("GET", "/healthz").get_json() == {"status": "ok"}
    ready = oa.call("GET", "/readyz")
    assert ready.status_code == 200 and ready.get_json()["model_version"]
    metrics = oa.call("GET", "/metrics")
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"


def test_not_ready_without_a_model_is_503_with_retry_after(tiny_bundle, tmp_path):
    app, keys = build_app(tmp_path, tmp_path / "no-model")
    try:
        checked = Checked(app, keys)
        response = checked.call("GET", "/readyz")
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert "model" in response.get_json()["problems"]
        held = checked.post_comment("Scored by nobody.").get_json()  # still valid without a model: null model_version, no scores
        assert held["model_version"] is None and held["scores"] == {}
        label = next(p for p in checked.document["paths"]["/api/v1/queue"]["get"]["parameters"] if p["name"] == "label")
        assert label["schema"]["enum"] == ["spam"]  # without a model, the labels of the configured thresholds
    finally:
        app.extensions["moderation.engine"].dispose()


def test_rate_limited_is_429_with_retry_after(tiny_bundle, tmp_path):
    app, keys = build_app(tmp_path, tiny_bundle, RATE_LIMIT="2 per minute")
    try:
        checked = Checked(app, keys)
        email = f"{uuid.uuid4().hex}@example.org"  # the limiter's storage is process-wide
        statuses = [checked.call("POST", "/api/v1/comments", role="site", json={"text": f"comment {i}", "author": {"email": email}}).status_code
                    for i in range(3)]
        assert statuses == [201, 201, 429]
        response = checked.call("POST", "/api/v1/comments", role="site", json={"text": "again", "author": {"email": email}})
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) > 0
    finally:
        app.extensions["moderation.engine"].dispose()


# --- every error status -----------------------------------------------------------------------

COMMENTS, DECISION, BULK = "/api/v1/comments", "/api/v1/comments/{id}/decision", "/api/v1/decisions"
ERRORS = [
    # (case, method, path, role, request kwargs, status, code, fields)
    ("malformed JSON", "POST", COMMENTS, "site", {"data": "{not json", "content_type": "application/json"}, 400, "bad_request", ()),
    ("malformed JSON decision", "POST", DECISION, "moderator", {"data": "[", "content_type": "application/json"}, 400, "bad_request", ()),
    ("malformed JSON bulk", "POST", BULK, "moderator", {"data": "{", "content_type": "application/json"}, 400, "bad_request", ()),
    ("no key", "GET", "/api/v1/queue", None, {}, 401, "unauthorized", ()),
    ("unknown key", "POST", COMMENTS, None, {"headers": {"Authorization": "Bearer cm_s_nope"}, "json": {"text": "hi"}}, 401, "unauthorized", ()),
    ("site key on the queue", "GET", "/api/v1/queue", "site", {}, 403, "forbidden", ()),
    ("moderator key posting", "POST", COMMENTS, "moderator", {"json": {"text": "hi"}}, 403, "forbidden", ()),
    ("site key deciding", "POST", DECISION, "site", {"json": {"action": "approve"}}, 403, "forbidden", ()),
    ("site key on the audit log", "GET", "/api/v1/audit", "site", {}, 403, "forbidden", ()),
    ("admin key reading a comment", "GET", "/api/v1/comments/{id}", "admin", {}, 403, "forbidden", ()),
    ("admin key on the queue", "GET", "/api/v1/queue", "admin", {}, 403, "forbidden", ()),
    ("site key erasing", "POST", "/api/v1/erasures", "site", {"json": {"email": "a@example.org"}}, 403, "forbidden", ()),
    ("no such comment", "GET", "/api/v1/comments/999999999", "site", {}, 404, "not_found", ()),
    ("deciding no such comment", "POST", "/api/v1/comments/999999999/decision", "moderator", {"json": {"action": "approve"}}, 404, "not_found", ()),
    ("body too large", "POST", COMMENTS, "site", {"json": {"text": "x" * 300_000}}, 413, "payload_too_large", ()),
    ("body too large decision", "POST", DECISION, "moderator", {"json": {"action": "approve", "note": "x" * 300_000}}, 413, "payload_too_large", ()),
    ("form body", "POST", COMMENTS, "site", {"data": "text=hello", "content_type": "application/x-www-form-urlencoded"},
     415, "unsupported_media_type", ()),
    ("text body decision", "POST", DECISION, "moderator", {"data": "approve", "content_type": "text/plain"}, 415, "unsupported_media_type", ()),
    ("no body bulk", "POST", BULK, "moderator", {}, 415, "unsupported_media_type", ()),
    ("array body", "POST", COMMENTS, "site", {"json": ["text"]}, 422, "invalid", ("body",)),
    ("bad comment fields", "POST", COMMENTS, "site", {"json": {"text": " ", "author": {"email": "nope", "ip": "999.1.1.1", "url": "ftp://x"},
                                                                 "article": {"title": "x" * 501}, "parent_id": 0, "external_id": True}},
     422, "invalid", ("text", "author.email", "author.ip", "author.url", "article.title", "parent_id", "external_id")),
    ("control characters", "POST", COMMENTS, "site", {"json": {"text": "bell \x07"}}, 422, "invalid", ("text",)),
    ("C1 control characters", "POST", COMMENTS, "site", {"json": {"text": "hello \x85 there", "author": {"name": "bell\x9b"}}},
     422, "invalid", ("text", "author.name")),
    ("C1 control in a note", "POST", DECISION, "moderator", {"json": {"action": "approve", "note": "\x9b"}}, 422, "invalid", ("note",)),
    ("bad decision", "POST", DECISION, "moderator", {"json": {"action": "reject"}}, 422, "invalid", ("reason",)),
    ("bad action", "POST", DECISION, "moderator", {"json": {"action": "maybe", "reason": "rude"}}, 422, "invalid", ("action", "reason")),
    ("bad expected status", "POST", DECISION, "moderator", {"json": {"action": "approve", "expected_status": "gone"}},
     422, "invalid", ("expected_status",)),
    ("empty bulk", "POST", BULK, "moderator", {"json": {"decisions": []}}, 422, "invalid", ("decisions",)),
    ("bulk without ids", "POST", BULK, "moderator", {"json": {"decisions": [{"action": "approve"}]}}, 422, "invalid", ("decisions[0].comment_id",)),
    ("bulk bad item", "POST", BULK, "moderator", {"json": {"decisions": [{"comment_id": 1, "action": "reject"}]}},
     422, "invalid", ("decisions[0].reason",)),
    ("queue limit", "GET", "/api/v1/queue?limit=201", "moderator", {}, 422, "invalid", ("limit",)),
    ("queue status", "GET", "/api/v1/queue?status=deleted", "moderator", {}, 422, "invalid", ("status",)),
    ("queue sort", "GET", "/api/v1/queue?sort=random", "moderator", {}, 422, "invalid", ("sort",)),
    ("queue age", "GET", "/api/v1/queue?older_than=-1", "moderator", {}, 422, "invalid", ("older_than",)),
    ("queue age type", "GET", "/api/v1/queue?newer_than=soon", "moderator", {}, 422, "invalid", ("newer_than",)),
    ("audit limit", "GET", "/api/v1/audit?limit=0", "moderator", {}, 422, "invalid", ("limit",)),
    ("audit comment id", "GET", "/api/v1/audit?comment_id=x", "moderator", {}, 422, "invalid", ("comment_id",)),
    ("audit before id", "GET", f"/api/v1/audit?before_id={2**62 + 1}", "moderator", {}, 422, "invalid", ("before_id",)),
    ("queue author NUL", "GET", "/api/v1/queue?author=%00", "moderator", {}, 422, "invalid", ("author",)),
    ("queue article NUL", "GET", "/api/v1/queue?article=a%00b", "moderator", {}, 422, "invalid", ("article",)),
    ("queue section C1", "GET", "/api/v1/queue?section=%C2%85", "moderator", {}, 422, "invalid", ("section",)),
    ("queue ip NUL", "GET", "/api/v1/queue?ip=fe80::1%25%00", "moderator", {}, 422, "invalid", ("ip",)),
    ("queue article too long", "GET", "/api/v1/queue?article=" + "x" * 201, "moderator", {}, 422, "invalid", ("article",)),
    ("audit actor NUL", "GET", "/api/v1/audit?actor=%00", "moderator", {}, 422, "invalid", ("actor",)),
    ("audit action NUL", "GET", "/api/v1/audit?action=%00", "moderator", {}, 422, "invalid", ("action",)),
    ("audit action too long", "GET", "/api/v1/audit?action=" + "x" * 21, "moderator", {}, 422, "invalid", ("action",)),
]


@pytest.mark.parametrize("case,method,path,role,kwargs,status,code,fields", ERRORS, ids=[e[0] for e in ERRORS])
def test_every_error_status_answers_as_documented(oa, case, method, path, role, kwargs, status, code, fields):
    """Each error validates against the document, and the document also rejects the request
    whenever it can tell (not for 404s, which need the database, nor 413s, which it cannot)."""
    if "{id}" in path:
        path = path.replace("{id}", str(oa.pending()))
    document_can_tell = status in (400, 415, 422) or case == "no key"  # it cannot know which keys exist
    assert_error(oa.call(method, path, role=role, request_valid=False if document_can_tell else None, **kwargs), status, code, fields)


def test_errors_the_document_cannot_foresee(oa):
    """Inputs valid by the document's schema that only the database or the code's cursor check can refuse."""
    assert_error(oa.call("POST", COMMENTS, role="site", json={"text": "orphan", "parent_id": 987654321}),
                 422, "invalid", ("parent_id",))
    assert_error(oa.call("GET", "/api/v1/queue?cursor=not-a-cursor", role="moderator"), 422, "invalid", ("cursor",))
    risk_cursor = store.encode_cursor([0.5, 10])
    assert_error(oa.call("GET", f"/api/v1/queue?sort=age&cursor={risk_cursor}", role="moderator"), 422, "invalid", ("cursor",))
    assert_error(oa.call("GET", "/api/v1/audit?since=yesterday", role="moderator"), 422, "invalid", ("since",))
    raw = lambda text: base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")  # noqa: E731
    for sort, cursor in (("age", store.encode_cursor(["9999-12-31T23:59:59-14:00", 1])), ("age", store.encode_cursor(["0001-01-01T00:00:00+14:00", 1])),
                         ("risk", raw("[" * 2000)), ("risk", raw("[NaN, 1]")), ("risk", raw("[1e999, 1]"))):
        assert_error(oa.call("GET", f"/api/v1/queue?sort={sort}&cursor={cursor}", role="moderator"), 422, "invalid", ("cursor",))
    assert_error(oa.call("GET", "/api/v1/audit?since=0001-01-01T00:00:00%2B14:00", role="moderator"), 422, "invalid", ("since",))
    assert_error(oa.call("GET", "/api/v1/audit?until=9999-12-31T23:59:59-14:00", role="moderator"), 422, "invalid", ("until",))


def test_a_body_nested_too_deeply_is_the_documented_400_on_every_json_operation(oa):
    """The JSON parser recurses once per level: 100,000 "[" are a malformed body (400), not a crash (500)."""
    comment_id = oa.pending()
    json_operations = [(path, method, operation) for path, method, operation in _operations(oa.document)
                       if "application/json" in operation.get("requestBody", {}).get("content", {})]
    assert {path for path, _, _ in json_operations} == {COMMENTS, "/api/v1/comments/{comment_id}/decision", BULK, "/api/v1/erasures",
                                                        "/api/v1/webhooks"}
    body = '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for path, method, operation in json_operations:
        assert "400" in operation["responses"], path
        response = oa.call(method.upper(), path.replace("{comment_id}", str(comment_id)), role=operation["x-roles"][0],
                           request_valid=None, data=body, content_type="application/json")
        assert_error(response, 400, "bad_request")


def test_the_documented_control_character_pattern_is_the_one_validation_applies():
    allowed = re.compile(NO_CONTROL)
    for code in range(0x10000):
        char = chr(code)
        if not 0xD800 <= code <= 0xDFFF:
            assert bool(allowed.search(f"a{char}b")) == (not validation._CONTROL.search(char)), hex(code)


def _failing_database(engine):
    """Make every statement on ``engine`` fail as a database locked beyond its busy timeout does."""
    dbapi_error = engine.dialect.loaded_dbapi.OperationalError

    def fail(*_args, **_kwargs):
        raise dbapi_error("database is locked")

    event.listen(engine, "before_cursor_execute", fail)
    return lambda: event.remove(engine, "before_cursor_execute", fail)


AKISMET_FORM = {"api_key": None, "blog": "https://site.example", "user_ip": "192.0.2.7", "comment_content": "Hello there.",
                "comment_author_email": "ann@example.org"}


def test_every_operation_that_uses_the_database_documents_its_503(make_api):
    """With the database unable to answer, an operation answers 503 with Retry-After exactly when its
    document says so, in the documented shape; the others (health, metrics, this document) still answer."""
    api = make_api(API_KEY_CACHE_SECONDS=0)
    with Session(api.app.extensions["moderation.engine"]) as session:
        keys = {"site": api.site_key, "moderator": api.moderator_key, "admin": store.create_key(session, "admin-503", "admin")}
    checked = Checked(api.app, keys)
    comment_id = api.post_comment().get_json()["id"]
    webhook_id = checked.call("POST", "/api/v1/webhooks", role="site", json={"url": "https://site.example/hooks"}).get_json()["id"]
    restore = _failing_database(api.app.extensions["moderation.engine"])
    try:
        seen = set()
        for path, method, operation in _operations(checked.document):
            url = path.replace("{comment_id}", str(comment_id)).replace("{webhook_id}", str(webhook_id))
            kwargs = {}
            if path.startswith("/1.1/"):
                kwargs["data"] = {**AKISMET_FORM, "api_key": keys["site"]}
            elif method == "post":
                kwargs["json"] = {"text": "hello", "action": "approve", "decisions": [{"comment_id": comment_id, "action": "approve"}],
                                  "email": "ann@example.org", "url": "https://site.example/other"}
            role = operation.get("x-roles", [None])[0]
            response = checked.call(method.upper(), url, role=role, request_valid=None, **kwargs)
            if "503" in operation["responses"]:
                assert response.status_code == 503, (path, method, response.get_data(as_text=True))
                assert int(response.headers["Retry-After"]) > 0
                seen.add(path)
            else:
                assert response.status_code != 503, (path, method)
        assert seen >= {COMMENTS, "/api/v1/queue", "/api/v1/audit", "/api/v1/comments/{comment_id}", "/api/v1/erasures",
                        "/api/v1/webhooks", "/1.1/comment-check", "/readyz"}
    finally:
        restore()


def test_the_document_accepts_what_the_code_accepts_at_the_edges(oa):
    limits = oa.document["components"]["schemas"]["NewComment"]["properties"]["text"]["maxLength"]
    assert limits == oa.app.config["MAX_TEXT_CHARS"]
    longest = oa.call("POST", COMMENTS, role="site", json={"text": "y" * limits})
    assert longest.status_code == 201
    assert_error(oa.call("POST", COMMENTS, role="site", json={"text": "y" * (limits + 1)}, request_valid=False), 422, "invalid", ("text",))
    for query in ("limit=1", "limit=200", "older_than=0", f"newer_than={10**8}"):
        assert oa.call("GET", f"/api/v1/queue?{query}", role="moderator").status_code == 200, query
    for query in ("limit=500", f"comment_id={2**62}", "before_id=0"):
        assert oa.call("GET", f"/api/v1/audit?{query}", role="moderator").status_code == 200, query


def test_webhooks_created_listed_logged_and_removed_as_documented(oa):
    created = oa.call("POST", "/api/v1/webhooks", role="site", json={"url": "https://site.example/hook", "events": ["comment.held"]})
    assert created.status_code == 201
    webhook_id = created.get_json()["id"]
    assert oa.call("GET", "/api/v1/webhooks", role="site").status_code == 200
    assert oa.call("GET", f"/api/v1/webhooks/{webhook_id}/deliveries", role="site").status_code == 200
    assert_error(oa.call("POST", "/api/v1/webhooks", role="site", json={"url": "https://x.example", "events": []}, request_valid=False),
                 422, "invalid", ("events",))
    assert oa.call("DELETE", f"/api/v1/webhooks/{webhook_id}", role="site").status_code == 204
    assert_error(oa.call("DELETE", "/api/v1/webhooks/999999", role="site"), 404, "not_found")
