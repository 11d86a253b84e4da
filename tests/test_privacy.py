"""Privacy: erasure leaves no trace of a reader's address anywhere in the database while texts,
decisions and training labels stay; retention purges old addresses, old spam, expired sessions
and old IP bans, idempotently; the admin-only endpoint answers as its OpenAPI document says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import Text, cast, func, select, update
from sqlalchemy.orm import Session

from moderation import accounts, bans, labels, privacy, store, webhooks
from moderation.cli import cli
from moderation.schema import AuditEntry, Ban, Base, Comment, DeskSession, utcnow

ADDRESS = "Reader.One@Example.org"
OTHER = "someone.else@example.org"


def session_of(api) -> Session:
    return Session(api.app.extensions["moderation.engine"])


def traces(api, needle: str) -> list[str]:
    """Every column of every table holding ``needle`` in any case, as "table.column"."""
    pattern = f"%{needle.lower()}%"
    found = []
    with api.app.extensions["moderation.engine"].connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                query = select(func.count()).select_from(table).where(func.lower(cast(column, Text)).like(pattern))
                if connection.scalar(query):
                    found.append(f"{table.name}.{column.name}")
    return found


def admin_key(api, name: str = "privacy-admin") -> str:
    with session_of(api) as session:
        return store.create_key(session, name, "admin")


def erase_call(api, key: str, body):
    return api.client.post("/api/v1/erasures", json=body, headers={"Authorization": f"Bearer {key}"})


def post(api, text: str, email: str | None, ip: str = "203.0.113.5", **author) -> int:
    response = api.post_comment(text, author={"email": email, "ip": ip, "user_agent": f"UA of {email}", **author})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def labelled(session) -> set[tuple[str, tuple]]:
    return {(row.text, tuple(sorted(row.labels.items()))) for row in labels.site_labels(session)}


# --- erasure ------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_address_anywhere_in_the_database(api):
    key = admin_key(api)
    with session_of(api) as session:
        webhooks.add_endpoint(session, "site-test", "https://news.example/hook")  # outbox rows for every comment below
    approved = post(api, "The council should publish the budget figures.", ADDRESS, name="Reader One", url="https://reader.example/me")
    spam = post(api, "Cheap watches at bit.ly/watches, best prices!", ADDRESS.lower(), ip="198.51.100.7")
    abuse = post(api, "You are all idiots and so is the mayor.", ADDRESS.upper(), ip="198.51.100.7")
    mentions = post(api, f"Ask {ADDRESS.swapcase()} about the bridge, they know.", OTHER, ip="192.0.2.9")
    assert api.decide(approved, "approve", note="fine").status_code == 200
    assert api.decide(spam, "reject", "spam", note="link farm").status_code == 200
    assert api.decide(abuse, "reject", "abuse").status_code == 200
    with session_of(api) as session:
        bans.ban(session, email=ADDRESS, ip="198.51.100.7", by="mia", reason=f"comment #{spam}")
        bans.ban(session, email=OTHER, ip=None, by="mia", reason="another reader")
        before = labelled(session)
    assert len(before) == 3
    assert {"comments.author_email", "comments.text", "bans.value"} <= set(traces(api, ADDRESS))  # the search finds what is there

    response = erase_call(api, key, {"email": f"  {ADDRESS.upper()} "})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"comments": 3, "texts_redacted": 1, "bans_removed": 2, "audit_notes_mentioning": 0}

    assert traces(api, ADDRESS) == []
    assert traces(api, "198.51.100.7") == [] and traces(api, "Reader One") == [] and traces(api, "reader.example") == []
    with session_of(api) as session:
        for comment_id in (approved, spam, abuse):
            comment = store.get_comment(session, comment_id)
            assert (comment.author_name, comment.author_email, comment.author_url, comment.author_ip, comment.author_user_agent) == (None,) * 5
            assert comment.text and comment.purged_at is None
        assert [store.get_comment(session, i).status for i in (approved, spam, abuse)] == ["published", "rejected", "rejected"]
        other = store.get_comment(session, mentions)
        assert other.author_email == OTHER and other.author_ip == "192.0.2.9"  # another reader keeps their data...
        assert other.text.startswith("Ask [erased") and len(other.text) == len(f"Ask {ADDRESS} about the bridge, they know.")
        assert labelled(session) == before  # texts and human decisions stay, so the training labels do
        erasures = store.audit(session, action="erase")
        assert len(erasures) == 1 and erasures[0].actor == "privacy-admin" and erasures[0].comment_id == abuse
        assert [e.action for e in store.history_of(session, spam)] == ["review", "reject"]  # decisions untouched
        assert [(b.kind, b.value) for b in bans.in_force(session, limit=100)] == [("email", OTHER)]

    again = erase_call(api, key, {"email": ADDRESS})  # nothing left: nothing changes, no second audit entry
    assert again.status_code == 200 and again.get_json() == {"comments": 0, "texts_redacted": 0, "bans_removed": 0, "audit_notes_mentioning": 0}
    with session_of(api) as session:
        assert len(store.audit(session, action="erase")) == 1


def test_a_moderators_note_never_keeps_a_readers_address_so_erasure_leaves_no_trace(api):
    comment_id = post(api, "A remark about parking.", ADDRESS)
    assert api.decide(comment_id, "approve", note=f"reader {ADDRESS} phoned the desk").status_code == 200
    with session_of(api) as session:  # masked as it is written: the append-only log could never drop it later
        assert "reader R***@Example.org phoned the desk" in [entry.note for entry in store.history_of(session, comment_id)]
    answer = erase_call(api, admin_key(api), {"email": ADDRESS.lower()}).get_json()
    assert answer["audit_notes_mentioning"] == 0 and answer["comments"] == 1
    assert traces(api, ADDRESS) == []


@pytest.mark.parametrize("address,masked", [("jörg.müller@bücher.de", "j***@bücher.de"), ("zoë@example.org", "z***@example.org"),
                                            ("ana@localhost", "a***@localhost"), ("x@[192.0.2.1]", "x***@[192.0.2.1]"),
                                            ("joão@exemplo.pt", "j***@exemplo.pt")])
def test_every_address_the_api_accepts_is_masked_in_notes(api, address, masked):
    comment_id = post(api, "A remark about parking.", address)
    assert api.decide(comment_id, "approve", note=f"same reader as {address}, see ticket").status_code == 200
    with session_of(api) as session:
        assert f"same reader as {masked}, see ticket" in [entry.note for entry in store.history_of(session, comment_id)]


def test_audit_notes_written_before_masking_are_counted_not_changed(api):
    comment_id = post(api, "A remark about parking.", ADDRESS)
    note = f"reader {ADDRESS} phoned the desk"
    with session_of(api) as session:  # as a note written by an earlier version would be, unmasked
        comment = session.get(Comment, comment_id)
        session.add(AuditEntry(comment_id=comment_id, actor="mia", action="note", reason=None, note=note, previous_status=comment.status,
                                     new_status=comment.status, scores=comment.scores, model_version=comment.model_version, created_at=utcnow()))
        session.commit()
    answer = erase_call(api, admin_key(api), {"email": ADDRESS.lower()}).get_json()
    assert answer["audit_notes_mentioning"] == 1 and answer["comments"] == 1
    assert traces(api, ADDRESS) == ["audit_log.note"]  # append-only: counted and reported, never rewritten


@pytest.mark.parametrize("body,field", [({}, "email"), ({"email": "nope"}, "email"), ({"email": 7}, "email"),
                                        ({"email": "a@" + "b" * 330}, "email"), ({"email": "two@signs@x"}, "email")])
def test_erasure_refuses_what_is_not_an_email_address(api, body, field):
    response = erase_call(api, admin_key(api), body)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


def test_only_admin_keys_may_erase(api):
    post(api, "Hello there.", ADDRESS)
    for role in ("site", "moderator"):
        response = api.client.post("/api/v1/erasures", json={"email": ADDRESS}, headers=api.headers(role))
        assert response.status_code == 403
    assert api.client.post("/api/v1/erasures", json={"email": ADDRESS}).status_code == 401
    assert admin_key(api).startswith("cm_a_")
    assert api.client.post("/api/v1/comments", json={"text": "hi"}, headers={"Authorization": f"Bearer {admin_key(api, 'a2')}"}).status_code == 403
    assert traces(api, ADDRESS)  # nothing was erased


def test_masking_keeps_offsets_and_catches_every_case():
    text = f"mail {ADDRESS.lower()} or {ADDRESS.upper()}!"
    masked = privacy.mask(ADDRESS, text)
    assert len(masked) == len(text) and ADDRESS.lower() not in masked.lower()
    assert masked.startswith("mail [erased") and masked.endswith("]!")
    assert privacy.mask("a@b", "x A@B y") == "x *** y"


# --- retention ----------------------------------------------------------------------------


def age(api, comment_id: int, days: float) -> None:
    """Pretend the comment arrived, and was last decided, ``days`` ago."""
    moment = utcnow() - timedelta(days=days)
    with session_of(api) as session:
        session.execute(update(Comment).where(Comment.id == comment_id).values(created_at=moment, updated_at=moment))
        session.commit()


def test_purge_applies_retention_idempotently_and_purged_spam_vanishes(make_api):
    api = make_api(RETAIN_IP_DAYS=30, PURGE_SPAM_DAYS=15)
    old_ok, new_ok, old_spam, old_abuse, new_spam = (post(api, f"Comment number {i} on the budget.", f"r{i}@example.org") for i in range(5))
    api.decide(old_ok, "approve")
    for comment_id, reason in ((old_spam, "spam"), (old_abuse, "abuse"), (new_spam, "spam")):
        assert api.decide(comment_id, "reject", reason).status_code == 200
    for comment_id, days in ((old_ok, 40), (old_spam, 20), (old_abuse, 20), (new_spam, 5)):
        age(api, comment_id, days)
    # the model's own rejections: spam (purged) and abuse (kept), told apart by their scores
    rejecting = make_api(THRESHOLDS={"spam": {"review_at": 0.0, "reject_at": 0.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}})
    model_spam, model_abuse = (post(rejecting, f"Model decided {i}.", f"m{i}@example.org") for i in range(2))
    now = utcnow()
    with session_of(api) as session:
        for comment_id, scores in ((model_spam, {"spam": 0.9, "toxic": 0.1}), (model_abuse, {"spam": 0.2, "toxic": 0.95})):
            session.execute(update(Comment).where(Comment.id == comment_id).values(scores=scores, updated_at=now - timedelta(days=16)))
        user = accounts.add_user(session, "mia", "moderator", "correct horse battery staple")
        session.add_all([DeskSession(token_hash="a" * 64, user_id=user.id, expires_at=now - timedelta(hours=1)),
                         DeskSession(token_hash="b" * 64, user_id=user.id, expires_at=now + timedelta(hours=1))])
        session.commit()
        bans.ban(session, email="r2@example.org", ip="192.0.2.1", by="mia")
        bans.ban(session, email=None, ip="192.0.2.2", by="mia")
        session.execute(update(Ban).where(Ban.value.in_(["r2@example.org", "192.0.2.1"])).values(created_at=now - timedelta(days=31)))
        session.commit()
        assert len(labels.site_labels(session)) == 4

        config = {**api.app.config}
        dry = privacy.purge(session, config, dry_run=True)
        assert (dry.addresses, dry.spam, dry.sessions, dry.ip_bans) == (1, 2, 1, 1)
        assert "would be" in dry.summary(config, dry_run=True)
        assert store.get_comment(session, old_spam).text  # a dry run changes nothing
        done = privacy.purge(session, config)
        assert done == dry
        assert privacy.purge(session, config) == privacy.Purged()  # a second run (another host) finds nothing left

        session.expire_all()
        ok = store.get_comment(session, old_ok)
        assert ok.author_ip is None and ok.author_user_agent is None and ok.author_email == "r0@example.org" and ok.text
        assert store.get_comment(session, new_ok).author_ip == "203.0.113.5"
        for comment_id in (old_spam, model_spam):
            purged = store.get_comment(session, comment_id)
            assert purged.purged_at is not None and purged.text == "" and purged.author_email is None and purged.status == "rejected"
        for comment_id in (old_abuse, new_spam, model_abuse):
            kept = store.get_comment(session, comment_id)
            assert kept.purged_at is None and kept.text and kept.author_email
        rejected, _ = store.queue(session, store.QueueFilter(status="rejected"), limit=50)
        assert {c.id for c in rejected} == {old_abuse, new_spam, model_abuse}
        assert len(labels.site_labels(session)) == 3 and all(row.text for row in labels.site_labels(session))
        assert sum(len(chunk) for chunk in labels.stream_site_labels(session)) == 3
        assert [s.token_hash for s in session.scalars(select(DeskSession))] == ["b" * 64]
        assert sorted((b.kind, b.value) for b in bans.in_force(session, limit=100)) == [("email", "r2@example.org"), ("ip", "192.0.2.2")]
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.comment_id == old_spam)) == 2  # audit intact

        keep_all = {**config, "RETAIN_IP_DAYS": 0, "PURGE_SPAM_DAYS": 0}
        age(api, new_spam, 400)
        assert privacy.purge(session, keep_all, dry_run=True) == privacy.Purged()
        assert "kept" in privacy.purge(session, keep_all).summary(keep_all, dry_run=False)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_env(api, database, monkeypatch, tmp_path):
    monkeypatch.setenv("MODERATION_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("MODERATION_DATABASE_URL", database["DATABASE_URL"])
    if database.get("DATABASE_SCHEMA"):
        monkeypatch.setenv("MODERATION_DATABASE_SCHEMA", database["DATABASE_SCHEMA"])
    return api


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_cli_erase_asks_first_and_purge_prints_a_summary(cli_env):
    api = cli_env
    comment_id = post(api, "Some thoughts on the tram line.", ADDRESS)
    refused = run("erase", "--email", ADDRESS, input="n\n")
    assert refused.exit_code != 0 and "erase the personal data of 1 comments" in refused.output
    assert traces(api, ADDRESS)
    bad = run("erase", "--email", "not-an-address", "--yes")
    assert bad.exit_code != 0 and "--email is not an email address" in bad.output
    done = run("erase", "--email", ADDRESS.lower(), "--yes")
    assert done.exit_code == 0 and "erased: 1 comments" in done.output
    assert traces(api, ADDRESS) == []
    with session_of(api) as session:
        assert store.audit(session, action="erase")[0].actor.startswith("cli:")
        assert store.get_comment(session, comment_id).text == "Some thoughts on the tram line."
    kept_ip = post(api, "More thoughts on the tram line.", OTHER)
    age(api, kept_ip, 60)
    dry = run("purge", "--dry-run")
    assert dry.exit_code == 0 and "1 comments older than 30 days would be stripped" in dry.output, dry.output
    real = run("purge")
    assert real.exit_code == 0 and "1 comments older than 30 days were stripped" in real.output
    assert "0 comments older than 30 days were stripped" in run("purge").output
    assert run("keys", "create", "--name", "dpo", "--role", "admin").output.startswith("cm_a_")


# --- the OpenAPI document -------------------------------------------------------------------


def test_the_erasure_endpoint_answers_as_documented(tiny_bundle, tmp_path):
    from tests.test_openapi import Checked, assert_error, build_app

    app, keys = build_app(tmp_path, tiny_bundle)
    try:
        with Session(app.extensions["moderation.engine"]) as session:
            keys["admin"] = store.create_key(session, "dpo", "admin")
        checked = Checked(app, keys)
        checked.post_comment(author={"email": ADDRESS, "ip": "192.0.2.5"})
        erased = checked.call("POST", "/api/v1/erasures", role="admin", json={"email": ADDRESS})
        assert erased.status_code == 200 and erased.get_json()["comments"] == 1
        entry = checked.call("GET", "/api/v1/audit?action=erase", role="moderator").get_json()["entries"]  # "erase" is a documented action
        assert [e["action"] for e in entry] == ["erase"] and ADDRESS.lower() not in (entry[0]["note"] or "").lower()
        assert_error(checked.call("POST", "/api/v1/erasures", role="admin", json={"email": "nope"}, request_valid=False), 422, "invalid", ("email",))
        assert_error(checked.call("POST", "/api/v1/erasures", role="moderator", json={"email": ADDRESS}), 403, "forbidden")
        operation = checked.document["paths"]["/api/v1/erasures"]["post"]
        assert operation["x-roles"] == ["admin"] and {"403", "422"} <= set(operation["responses"])
    finally:
        app.extensions["moderation.engine"].dispose()


def test_an_erased_readers_spam_is_still_purged_on_time(make_api):
    """Erasure adds an audit entry to the reader's newest comment; if that comment is rejected spam, the purge must still blank it."""
    api = make_api(RETAIN_IP_DAYS=30, PURGE_SPAM_DAYS=15)
    spam = post(api, "Cheap watches at bit.ly/watches, best prices!", ADDRESS)
    assert api.decide(spam, "reject", "spam").status_code == 200
    assert erase_call(api, admin_key(api), {"email": ADDRESS}).get_json()["comments"] == 1
    age(api, spam, 20)
    with session_of(api) as session:
        assert privacy.purge(session, {**api.app.config}).spam == 1
        assert store.get_comment(session, spam).text == ""
