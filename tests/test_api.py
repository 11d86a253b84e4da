"""The comment API through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from conftest import assert_append_only

PUBLISH_EVERYTHING = {"spam": {"review_at": 2.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}}


def test_a_comment_is_scored_decided_stored_and_audited(api):
    response = api.post_comment("Thanks for the report on the bridge.", author={"name": "Ann", "email": "ann@example.org", "ip": "203.0.113.5"}, external_id="wp-1")
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending" and body["decision"] == "review"
    assert set(body["scores"]) == {"spam", "toxic", "insult", "offensive", "hate"}
    assert body["reasons"] and body["model_version"]
    assert response.headers["Location"].endswith(f"/api/v1/comments/{body['id']}")
    polled = api.get(f"/api/v1/comments/{body['id']}", role="site").get_json()
    assert polled["status"] == "pending"
    assert [(h["actor"], h["action"], h["new_status"]) for h in polled["history"]] == [("model", "review", "pending")]


def test_retry_with_the_same_external_id_returns_the_original(api):
    first = api.post_comment("First version", external_id="ext-7")
    again = api.post_comment("First version", external_id="ext-7")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    queue = api.get("/api/v1/queue").get_json()["comments"]
    assert [c["id"] for c in queue] == [first.get_json()["id"]]


def test_thresholds_publish_and_reject(make_api):
    api = make_api(THRESHOLDS=PUBLISH_EVERYTHING)
    assert api.post_comment("Lovely piece").get_json()["status"] == "published"
    strict = make_api(THRESHOLDS={"spam": {"review_at": 0.0, "reject_at": 0.0}}, DISCARD_SPAM_AT=2.0)
    rejected = strict.post_comment("Lovely piece").get_json()
    assert rejected["status"] == "rejected" and not rejected["discarded"]


def test_model_missing_holds_every_comment(make_api, tmp_path):
    api = make_api(MODEL_DIR=str(tmp_path / "no-model"))
    response = api.post_comment("Anything at all")
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending" and body["model_version"] is None
    assert body["reasons"] == ["model unavailable: held for a person to decide"]
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and "model" in ready.get_json()["problems"]


def test_moderator_decision_is_audited_and_second_decision_conflicts(api):
    comment_id = api.post_comment().get_json()["id"]
    approved = api.decide(comment_id, "approve", note="fine")
    assert approved.status_code == 200
    assert approved.get_json()["status"] == "published"
    late = api.decide(comment_id, "reject", "spam")
    assert late.status_code == 409
    error = late.get_json()["error"]
    assert error["code"] == "conflict" and error["comment"]["status"] == "published"
    history = api.get(f"/api/v1/comments/{comment_id}").get_json()["history"]
    assert [(h["actor"], h["action"], h["previous_status"], h["new_status"]) for h in history] == [
        ("model", "review", None, "pending"), ("moderator-test", "approve", "pending", "published")]
    assert history[1]["note"] == "fine" and history[1]["scores"]
    overturned = api.decide(comment_id, "reject", "abuse", expected_status="published")
    assert overturned.status_code == 200 and overturned.get_json()["status"] == "rejected"


def test_concurrent_decisions_have_exactly_one_winner(api):
    comment_id = api.post_comment().get_json()["id"]
    statuses, barrier = [], threading.Barrier(6)

    def moderator(action):
        client = api.app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/comments/{comment_id}/decision", json={"action": action, "reason": "spam"}, headers=api.headers("moderator"))
        statuses.append(response.status_code)

    threads = [threading.Thread(target=moderator, args=("approve" if i % 2 else "reject",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [409] * 5
    history = api.get(f"/api/v1/comments/{comment_id}").get_json()["history"]
    assert len([h for h in history if h["actor"] != "model"]) == 1


def test_bulk_decisions_succeed_or_conflict_one_by_one(api):
    ids = [api.post_comment(f"comment {i}").get_json()["id"] for i in range(3)]
    api.decide(ids[0], "approve")
    response = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": [
        {"comment_id": i, "action": "reject", "reason": "spam"} for i in ids] + [{"comment_id": 999999, "action": "approve"}]})
    assert response.status_code == 200
    results = [(r["comment_id"], r["result"]) for r in response.get_json()["results"]]
    assert results == [(ids[0], "conflict"), (ids[1], "decided"), (ids[2], "decided"), (999999, "not_found")]


def test_bulk_mixes_decisions_and_a_repeated_comment_keeps_its_first_decision(api):
    ids = [api.post_comment(f"comment {i}").get_json()["id"] for i in range(4)]
    mixed = [{"comment_id": ids[0], "action": "approve"}, {"comment_id": ids[1], "action": "reject", "reason": "spam"},
             {"comment_id": ids[2], "action": "approve"}, {"comment_id": ids[3], "action": "reject", "reason": "abuse", "note": "slur"}]
    response = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": mixed})
    results = response.get_json()["results"]
    assert [(r["comment_id"], r["result"], r["comment"]["status"]) for r in results] == [
        (ids[0], "decided", "published"), (ids[1], "decided", "rejected"), (ids[2], "decided", "published"), (ids[3], "decided", "rejected")]
    last = api.get(f"/api/v1/comments/{ids[3]}").get_json()["history"][-1]
    assert (last["action"], last["reason"], last["note"]) == ("reject", "abuse", "slur")
    fresh = api.post_comment("one more").get_json()["id"]
    twice = [{"comment_id": fresh, "action": "reject", "reason": "spam"}, {"comment_id": fresh, "action": "approve"}]
    results = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": twice}).get_json()["results"]
    assert [(r["result"], r["comment"]["status"]) for r in results] == [("decided", "rejected"), ("conflict", "rejected")]


def test_bulk_with_one_invalid_item_changes_nothing(api):
    comment_id = api.post_comment().get_json()["id"]
    response = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": [
        {"comment_id": comment_id, "action": "approve"}, {"comment_id": comment_id, "action": "explode"}]})
    assert response.status_code == 422 and "decisions[1].action" in response.get_json()["error"]["fields"]
    assert api.get(f"/api/v1/comments/{comment_id}").get_json()["status"] == "pending"


def test_queue_filters_and_sorts(api):
    a = api.post_comment("about the budget", author={"email": "x@example.org"}, article={"id": "budget", "section": "politics"}).get_json()
    b = api.post_comment("about the match", author={"email": "y@example.org"}, article={"id": "match", "section": "sport"}).get_json()
    ids = lambda query: [c["id"] for c in api.get("/api/v1/queue" + query).get_json()["comments"]]
    assert ids("?section=politics") == [a["id"]]
    assert ids("?article=match") == [b["id"]]
    assert ids("?author=y@example.org") == [b["id"]]
    assert ids("?sort=age") == [a["id"], b["id"]]
    assert set(ids("?sort=risk")) == {a["id"], b["id"]}
    risks = [c["scores"]["spam"] for c in api.get("/api/v1/queue?sort=risk").get_json()["comments"]]
    assert risks == sorted(risks, reverse=True)
    assert ids("?older_than=3600") == []
    assert ids("?status=published") == []


@pytest.mark.parametrize("sort", ["risk", "age"])
def test_pagination_stays_correct_while_comments_arrive_and_leave(api, sort):
    first_batch = [api.post_comment(f"comment number {i} about the council").get_json()["id"] for i in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        query = f"/api/v1/queue?sort={sort}&limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(query).get_json()
        seen += [c["id"] for c in page["comments"]]
        pages += 1
        if pages == 1:  # while paging: new comments arrive and a seen one is decided
            api.post_comment("a late arrival about the council")
            api.decide(seen[0], "approve")
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)), "no comment twice"
    assert set(first_batch) <= set(seen), "no comment that was there all along is skipped"


def test_audit_log_lists_and_cannot_be_changed(api):
    comment_id = api.post_comment().get_json()["id"]
    api.decide(comment_id, "reject", "abuse", note="rude")
    entries = api.get("/api/v1/audit?actor=moderator-test").get_json()["entries"]
    assert [(e["comment_id"], e["action"], e["reason"]) for e in entries] == [(comment_id, "reject", "abuse")]
    assert len(api.get(f"/api/v1/audit?comment_id={comment_id}").get_json()["entries"]) == 2
    engine = api.app.extensions["moderation.engine"]
    assert_append_only(engine, "audit_log", ["UPDATE audit_log SET note = 'forged'", "DELETE FROM audit_log"])
    assert len(api.get(f"/api/v1/audit?comment_id={comment_id}").get_json()["entries"]) == 2


def test_rate_limit_per_author_answers_429_with_retry_after(make_api):
    api = make_api(RATE_LIMIT="3 per day")
    codes = [api.post_comment(f"comment {i}", author={"email": "flood@example.org"}).status_code for i in range(5)]
    assert codes == [201, 201, 201, 429, 429]
    limited = api.post_comment("one more", author={"email": "flood@example.org"})
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    assert api.post_comment("someone else", author={"email": "calm@example.org"}).status_code == 201
    ip_codes = [api.post_comment(f"ip {i}", author={"ip": "198.51.100.7"}).status_code for i in range(4)]
    assert ip_codes == [201, 201, 201, 429]


def test_health_ready_and_metrics(api):
    assert api.client.get("/healthz").get_json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["model_version"]
    api.post_comment()
    metrics = api.client.get("/metrics").get_data(as_text=True)
    for name in ("moderation_http_requests_total", "moderation_http_request_seconds_bucket", "moderation_decisions_total",
                 "moderation_model_info", 'moderation_comments{status="pending"} 1.0'):
        assert name in metrics, name


def test_a_site_sees_only_its_own_comments(make_api):
    first = make_api()
    comment_id = first.post_comment("from site one").get_json()["id"]
    other_site = make_api()  # a second site key on the same database
    assert other_site.client.get(f"/api/v1/comments/{comment_id}", headers=other_site.headers("site")).status_code == 404
    assert first.get(f"/api/v1/comments/{comment_id}", role="site").status_code == 200
    assert other_site.get(f"/api/v1/comments/{comment_id}", role="moderator").status_code == 200


def test_ids_beyond_the_database_range_are_404_or_422(api):
    huge = 10**20
    assert api.get(f"/api/v1/comments/{huge}").status_code == 404
    assert api.decide(huge).status_code == 404
    assert api.post_comment("x", parent_id=huge).status_code == 422
    bulk = api.client.post("/api/v1/decisions", json={"decisions": [{"comment_id": huge, "action": "approve"}]}, headers=api.headers("moderator"))
    assert bulk.status_code == 422


def test_crafted_cursors_are_422(api):
    import base64
    import json as jsonlib

    for values in ([None, None], [{"a": 1}, 1], ["a", 1], [0.5, "x"], [1, 10**30]):
        cursor = base64.urlsafe_b64encode(jsonlib.dumps(values).encode()).decode().rstrip("=")
        assert api.get(f"/api/v1/queue?sort=risk&cursor={cursor}").status_code == 422, values


def test_bulk_with_bad_expected_status_changes_nothing(api):
    comment_id = api.post_comment().get_json()["id"]
    response = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": [
        {"comment_id": comment_id, "action": "approve", "expected_status": "bogus"}]})
    assert response.status_code == 422 and "decisions[0].expected_status" in response.get_json()["error"]["fields"]
    assert api.get(f"/api/v1/comments/{comment_id}").get_json()["status"] == "pending"


def test_audit_since_understands_time_zone_offsets(api):
    from datetime import datetime, timedelta, timezone
    from urllib.parse import quote

    comment_id = api.post_comment().get_json()["id"]
    api.decide(comment_id)
    five_minutes_ago = (datetime.now(timezone(timedelta(hours=2))) - timedelta(minutes=5)).isoformat()
    entries = api.get(f"/api/v1/audit?since={quote(five_minutes_ago)}").get_json()["entries"]
    assert len(entries) == 2
    assert len(api.get(f"/api/v1/audit?since={five_minutes_ago}").get_json()["entries"]) == 2  # "+" unencoded


def test_addresses_are_compared_normalised(make_api):
    api = make_api(RATE_LIMIT="1 per day")
    assert api.post_comment("one", author={"ip": "2001:DB8::1"}).status_code == 201
    assert api.post_comment("two", author={"ip": "2001:db8:0::1"}).status_code == 429
    assert len(api.get("/api/v1/queue?ip=2001:DB8:0:0::1").get_json()["comments"]) == 1


def test_retries_are_never_rate_limited_and_success_has_no_retry_after(make_api):
    api = make_api(RATE_LIMIT="1 per day")
    first = api.post_comment("hello", author={"email": "r@example.org"}, external_id="e-1")
    assert first.status_code == 201 and "Retry-After" not in first.headers
    again = api.post_comment("hello", author={"email": "r@example.org"}, external_id="e-1")
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert api.post_comment("new", author={"email": "r@example.org"}, external_id="e-2").status_code == 429


def test_a_null_body_is_422_not_400(api):
    response = api.client.post("/api/v1/comments", data="null", content_type="application/json", headers=api.headers("site"))
    assert response.status_code == 422
