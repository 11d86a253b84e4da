"""Hostile bodies, cursors and query strings answer 400 / 422 in the one error shape, never 500,
on SQLite and on PostgreSQL (which refuses a NUL byte that SQLite would store).

Each case here crashed the API (500) or answered a silently empty page before it was checked:
a body nested deeper than the JSON parser's recursion limit, a queue cursor whose time leaves
the years 1-9999 once moved to UTC, a cursor nested too deeply or holding NaN, an audit
since/until beyond UTC's range, control characters in query-string filters, and C1 controls
(U+0080-U+009F) in text fields.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session

from conftest import CRAFTED_CURSORS, NESTED_TOO_DEEPLY, assert_error
from moderation import store, validation


def _key(api, role: str) -> dict:
    if role == "admin":
        with Session(api.app.extensions["moderation.engine"]) as session:
            raw = store.create_key(session, f"admin-{id(api)}", "admin")
        return {"Authorization": f"Bearer {raw}"}
    return api.headers(role)


# --- 1. a JSON body nested too deeply to parse -------------------------------------------------

JSON_ENDPOINTS = [  # every API endpoint that reads a JSON body (validation.json_object)
    ("/api/v1/comments", "site"),
    ("/api/v1/comments/{id}/decision", "moderator"),
    ("/api/v1/decisions", "moderator"),
    ("/api/v1/erasures", "admin"),
    ("/api/v1/webhooks", "site"),
]


@pytest.mark.parametrize("path,role", JSON_ENDPOINTS, ids=[p for p, _ in JSON_ENDPOINTS])
@pytest.mark.parametrize("body", list(NESTED_TOO_DEEPLY.values()), ids=list(NESTED_TOO_DEEPLY))
def test_a_json_body_nested_too_deeply_is_400_like_any_malformed_json(api, path, role, body):
    if "{id}" in path:
        path = path.replace("{id}", str(api.post_comment().get_json()["id"]))
    assert len(body.encode()) < api.app.config["MAX_BODY_BYTES"]
    response = api.client.post(path, data=body, content_type="application/json", headers=_key(api, role))
    error = assert_error(response, 400, "bad_request")
    assert "fields" not in error
    assert api.get("/api/v1/queue").status_code == 200  # and the worker carries on


def test_nesting_the_parser_can_read_is_an_ordinary_invalid_field(api):
    body = '{"text": ' + "[" * 200 + "]" * 200 + ', "article": {"id": "a1"}}'
    response = api.client.post("/api/v1/comments", data=body, content_type="application/json", headers=api.headers("site"))
    assert_error(response, 422, "invalid", ("text",))


# --- 2. crafted cursors and times ---------------------------------------------------------------


@pytest.mark.parametrize("sort,cursor", CRAFTED_CURSORS, ids=[f"{i}-{s}" for i, (s, _) in enumerate(CRAFTED_CURSORS)])
def test_crafted_queue_cursors_are_422_naming_cursor(api, sort, cursor):
    api.post_comment()
    assert_error(api.get(f"/api/v1/queue?sort={sort}&cursor={quote(cursor)}"), 422, "invalid", ("cursor",))


def test_issued_cursors_and_hand_made_valid_ones_still_page(api):
    ids = [api.post_comment(f"Comment number {i} on the bridge.").get_json()["id"] for i in range(3)]
    for sort in ("risk", "age"):
        seen, cursor = [], None
        while True:
            page = api.get(f"/api/v1/queue?sort={sort}&limit=1" + (f"&cursor={cursor}" if cursor else "")).get_json()
            seen += [c["id"] for c in page["comments"]]
            if not (cursor := page["next_cursor"]):
                break
        assert sorted(seen) == sorted(ids), sort
    # Any time within UTC's range, in any offset, and any finite risk, are cursors the API can follow.
    for sort, key in (("age", "2000-01-01T00:00:00+14:00"), ("age", "0001-01-01T00:00:00"), ("age", "9999-12-31T23:59:59+00:00"),
                      ("risk", 1e300), ("risk", -5), ("risk", 10**300)):
        response = api.get(f"/api/v1/queue?sort={sort}&cursor={store.encode_cursor([key, 1])}")
        assert response.status_code == 200, (sort, key, response.get_data(as_text=True))
    assert api.get(f"/api/v1/queue?sort=age&cursor={store.encode_cursor(['0001-01-01T00:00:00+00:00', 0])}").get_json()["comments"]


@pytest.mark.parametrize("query,field", [
    ("since=0001-01-01T00:00:00%2B14:00", "since"),
    ("since=0001-01-01T00:00:00+14:00", "since"),  # an unencoded "+" arrives as a space
    ("until=9999-12-31T23:59:59-14:00", "until"),
    ("since=2020-01-01&until=9999-12-31T23:59:59-00:01", "until"),
])
def test_audit_times_beyond_utc_years_1_to_9999_are_422(api, query, field):
    assert_error(api.get(f"/api/v1/audit?{query}"), 422, "invalid", (field,))


def test_audit_times_at_the_edges_of_utc_are_accepted(api):
    api.post_comment()
    everything = api.get("/api/v1/audit?since=0001-01-01T00:00:00%2B00:00&until=9999-12-31T23:59:59-00:00")
    assert everything.status_code == 200 and everything.get_json()["entries"]
    assert api.get("/api/v1/audit?since=0001-01-01&until=9999-12-31").status_code == 200


# --- 3. query-string filters --------------------------------------------------------------------

BAD_FILTERS = [
    ("/api/v1/queue?author=%00", "author"),
    ("/api/v1/queue?article=a%00b", "article"),
    ("/api/v1/queue?section=%00", "section"),
    ("/api/v1/queue?ip=fe80::1%25%00", "ip"),  # ipaddress keeps a scope id, NUL and all
    ("/api/v1/queue?section=news%C2%85", "section"),  # a C1 control
    ("/api/v1/queue?article=" + "x" * 201, "article"),
    ("/api/v1/queue?author=" + "x" * 321, "author"),
    ("/api/v1/audit?actor=%00", "actor"),
    ("/api/v1/audit?action=%00", "action"),
    ("/api/v1/audit?actor=mod%1B", "actor"),
    ("/api/v1/audit?actor=" + "x" * 101, "actor"),
    ("/api/v1/audit?action=" + "x" * 21, "action"),
]


@pytest.mark.parametrize("query,field", BAD_FILTERS, ids=[q.split("?", 1)[1][:30] for q, _ in BAD_FILTERS])
def test_query_filters_with_control_characters_or_too_long_are_422(api, query, field):
    api.post_comment()
    assert_error(api.get(query), 422, "invalid", (field,))


def test_ordinary_filters_still_filter(api):
    article, section = "ä\u200d1", "Ünïcode"  # a zero-width joiner is text, not a control character
    found = api.post_comment(author={"email": "ann@example.org"}, article={"id": article, "section": section}).get_json()
    for query in ("author=ann@example.org", f"article={quote(article)}", f"section={quote(section)}", "article=" + "x" * 200):
        response = api.get(f"/api/v1/queue?{query}")
        assert response.status_code == 200, query
    assert [c["id"] for c in api.get(f"/api/v1/queue?section={quote(section)}").get_json()["comments"]] == [found["id"]]
    entries = api.get("/api/v1/audit?actor=model&action=review").get_json()["entries"]
    assert [e["comment_id"] for e in entries] == [found["id"]]


# --- 4. C1 controls in text fields --------------------------------------------------------------


def test_the_rejected_characters_are_exactly_category_cc_but_tab_lf_cr():
    rejected = {chr(c) for c in range(0x10000) if validation._CONTROL.search(chr(c))}
    control = {chr(c) for c in range(0x10000) if unicodedata.category(chr(c)) == "Cc"} - {"\t", "\n", "\r"}
    assert rejected == control


@pytest.mark.parametrize("text", ["hello \x85 there", "bell\x9b", "\x80", "nbsp is fine\xa0 but not \x9f"])
@pytest.mark.parametrize("where", ["text", "author.name", "article.title", "external_id"])
def test_c1_controls_in_comment_fields_are_422(api, text, where):
    body = {"text": text} if where == "text" else {"text": "fine"}
    if "." in where:
        outer, inner = where.split(".")
        body[outer] = {inner: text}
    elif where != "text":
        body[where] = text
    response = api.client.post("/api/v1/comments", json=body, headers=api.headers("site"))
    error = assert_error(response, 422, "invalid", (where,))
    assert error["fields"][where] == "contains control characters"


def test_c1_controls_in_decisions_and_webhooks_are_422(api):
    comment_id = api.post_comment().get_json()["id"]
    assert_error(api.decide(comment_id, note="odd \x85 note"), 422, "invalid", ("note",))
    response = api.client.post("/api/v1/decisions", json={"decisions": [{"comment_id": comment_id, "action": "approve", "note": "\x9b"}]},
                               headers=api.headers("moderator"))
    assert_error(response, 422, "invalid", ("decisions[0].note",))
    response = api.client.post("/api/v1/webhooks", json={"url": "https://site.example/\x85"}, headers=api.headers("site"))
    assert_error(response, 422, "invalid", ("url",))


@pytest.mark.parametrize("text", [
    "family \U0001f468\u200d\U0001f469\u200d\U0001f467 emoji",  # zero-width joiners
    "\u05e9\u05dc\u05d5\u05dd \u200fhello\u200e",  # Hebrew with bidi marks
    "\u202eoverride\u202c and \u2066isolate\u2069",
    "soft\u00adhyphen, no\u00a0break, zero\u200bwidth, \ufeffbom",
    "tabs\tand\nnewlines\r\nstay",
])
def test_format_characters_tabs_and_newlines_are_still_accepted(api, text):
    response = api.post_comment(text)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["text"] == text


@pytest.mark.parametrize("sort,cursor", CRAFTED_CURSORS, ids=[f"{i}-{s}" for i, (s, _) in enumerate(CRAFTED_CURSORS)])
def test_store_refuses_every_crafted_cursor_with_a_value_error(sort, cursor):
    with pytest.raises(ValueError):
        store.normal_cursor(cursor, sort)


def test_store_passes_its_own_cursors_in_normal_form():
    assert store.normal_cursor(store.encode_cursor([1, 7]), "risk") == store.encode_cursor([1.0, 7])
    assert store.normal_cursor(store.encode_cursor(["2026-11-27T10:00:00+01:00", 7]), "age") == store.encode_cursor(["2026-11-27T09:00:00+00:00", 7])
