"""Many comments decided at once (`store.decide_many`): one transaction, each comment on its own terms."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moderation import store
from moderation.schema import AuditEntry, Comment, OutboxEvent


def _posted(api, count: int) -> list[int]:
    return [api.post_comment(f"Buy cheap watches number {i} at example.com").get_json()["id"] for i in range(count)]


def _audit_counts(session: Session) -> dict[int, int]:
    return dict(session.execute(select(AuditEntry.comment_id, func.count()).where(AuditEntry.actor == "mia").group_by(AuditEntry.comment_id)).all())


def test_each_comment_is_decided_conflicted_or_missing_on_its_own(api):
    ids = _posted(api, 5)
    api.decide(ids[1], "approve")  # someone else got there first
    engine = api.app.extensions["moderation.engine"]
    with Session(engine) as session:
        result = store.decide_many(session, [ids[0], ids[1], 999_999, ids[2], ids[0], ids[3]], actor="mia", action="reject",
                                   reason="spam", note="link farm, ask ann@example.org")
        assert [c.id for c in result.decided] == [ids[0], ids[2], ids[3]]  # in the order asked, a repeated id once
        assert [(c.id, c.status) for c in result.conflicts] == [(ids[1], "published")]
        assert result.missing == [999_999]
    with Session(engine) as session:
        statuses = dict(session.execute(select(Comment.id, Comment.status).where(Comment.id.in_(ids))).all())
        assert [statuses[i] for i in ids] == ["rejected", "published", "rejected", "rejected", "pending"]
        assert _audit_counts(session) == {ids[0]: 1, ids[2]: 1, ids[3]: 1}
        entry = session.scalars(select(AuditEntry).where(AuditEntry.comment_id == ids[0], AuditEntry.actor == "mia")).one()
        assert (entry.previous_status, entry.new_status, entry.reason) == ("pending", "rejected", "spam")
        assert "ann@example.org" not in entry.note  # the append-only log never holds a reader's address


def test_more_comments_than_one_statement_binds_are_all_decided(api, monkeypatch):
    monkeypatch.setattr(store, "_IDS_PER_STATEMENT", 2)
    ids = _posted(api, 5)
    engine = api.app.extensions["moderation.engine"]
    asked = ids + list(range(10_000_000, 10_001_200))  # 1,205 ids: hundreds of statements' worth
    with Session(engine) as session:
        result = store.decide_many(session, asked, actor="mia", action="approve", reason=None, note=None)
        assert [c.id for c in result.decided] == ids and len(result.missing) == 1200 and result.conflicts == []


def test_two_moderators_deciding_the_same_comments_at_once_each_comment_has_one_winner(api):
    ids = _posted(api, 40)
    engine = api.app.extensions["moderation.engine"]
    results, barrier = {}, threading.Barrier(2)

    def moderator(name: str, action: str, order: list[int]) -> None:
        with Session(engine) as session:
            barrier.wait()
            result = store.decide_many(session, order, actor=name, action=action, reason="spam" if action == "reject" else None, note=None)
            results[name] = ({c.id for c in result.decided}, {c.id for c in result.conflicts})

    threads = [threading.Thread(target=moderator, args=("mia", "reject", ids)), threading.Thread(target=moderator, args=("max", "approve", ids[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    won = {name: decided for name, (decided, _) in results.items()}
    assert won["mia"].isdisjoint(won["max"]) and won["mia"] | won["max"] == set(ids)
    assert results["mia"][1] == won["max"] and results["max"][1] == won["mia"]
    with Session(engine) as session:
        audit = session.execute(select(AuditEntry.comment_id, AuditEntry.actor).where(AuditEntry.actor.in_(["mia", "max"]))).all()
        assert sorted(audit) == sorted([(i, "mia") for i in won["mia"]] + [(i, "max") for i in won["max"]])  # one entry per comment, the winner's
        statuses = dict(session.execute(select(Comment.id, Comment.status).where(Comment.id.in_(ids))).all())
        assert all(statuses[i] == ("rejected" if i in won["mia"] else "published") for i in ids)


def test_the_desk_filter_action_decides_every_match_and_queues_their_webhooks(desk):
    api = desk.api
    engine = api.app.extensions["moderation.engine"]
    with Session(engine) as session:
        from moderation import webhooks
        webhooks.add_endpoint(session, site="site-test", url="https://hooks.example/moderation", events=["comment.rejected"])
    ids = [api.post_comment(f"Flood message {i}", author={"ip": "203.0.113.77"}).get_json()["id"] for i in range(30)]
    other = api.post_comment("A comment from someone else", author={"ip": "198.51.100.1"}).get_json()["id"]
    response = desk.post("/moderate/decide", {"scope": "filter", "ip": "203.0.113.77", "verdict": "spam"}, json=True)
    assert response.status_code == 200 and sorted(response.get_json()["decided"]) == sorted(ids)
    with Session(engine) as session:
        statuses = dict(session.execute(select(Comment.id, Comment.status)).all())
        assert all(statuses[i] == "rejected" for i in ids) and statuses[other] == "pending"
        assert _audit_counts(session) == {i: 1 for i in ids}
        queued = session.scalars(select(OutboxEvent.comment_id).where(OutboxEvent.comment_id.in_(ids))).all()
        assert sorted(queued) == sorted(ids)
