"""Akismet's wire protocol, proved with an unmodified Akismet client library and by hand, on SQLite and PostgreSQL.

The library is ``akismet`` (James Bennett's, on PyPI). Its SyncClient takes an httpx client;
an ``httpx.WSGITransport`` hands its requests (to https://rest.akismet.com/1.1/...) to our
Flask app instead of the network. Nothing of the library is patched.
"""

from __future__ import annotations

import akismet
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation import store
from moderation.labels import site_labels
from moderation.schema import AuditEntry, Comment

# Thresholds the tiny model's scores fall clearly on either side of: spam is rejected,
# clean text published, abuse held for review.
DECIDE = {"spam": {"review_at": 0.3, "reject_at": 0.5}, "toxic": {"review_at": 0.5, "reject_at": 2.0}}
BLOG = "https://blog.example.org/"
CLEAN = "Thanks for the thoughtful report on the council budget, very clear."
SPAM = "CHEAP VIAGRA!!! Buy now at http://cheap-pills.example.com best prices click here"
ABUSE = "You are a stupid idiot and everyone hates you"


def routed(api) -> httpx.Client:
    """An HTTP client whose every request, whatever its URL, is answered by our app."""
    return httpx.Client(transport=httpx.WSGITransport(app=api.app), headers={"User-Agent": akismet.USER_AGENT})


def library_client(api, key: str | None = None, url: str = BLOG) -> akismet.SyncClient:
    """The library's own client, its HTTP routed into our app."""
    return akismet.SyncClient(config=akismet.Config(key=key or api.site_key, url=url), http_client=routed(api))


def comments(api) -> list[Comment]:
    with Session(api.app.extensions["moderation.engine"]) as session:
        return list(session.scalars(select(Comment).order_by(Comment.id)))


def labels(api) -> dict[str, dict[str, int]]:
    with Session(api.app.extensions["moderation.engine"]) as session:
        return {row.text: row.labels for row in site_labels(session)}


def form(api, **fields) -> dict:
    return {"api_key": api.site_key, "blog": BLOG, "user_ip": "203.0.113.5", "comment_content": CLEAN, **fields}


@pytest.fixture
def deciding(make_api):
    return make_api(THRESHOLDS=DECIDE)


# --- through the library ------------------------------------------------------------------


def test_the_library_verifies_a_site_key_and_no_other(deciding):
    with library_client(deciding) as client:  # the context manager verifies the key on entry
        assert client.verify_key() is True
    validated = akismet.SyncClient.validated_client(config=akismet.Config(key=deciding.site_key, url=BLOG), http_client=routed(deciding))
    assert validated.verify_key(deciding.site_key, "https://another.example.org/") is True
    for wrong in ("cm_s_not-a-key", deciding.moderator_key):
        assert library_client(deciding, key=wrong).verify_key() is False
        with pytest.raises(akismet.APIKeyError):
            library_client(deciding, key=wrong).__enter__()
        with pytest.raises(akismet.APIKeyError):  # an unverified client with a bad key: every call says "invalid"
            library_client(deciding, key=wrong).comment_check(user_ip="203.0.113.5", comment_content=CLEAN)


def test_comment_check_stores_scores_and_decides_like_the_api(deciding):
    client = library_client(deciding)
    author = dict(comment_author="Ann", comment_author_email="ann@example.org", comment_type="comment",
                  permalink="https://blog.example.org/2026/bridge", user_agent="Mozilla/5.0", referrer="https://blog.example.org/")
    assert client.comment_check(user_ip="203.0.113.5", comment_content=CLEAN, **author) == akismet.CheckResponse.HAM
    assert client.comment_check(user_ip="198.51.100.7", comment_content=SPAM, comment_author="Bot") == akismet.CheckResponse.SPAM
    clean, spam = comments(deciding)
    assert (clean.text, clean.status, clean.site) == (CLEAN, "published", "site-test")
    assert (clean.author_email, clean.author_ip, clean.article_url) == ("ann@example.org", "203.0.113.5", "https://blog.example.org/2026/bridge")
    assert (spam.status, spam.decision, spam.discarded) == ("rejected", "reject", False)
    assert spam.scores["spam"] >= DECIDE["spam"]["reject_at"] > clean.scores["spam"]
    rejected = deciding.get("/api/v1/queue?status=rejected").get_json()["comments"]
    assert [c["id"] for c in rejected] == [spam.id]  # moderators see it like any other


def test_certain_spam_is_the_librarys_discard(make_api):
    api = make_api(THRESHOLDS=DECIDE, DISCARD_SPAM_AT=0.9)
    assert library_client(api).comment_check(user_ip="198.51.100.7", comment_content=SPAM) == akismet.CheckResponse.DISCARD
    (stored,) = comments(api)
    assert stored.discarded and stored.status == "rejected"


def test_a_held_comment_answers_false_and_waits_in_the_queue(deciding):
    response = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=ABUSE))
    assert response.get_data(as_text=True) == "false"
    assert response.headers["X-Moderation-Decision"] == "review"
    queue = deciding.get("/api/v1/queue").get_json()["comments"]
    assert [(c["id"], c["text"]) for c in queue] == [(int(response.headers["X-Moderation-Comment-Id"]), ABUSE)]
    assert library_client(deciding).comment_check(user_ip="192.0.2.9", comment_content=ABUSE + " again") == akismet.CheckResponse.HAM


def test_submissions_become_labels_for_the_learning_loop(deciding):
    client = library_client(deciding)
    assert client.comment_check(user_ip="203.0.113.5", comment_content=CLEAN, comment_author_email="ann@example.org") == akismet.CheckResponse.HAM
    assert client.comment_check(user_ip="198.51.100.7", comment_content=SPAM) == akismet.CheckResponse.SPAM
    never_checked = "Visit my channel for daily crypto tips, link in bio"
    assert labels(deciding) == {}  # the model's own decisions are not labels
    assert client.submit_spam(user_ip="203.0.113.5", comment_content=CLEAN, comment_author_email="ann@example.org") is True  # missed spam
    assert client.submit_ham(user_ip="198.51.100.7", comment_content=SPAM) is True  # a false positive
    assert client.submit_spam(user_ip="192.0.2.1", comment_content=never_checked) is True
    assert labels(deciding) == {CLEAN: {"spam": 1}, SPAM: {"spam": 0, "toxic": 0}, never_checked: {"spam": 1}}
    by_text = {c.text: c for c in comments(deciding)}
    assert len(by_text) == 3 and len(comments(deciding)) == 3  # each text stored once, the reports decided on it
    assert (by_text[CLEAN].status, by_text[SPAM].status, by_text[never_checked].status) == ("rejected", "published", "rejected")
    with Session(deciding.app.extensions["moderation.engine"]) as session:
        history = store.history_of(session, by_text[CLEAN].id)
    assert [(h.actor, h.action, h.reason, h.previous_status) for h in history] == [
        ("model", "accept", None, None), ("akismet:site-test", "reject", "spam", "published")]


def test_is_test_answers_but_stores_and_teaches_nothing(deciding):
    client = library_client(deciding)
    assert client.comment_check(user_ip="198.51.100.7", comment_content=SPAM, is_test=True) == akismet.CheckResponse.SPAM
    assert client.comment_check(user_ip="203.0.113.5", comment_content=CLEAN, is_test=True) == akismet.CheckResponse.HAM
    assert client.submit_spam(user_ip="203.0.113.5", comment_content=CLEAN, is_test=True) is True
    assert comments(deciding) == [] and labels(deciding) == {}
    with Session(deciding.app.extensions["moderation.engine"]) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    by_hand = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=SPAM, is_test="1"))
    assert by_hand.get_data(as_text=True) == "true" and "X-Moderation-Comment-Id" not in by_hand.headers


def test_a_recheck_answers_from_the_stored_comment_and_its_moderators(deciding):
    """Plugins re-check held comments; the same comment is not stored twice nor rejected as its own duplicate."""
    first = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=ABUSE))
    again = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=ABUSE, recheck_reason="recheck_queue"))
    assert first.get_data() == again.get_data() == b"false"
    comment_id = int(first.headers["X-Moderation-Comment-Id"])
    assert again.headers["X-Moderation-Comment-Id"] == str(comment_id) and len(comments(deciding)) == 1
    assert deciding.decide(comment_id, "reject", "abuse").status_code == 200
    after = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=ABUSE))
    assert (after.get_data(as_text=True), after.headers["X-Moderation-Decision"]) == ("true", "reject")
    other_address = deciding.client.post("/1.1/comment-check", data=form(deciding, comment_content=ABUSE, user_ip="192.0.2.44"))
    assert other_address.headers["X-Moderation-Comment-Id"] != str(comment_id)  # another sender: a new comment


def test_the_readmes_recipe_sends_the_librarys_calls_to_another_host(deciding):
    """README "Akismet and Coral": an httpx event hook rewrites rest.akismet.com to this service's host."""
    wsgi, hosts = httpx.WSGITransport(app=deciding.app), []

    class Recording(httpx.BaseTransport):
        def handle_request(self, request):
            hosts.append((request.url.host, request.headers["Host"]))
            return wsgi.handle_request(request)

    def to_our_server(request):  # as in the README
        request.url = request.url.copy_with(scheme="https", host="moderation.example.org", port=None)
        request.headers["Host"] = request.url.netloc.decode()

    http = httpx.Client(transport=Recording(), event_hooks={"request": [to_our_server]}, headers={"User-Agent": akismet.USER_AGENT})
    client = akismet.SyncClient.validated_client(config=akismet.Config(key=deciding.site_key, url=BLOG), http_client=http)
    assert client.comment_check(user_ip="198.51.100.7", comment_content=SPAM) == akismet.CheckResponse.SPAM
    assert hosts == [("moderation.example.org", "moderation.example.org")] * 2


# --- the wire format by hand ------------------------------------------------------------------


def assert_answer(response, body: str, **headers) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == body
    for name, value in headers.items():
        assert response.headers.get(name.replace("_", "-")) == value, (name, dict(response.headers))


def test_verify_key_accepts_key_or_api_key_and_says_what_is_wrong(deciding):
    post = lambda data: deciding.client.post("/1.1/verify-key", data=data)  # noqa: E731
    assert_answer(post({"key": deciding.site_key, "blog": BLOG}), "valid")
    assert_answer(post({"api_key": deciding.site_key, "blog": BLOG}), "valid")
    assert "X-akismet-debug-help" not in post({"key": deciding.site_key, "blog": BLOG}).headers
    assert_answer(post({"blog": BLOG}), "invalid", X_akismet_debug_help='Empty "api_key" value')
    assert_answer(post({"key": deciding.site_key}), "invalid", X_akismet_debug_help='Empty "blog" value')
    assert_answer(post({"key": "nope", "blog": BLOG}), "invalid", X_akismet_debug_help="The API key is unknown or revoked.")
    assert_answer(post({"key": deciding.moderator_key, "blog": BLOG}), "invalid",
                  X_akismet_debug_help="This is a moderator key; Akismet clients need a site key.")
    with Session(deciding.app.extensions["moderation.engine"]) as session:
        assert store.revoke_key(session, "site-test")
    assert_answer(post({"key": deciding.site_key, "blog": BLOG}), "invalid", X_akismet_debug_help="The API key is unknown or revoked.")
    as_json = deciding.client.post("/1.1/verify-key", json={"key": deciding.site_key, "blog": BLOG})
    assert_answer(as_json, "invalid", X_akismet_debug_help='Empty "api_key" value')  # Akismet takes form fields only


@pytest.mark.parametrize("path", ["/1.1/comment-check", "/1.1/submit-spam", "/1.1/submit-ham"])
def test_missing_fields_and_bad_keys_answer_as_akismet_does(deciding, path):
    post = lambda **fields: deciding.client.post(path, data=form(deciding, **fields))  # noqa: E731
    assert_answer(post(api_key=""), "invalid", X_akismet_debug_help='Empty "api_key" value')
    assert_answer(post(api_key="wrong"), "invalid", X_akismet_debug_help="The API key is unknown or revoked.")
    key_instead = form(deciding)
    key_instead["key"] = key_instead.pop("api_key")
    assert deciding.client.post(path, data=key_instead).get_data(as_text=True) in ("false", "Thanks for making the web a better place.")
    for name in ("blog", "user_ip", "comment_content"):
        assert_answer(post(**{name: ""}), f"Missing required field: {name}.", X_akismet_debug_help=f'Empty "{name}" value')
    assert len(comments(deciding)) == 1  # only the one complete request was stored


def test_invalid_values_name_the_akismet_field_and_store_nothing(deciding):
    cases = {
        "comment_author_email": ("not-an-email", "comment_author_email is not an email address"),
        "user_ip": ("999.1.1.1", "user_ip is not an IPv4 or IPv6 address"),
        "comment_author_url": ("ftp://example.org", "comment_author_url must be an http or https URL"),
        "comment_content": ("bell \x07", "comment_content contains control characters"),
        "comment_author": ("x" * 201, "comment_author is longer than 200 characters"),
    }
    for field, (value, help_text) in cases.items():
        response = deciding.client.post("/1.1/comment-check", data=form(deciding, **{field: value}))
        assert_answer(response, f"Invalid value: {field}.", X_akismet_debug_help=help_text, X_akismet_error=help_text)
    too_long = "y" * (deciding.app.config["MAX_TEXT_CHARS"] + 1)
    assert deciding.client.post("/1.1/submit-spam", data=form(deciding, comment_content=too_long)).get_data(as_text=True) == "Invalid value: comment_content."
    assert comments(deciding) == []


def test_a_body_too_large_is_413_in_plain_text(make_api):
    api = make_api(THRESHOLDS=DECIDE, MAX_BODY_BYTES=2048)
    response = api.client.post("/1.1/comment-check", data=form(api, comment_content="z " * 2000))
    assert response.status_code == 413 and response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "Request too large." and response.headers["X-akismet-error"] == "The request is larger than 2048 bytes."
    assert comments(api) == []


def test_submissions_answer_akismets_thanks_exactly(deciding):
    for path in ("/1.1/submit-spam", "/1.1/submit-ham"):
        assert_answer(deciding.client.post(path, data=form(deciding)), "Thanks for making the web a better place.")


def test_the_openapi_document_describes_the_akismet_answers(deciding):
    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug.test import EnvironBuilder

    spec = OpenAPI.from_dict(deciding.client.get("/api/v1/openapi.json").get_json(), config=Config(spec_validator_cls=None))
    calls = [
        ("/1.1/verify-key", {"key": deciding.site_key, "blog": BLOG}), ("/1.1/verify-key", {"key": "nope", "blog": BLOG}),
        ("/1.1/comment-check", form(deciding)), ("/1.1/comment-check", form(deciding, comment_content=SPAM)),
        ("/1.1/comment-check", form(deciding, user_ip="")), ("/1.1/comment-check", form(deciding, user_ip="x")),
        ("/1.1/submit-spam", form(deciding)), ("/1.1/submit-ham", form(deciding)),
    ]
    for path, data in calls:
        response = deciding.client.post(path, data=data)
        request = WerkzeugOpenAPIRequest(EnvironBuilder(path=path, method="POST", data=data).get_request())
        spec.validate_request(request)
        spec.validate_response(request, WerkzeugOpenAPIResponse(response))
