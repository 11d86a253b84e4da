"""Coral's external moderation phase, held to Coral's published contract, on SQLite and PostgreSQL.

Requests are built as Coral builds them (EXTERNAL_MODERATION_PHASES.md's examples; the body
is JSON.stringify(request, null, 2)) and signed as Coral signs them (WEBHOOKS.md "Webhook
Signing": X-Coral-Signature: sha256=<HMAC-SHA256 hex of the raw body>, one per active secret).
Answers are checked against the response schema Coral validates them with (external.ts).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import statistics
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import NESTED_TOO_DEEPLY
from moderation.schema import Comment

SECRET, OLD_SECRET = "ssc_9f2bd0c6-2a4e-4c8e-8a57-3f1f0c1f6b2e", "ssc_previous-secret"
DECIDE = {"spam": {"review_at": 0.3, "reject_at": 0.5}, "toxic": {"review_at": 0.5, "reject_at": 2.0}}
CLEAN = "Here's a comment! The council's plan for the bridge seems sensible to me."
SPAM = "CHEAP VIAGRA!!! Buy now at http://cheap-pills.example.com best prices click here"
ABUSE = "You are a stupid idiot and everyone hates you"
AUTHOR = "baf4e943-3594-4fcc-b2ba-3e8de7a76352"
# What Coral's response validation (Joi, in external.ts) accepts.
STATUSES = {"NONE", "APPROVED", "REJECTED", "PREMOD", "SYSTEM_WITHHELD"}
REASONS = {"COMMENT_DETECTED_TOXIC", "COMMENT_DETECTED_SPAM"}


def coral_request(body: str = CLEAN, action: str = "NEW", parent: str | None = None, author: str = AUTHOR) -> dict:
    """The contract's example request, with this body."""
    return {
        "action": action,
        "comment": {"body": body, "parentID": parent},
        "author": {"id": author, "role": "COMMENTER"},
        "story": {"id": "245b3856-b0a0-4d2f-a6bb-58c71f18d6a6", "url": "http://localhost:1313/posts/a-story-url/"},
        "site": {"id": "a4bede88-2d2c-4424-bc18-4322a9e285a6"},
        "tenantID": "19ba5794-7eeb-4d46-a81b-c00c61672501",
        "tenantDomain": "localhost",
    }


def serialize(payload) -> bytes:
    return json.dumps(payload, indent=2, ensure_ascii=False).encode()  # JSON.stringify(data, null, 2)


def signature(raw: bytes, *secrets: str) -> str:
    """generateSignatures: one sha256=<hex> per active secret, joined by commas."""
    return ",".join("sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest() for secret in secrets)


def send(api, payload=None, *, raw: bytes | None = None, secrets: tuple[str, ...] = (SECRET,), header: str | None = None):
    raw = serialize(payload if payload is not None else coral_request()) if raw is None else raw
    headers = {"Content-Type": "application/json", "User-Agent": "Coral Moderation/7.0.0"}
    headers["X-Coral-Signature"] = signature(raw, *secrets) if header is None else header
    if header == "":
        del headers["X-Coral-Signature"]
    return api.client.post("/api/coral/moderate", data=raw, headers=headers)


def assert_coral_answer(response) -> dict | None:
    """A 204 without a body, or a 200 whose JSON Coral's validation accepts; return the JSON."""
    if response.status_code == 204:
        assert response.get_data() == b""
        return None
    assert response.status_code == 200 and response.mimetype == "application/json", response.get_data(as_text=True)
    answer = response.get_json()
    assert set(answer) <= {"actions", "status", "tags"}
    assert answer.get("status", "NONE") in STATUSES
    for action in answer.get("actions", []):
        assert set(action) == {"actionType", "reason"} and action["actionType"] == "FLAG" and action["reason"] in REASONS
    return answer


def stored(api) -> list[Comment]:
    with Session(api.app.extensions["moderation.engine"]) as session:
        return list(session.scalars(select(Comment).order_by(Comment.id)))


@pytest.fixture
def coral(make_api):
    return make_api(THRESHOLDS=DECIDE, CORAL_SIGNING_SECRETS={"coral-news": SECRET})


def test_a_clean_comment_is_no_opinion_and_stored_like_any_other(coral):
    response = send(coral)
    assert assert_coral_answer(response) is None and response.status_code == 204
    assert response.headers["X-Moderation-Decision"] == "accept"
    (comment,) = stored(coral)
    assert (comment.id, comment.site, comment.text, comment.status) == (int(response.headers["X-Moderation-Comment-Id"]), "coral-news", CLEAN, "published")
    assert (comment.author_name, comment.author_email) == (AUTHOR, f"{AUTHOR}@coral.invalid")
    assert (comment.article_id, comment.article_url) == ("245b3856-b0a0-4d2f-a6bb-58c71f18d6a6", "http://localhost:1313/posts/a-story-url/")
    assert comment.model_version and comment.scores["spam"] < DECIDE["spam"]["review_at"]


def test_spam_is_rejected_with_the_spam_flag(coral):
    response = send(coral, coral_request(SPAM))
    assert assert_coral_answer(response) == {"status": "REJECTED", "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}]}
    (comment,) = stored(coral)
    assert comment.status == "rejected" and comment.scores["spam"] >= DECIDE["spam"]["reject_at"]


def test_abuse_is_withheld_with_the_toxic_flag_and_queued(coral):
    response = send(coral, coral_request(ABUSE))
    assert assert_coral_answer(response) == {"status": "SYSTEM_WITHHELD", "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}]}
    queue = coral.get("/api/v1/queue").get_json()["comments"]
    assert [(c["text"], c["author"]["email"]) for c in queue] == [(ABUSE, f"{AUTHOR}@coral.invalid")]


def test_certain_spam_is_rejected_and_discarded(make_api):
    api = make_api(THRESHOLDS=DECIDE, DISCARD_SPAM_AT=0.9, CORAL_SIGNING_SECRETS={"coral-news": SECRET})
    answer = assert_coral_answer(send(api, coral_request(SPAM)))
    assert answer == {"status": "REJECTED", "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_SPAM"}]}
    assert stored(api)[0].discarded


def test_a_reply_from_the_contracts_second_example(coral):
    response = send(coral, coral_request("Here's a reply!", parent="d79b787f-f406-49a0-a179-72e3652e54be"))
    assert response.status_code in (200, 204)
    assert_coral_answer(response)
    assert stored(coral)[0].parent_id is None  # Coral's ids are not ours


def test_an_edit_rescores_the_new_body_and_is_never_its_own_duplicate(coral):
    assert send(coral, coral_request(CLEAN)).status_code == 204
    edited = send(coral, coral_request(ABUSE, action="EDIT"))
    assert assert_coral_answer(edited)["status"] == "SYSTEM_WITHHELD"
    retyped = send(coral, coral_request(CLEAN.upper(), action="EDIT"))  # the same normalised text as the first version
    assert retyped.status_code == 204, retyped.get_json()
    assert [c.text for c in stored(coral)] == [CLEAN, ABUSE, CLEAN.upper()]


def test_a_replay_cannot_be_told_from_a_resend_and_is_rejected_as_a_duplicate(coral):
    """The contract signs the body only (no timestamp): the duplicate rule is what stops a replayed comment."""
    raw = serialize(coral_request(CLEAN))
    assert send(coral, raw=raw).status_code == 204
    replay = send(coral, raw=raw)
    assert assert_coral_answer(replay) == {"status": "REJECTED"}
    assert [c.status for c in stored(coral)] == ["published", "rejected"]
    assert "duplicate" in stored(coral)[1].reasons[0]


@pytest.mark.parametrize("case", ["wrong secret", "tampered body", "no header", "no sha256 element", "not hex", "signature of another body"])
def test_a_bad_or_missing_signature_is_401_and_stores_nothing(coral, case):
    raw = serialize(coral_request(SPAM))
    kwargs = {
        "wrong secret": {"raw": raw, "secrets": ("ssc_someone-else",)},
        "tampered body": {"raw": raw.replace(b"VIAGRA", b"viagra"), "header": signature(raw, SECRET)},
        "no header": {"raw": raw, "header": ""},
        "no sha256 element": {"raw": raw, "header": "t=12345,v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()},
        "not hex": {"raw": raw, "header": "sha256=\u00e9\u00e9"},
        "signature of another body": {"raw": raw, "header": signature(serialize(coral_request(CLEAN)), SECRET)},
    }[case]
    response = send(coral, **kwargs)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized" and "X-Coral-Signature" in response.get_json()["error"]["message"]
    assert stored(coral) == []


def test_without_configured_secrets_every_request_is_refused(make_api):
    api = make_api(THRESHOLDS=DECIDE)
    response = send(api)
    assert response.status_code == 401 and "CORAL_SIGNING_SECRETS" in response.get_json()["error"]["message"]
    assert stored(api) == []


def test_rotated_secrets_and_several_sites(make_api):
    api = make_api(THRESHOLDS=DECIDE, CORAL_SIGNING_SECRETS={"news": [SECRET, OLD_SECRET], "sport": "ssc_sport"})
    assert send(api, coral_request("First comment on the match report."), secrets=(OLD_SECRET,)).status_code == 204
    assert send(api, coral_request("Second comment on the match report."), secrets=("ssc_retired", SECRET)).status_code == 204
    assert send(api, coral_request("Third comment on the match report."), secrets=("ssc_sport",)).status_code == 204
    assert [c.site for c in stored(api)] == ["news", "news", "sport"]


@pytest.mark.parametrize("setting", [["not", "a", "map"], {"news": ""}, {"news": []}, {"": "secret"}, {"news": [1]}, {"x" * 101: "s"}])
def test_a_malformed_setting_stops_the_app_at_start(make_api, setting):
    with pytest.raises(ValueError, match="CORAL_SIGNING_SECRETS"):
        make_api(CORAL_SIGNING_SECRETS=setting)


MALFORMED = [
    ("not JSON", b"{action: NEW", 400, ()),
    ("not UTF-8", b'{"action": "NEW", "comment": {"body": "\xff"}}', 400, ()),
    ("an array", serialize([coral_request()]), 422, ("body",)),
    ("no action or comment", serialize({"author": {"id": AUTHOR}}), 422, ("action", "comment")),
    ("unknown action", serialize({**coral_request(), "action": "DELETE"}), 422, ("action",)),
    ("no body", serialize({**coral_request(), "comment": {"parentID": None}}), 422, ("comment.body",)),
    ("empty body", serialize(coral_request("   ")), 422, ("comment.body",)),
    ("body not text", serialize({**coral_request(), "comment": {"body": ["x"], "parentID": 7}}), 422, ("comment.body", "comment.parentID")),
    ("control characters", serialize(coral_request("bell \x07")), 422, ("comment.body",)),
    ("author id not text", serialize({**coral_request(), "author": {"id": 42, "role": "COMMENTER"}}), 422, ("author.id",)),
    ("story not an object", serialize({**coral_request(), "story": "s1"}), 422, ("story",)),
    ("story url too long", serialize({**coral_request(), "story": {"id": "s", "url": "u" * 2001}}), 422, ("story.url",)),
]


@pytest.mark.parametrize("case,raw,status,fields", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_body_names_the_field_and_stores_nothing(coral, case, raw, status, fields):
    response = send(coral, raw=raw)  # correctly signed: the signature is checked first, then the body
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(fields) <= set(error.get("fields", {})), error
    assert stored(coral) == []


@pytest.mark.parametrize("raw", list(NESTED_TOO_DEEPLY.values()), ids=list(NESTED_TOO_DEEPLY))
def test_a_body_nested_too_deeply_is_400_like_any_body_that_is_not_json(coral, raw):
    raw = raw.encode()
    assert len(raw) < coral.app.config["MAX_BODY_BYTES"]
    response = send(coral, raw=raw)  # correctly signed, so the body is parsed
    assert response.status_code == 400, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and "not valid JSON" in error["message"] and "fields" not in error
    assert stored(coral) == []
    assert send(coral).status_code == 204  # and the worker carries on


def test_a_body_too_long_for_a_comment_names_it(coral):
    response = send(coral, coral_request("y" * (coral.app.config["MAX_TEXT_CHARS"] + 1)))
    assert response.status_code == 422 and "comment.body" in response.get_json()["error"]["fields"]


def test_a_body_over_the_size_limit_is_413(make_api):
    api = make_api(THRESHOLDS=DECIDE, MAX_BODY_BYTES=4096, CORAL_SIGNING_SECRETS={"coral-news": SECRET})
    response = send(api, coral_request("z " * 3000))
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"
    assert stored(api) == []


def test_it_answers_well_within_corals_timeout(coral):
    """Coral skips a phase that has not answered within its timeout (set per phase, in milliseconds)."""
    send(coral, coral_request("Warming up: the first request loads what later ones reuse."))
    timings = []
    for number in range(5):
        started = time.perf_counter()
        response = send(coral, coral_request(f"Comment number {number} about the new cycle lanes on the high street."))
        timings.append(time.perf_counter() - started)
        assert response.status_code in (200, 204)
    assert statistics.median(timings) < 0.25, timings
