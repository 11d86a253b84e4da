"""Bans a newsroom can see and account for, on SQLite and PostgreSQL: the desk's page of bans in force,
lifting from it, and the append-only history of every ban and lift (which the database refuses to
change, and which never keeps a reader's address), from migration 0007 on.
"""

from __future__ import annotations

import html as markup
import re
import uuid

import pytest
from alembic import command
from sqlalchemy import Text, cast, func, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from conftest import POSTGRES_URL, Desk, _postgres_reachable, assert_append_only
from moderation import bans, privacy
from moderation.db import alembic_config, make_engine, upgrade
from moderation.desk import pages
from moderation.schema import Base

OUT_OF_DATE = "That page link is out of date; showing the newest."


def _post(desk: Desk, words: str = "You are all idiots, every one of you.", *, email: str | None = "troll@example.org", ip: str | None = None) -> int:
    author = {"name": "Reader", **({"email": email} if email else {}), **({"ip": ip} if ip else {})}
    response = desk.api.post_comment(words, author=author)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _ban(desk: Desk, comment_id: int, note: str = "") -> None:
    response = desk.post("/moderate/ban", {"id": str(comment_id), "note": note}, json=True)
    assert response.status_code == 200, response.json


def _session(desk: Desk) -> Session:
    return Session(desk.app.extensions["moderation.engine"])


def _rows(html: str) -> list[list[str]]:
    """Each body row of the page's tables, as the text of its cells."""
    body = "".join(re.findall(r"<tbody>(.*?)</tbody>", html, re.S))
    return [[" ".join(markup.unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def _lift_forms(html: str) -> list[dict[str, str]]:
    """The hidden fields of each lift form on the page."""
    forms = re.findall(r'<form method="post" action="/moderate/bans/lift" class="lift">(.*?)</form>', html, re.S)
    return [{name: markup.unescape(value) for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form)} for form in forms]


def _next_page(html: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]+)"', html)
    return markup.unescape(found.group(1)) if found else None


# --- the page of bans in force ----------------------------------------------------------------------


def test_the_bans_page_lists_each_ban_with_who_made_it_when_and_why(desk):
    first = _post(desk, email="troll@example.org", ip="203.0.113.5")
    second = _post(desk, "Buy cheap watches at bit.ly/w", email="spammer@example.org")
    _ban(desk, first, note="threats in three threads")
    other = Desk(desk.api)
    other.login("max")
    _ban(other, second)
    html = desk.page("/moderate/bans")
    rows = _rows(html)
    assert [row[:3] + row[4:5] for row in rows] == [
        ["email", "spammer@example.org", "max", f"comment #{second}"],
        ["ip", "203.0.113.5", "mia", f"comment #{first}: threats in three threads"],
        ["email", "troll@example.org", "mia", f"comment #{first}: threats in three threads"],
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row[3]) for row in rows)
    assert '<a href="/moderate/author?email=troll@example.org">troll@example.org</a>' in html
    assert '<a href="/moderate/author?ip=203.0.113.5">203.0.113.5</a>' in html
    assert [form["value"] for form in _lift_forms(html)] == ["spammer@example.org", "203.0.113.5", "troll@example.org"]
    assert all(form["csrf_token"] for form in _lift_forms(html))
    assert 'href="/moderate/bans"' in desk.page("/moderate/queue")  # in the desk's navigation


def test_with_no_bans_the_page_says_so(desk):
    html = desk.page("/moderate/bans")
    assert "No bans are in force" in html and "<table" not in html
    assert "No author has been banned yet." in desk.page("/moderate/bans/history")


def test_lifting_from_the_bans_page_lifts_the_ban_and_records_who_and_why(desk):
    comment_id = _post(desk, email="troll@example.org")
    _ban(desk, comment_id)
    form = _lift_forms(desk.page("/moderate/bans"))[0]
    without_token = {name: value for name, value in form.items() if name != "csrf_token"}
    response = desk.client.post("/moderate/bans/lift", data=without_token)  # as another site's page would
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    response = desk.post("/moderate/bans/lift", {**form, "reason": "apologised by phone to r.one@example.org"}, follow_redirects=True)
    assert response.status_code == 200 and response.request.path == "/moderate/bans"
    page = response.get_data(as_text=True)
    assert "Ban on email troll@example.org lifted." in page and "No bans are in force" in page
    with _session(desk) as session:
        assert bans.bans_for(session, "troll@example.org", None) == []
        lifted = bans.history(session, limit=10)[0].row
    assert (lifted.action, lifted.actor, lifted.kind, lifted.comment_id) == ("lift", "mia", "email", comment_id)
    assert lifted.reason == "apologised by phone to r***@example.org"  # append-only: no reader's address goes in
    later = desk.api.post_comment("A harmless remark.", author={"email": "troll@example.org"}).json
    assert not any("banned" in reason for reason in later["reasons"])


def test_thousands_of_bans_are_paged_newest_first(desk, monkeypatch):
    monkeypatch.setattr(pages, "BANS_PAGE", 3)
    with _session(desk) as session:
        for n in range(8):
            bans.ban(session, email=f"r{n}@example.org", ip=None, by="mia", reason="wave")
    seen, path = [], "/moderate/bans"
    while path:
        html = desk.page(path)
        assert len(_rows(html)) <= 3 and "In force <span class=\"count\">8</span>" in html
        seen += [row[1] for row in _rows(html)]
        path = _next_page(html)
    assert seen == [f"r{n}@example.org" for n in reversed(range(8))]
    seen, path = [], "/moderate/bans/history"
    while path:
        html = desk.page(path)
        seen += [row[4] for row in _rows(html)]
        path = _next_page(html)
    assert seen == [f"r{n}@example.org" for n in reversed(range(8))]


# --- the history --------------------------------------------------------------------------------


def test_banning_lifting_and_banning_again_all_appear_in_the_history_in_order(desk):
    first = _post(desk, "You are all idiots.", email="troll@example.org")
    _ban(desk, first, note="insults")
    _ban(desk, first)  # banning twice changes nothing, and records nothing
    other = Desk(desk.api)
    other.login("max")
    assert other.post("/moderate/bans/lift", {"kind": "email", "value": "Troll@Example.org", "reason": "appeal accepted"}).status_code == 302
    again = _post(desk, "Still idiots, all of you.", email="troll@example.org")
    _ban(desk, again, note="back at it")
    bystander = _post(desk, "Nice piece on the harbour.", email="fan@example.org")
    _ban(desk, bystander)

    rows = _rows(desk.page("/moderate/bans/history"))
    assert [row[1:] for row in rows] == [  # newest first; "When" is row[0]
        ["mia", "banned in force", "email", "fan@example.org", f"comment #{bystander}", f"#{bystander}"],
        ["mia", "banned in force", "email", "troll@example.org", f"comment #{again}: back at it", f"#{again}"],
        ["max", "lifted", "email", "troll@example.org", "appeal accepted", f"#{first}"],
        ["mia", "banned", "email", "troll@example.org", f"comment #{first}: insults", f"#{first}"],
    ]
    when = [row[0] for row in rows]
    assert when == sorted(when, reverse=True) and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", w) for w in when)
    author = _rows(desk.page("/moderate/author?email=troll@example.org"))
    assert [row[1:3] for row in author if len(row) == 7] == [["mia", "banned in force"], ["max", "lifted"], ["mia", "banned"]]
    with _session(desk) as session:
        events = [e.row for e in bans.history(session, limit=10)]
        ids = [e.ban_id for e in events]
    assert [(e.action, e.actor) for e in reversed(events)] == [("ban", "mia"), ("lift", "max"), ("ban", "mia"), ("ban", "mia")]
    assert ids[2] == ids[3] and len({ids[0], ids[1], ids[2]}) == 3  # a ban made again is a new ban; no id is used twice


def test_the_history_refuses_update_and_delete_and_truncate_as_the_audit_log_does(desk):
    _ban(desk, _post(desk))
    engine = desk.app.extensions["moderation.engine"]
    assert_append_only(engine, "ban_events", ["UPDATE ban_events SET actor = 'nobody'", "UPDATE ban_events SET reason = NULL", "DELETE FROM ban_events"])
    with _session(desk) as session:
        assert [(e.row.action, e.row.actor) for e in bans.history(session, limit=10)] == [("ban", "mia")]


def _traces(desk: Desk, needle: str) -> list[str]:
    """Every column of every table holding ``needle`` in any case, as "table.column"."""
    found = []
    with desk.app.extensions["moderation.engine"].connect() as connection:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                if connection.scalar(select(func.count()).select_from(table).where(func.lower(cast(column, Text)).like(f"%{needle.lower()}%"))):
                    found.append(f"{table.name}.{column.name}")
    return found


def test_the_history_keeps_no_readers_address_so_erasure_still_leaves_no_trace(desk):
    address = "Reader.One@Example.org"
    comment_id = _post(desk, email=address, ip="198.51.100.7")
    _ban(desk, comment_id, note=f"same person as {address.lower()}")
    desk.post("/moderate/bans/lift", {"kind": "ip", "value": "198.51.100.7"})
    assert "reader.one@example.org" in desk.page("/moderate/bans/history")  # shown in full while the comment holds it
    with _session(desk) as session:
        privacy.erase(session, address, actor="dpo")
    assert _traces(desk, address) == [] and _traces(desk, "198.51.100.7") == []
    rows = _rows(desk.page("/moderate/bans/history"))
    assert [row[1:5] for row in rows] == [  # the erasure lifted the email ban, and says who did
        ["dpo", "lifted", "email", "r***@example.org"], ["mia", "lifted", "ip", "198.51.100.0/24"],
        ["mia", "banned", "ip", "198.51.100.0/24"], ["mia", "banned", "email", "r***@example.org"]]


def test_retention_lifting_old_ip_bans_is_recorded_in_the_history(desk):
    comment_id = _post(desk, email="old.troll@example.org", ip="203.0.113.9")
    _ban(desk, comment_id)
    with _session(desk) as session:
        session.execute(text("UPDATE bans SET created_at = :long_ago WHERE kind = 'ip'"), {"long_ago": "2020-01-01 00:00:00+00:00"})
        session.commit()
        purged = privacy.purge(session, {"RETAIN_IP_DAYS": 30, "PURGE_SPAM_DAYS": 0})
        assert purged.ip_bans == 1
        events = [(e.row.action, e.row.kind, e.row.actor) for e in bans.history(session, limit=10)]
    assert events[0] == ("lift", "ip", "retention") and sorted(events[1:]) == [("ban", "email", "mia"), ("ban", "ip", "mia")]
    in_force = desk.page("/moderate/bans")
    assert "old.troll@example.org" in in_force and "203.0.113.9" not in in_force


# --- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/moderate/bans", "/moderate/bans/history"])
@pytest.mark.parametrize("before", ["²", "٣", "abc", "-1", "0", str(2**63), "9" * 400, "1\x00", "\x85", "1e3", " 1"])
def test_a_page_link_that_is_no_page_link_shows_the_newest_with_a_notice(desk, path, before):
    _ban(desk, _post(desk))
    response = desk.client.get(path, query_string={"before": before})
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert OUT_OF_DATE in page and "troll@example.org" in page


@pytest.mark.parametrize("reason,problem", [("odd \x00 reason", "control characters"), ("bell \x07", "control characters"),
                                            ("c1 \x85 inside", "control characters"), ("x" * 501, "longer than 500 characters")])
def test_a_lift_whose_reason_cannot_be_kept_is_refused_with_a_message_and_the_ban_stays(desk, reason, problem):
    _ban(desk, _post(desk))
    response = desk.post("/moderate/bans/lift", {"kind": "email", "value": "troll@example.org", "reason": reason, "next": "/moderate/bans"},
                         follow_redirects=True)
    assert response.status_code == 200 and problem in response.get_data(as_text=True)
    with _session(desk) as session:
        assert len(bans.bans_for(session, "troll@example.org", None)) == 1
        assert [e.row.action for e in bans.history(session, limit=10)] == ["ban"]


@pytest.mark.parametrize("kind,value", [("email", "x" * 10_000), ("email", "troll@example.org\x00"), ("ip\x00", "203.0.113.5"), ("ip", "1" * 5000)])
def test_lifting_a_value_that_was_never_banned_says_so_and_records_nothing(desk, kind, value):
    _ban(desk, _post(desk, ip="203.0.113.5"))
    response = desk.post("/moderate/bans/lift", {"kind": kind, "value": value, "next": "/moderate/bans"}, follow_redirects=True)
    assert response.status_code == 200 and "There was no ban on" in response.get_data(as_text=True)
    with _session(desk) as session:
        assert [e.row.action for e in bans.history(session, limit=10)] == ["ban", "ban"]


# --- migration 0007 -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0006(request, tmp_path):
    """An engine on an empty database of each kind, migrated to 0006 only."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        command.upgrade(alembic_config(engine), "0006")
        yield engine
        engine.dispose()
        return
    if not _postgres_reachable():
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema, admin = f"test_{uuid.uuid4().hex[:12]}", make_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(POSTGRES_URL, schema=schema)
    command.upgrade(alembic_config(engine), "0006")
    yield engine
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_migration_0007_keeps_every_ban_and_starts_the_history_with_them(at_0006):
    engine = at_0006
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO comments (site, text, text_hash, author_email, author_ip, status, decision, discarded, risk, scores, reasons, terms, "
                                "created_at, updated_at) VALUES ('s', 'idiots', 'h', 'troll@example.org', '203.0.113.5', 'rejected', 'review', false, 0.9, "
                                "'{}', '[]', '[]', '2026-01-01 00:00:00+00', '2026-01-01 00:00:00+00')"))
        for kind, value, by, reason in (("email", "troll@example.org", "mia", "comment #1"), ("ip", "203.0.113.5", "mia", "comment #1"),
                                        ("email", "x@example.org", "max", "asked by x@example.org"), ("ip", "2001:db8::1", "max", "comment #99")):
            connection.execute(text("INSERT INTO bans (kind, value, created_by, reason, created_at) VALUES (:kind, :value, :by, :reason, '2026-01-02 00:00:00+00')"),
                               {"kind": kind, "value": value, "by": by, "reason": reason})
        before = connection.execute(text("SELECT id, kind, value, created_by, reason FROM bans ORDER BY id")).all()
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id, kind, value, created_by, reason FROM bans ORDER BY id")).all() == before
        events = connection.execute(text("SELECT ban_id, action, kind, masked, actor, reason, comment_id FROM ban_events ORDER BY id")).all()
    assert [tuple(e) for e in events] == [
        (before[0].id, "ban", "email", "t***@example.org", "mia", "comment #1", 1),
        (before[1].id, "ban", "ip", "203.0.113.0/24", "mia", "comment #1", 1),
        (before[2].id, "ban", "email", "x***@example.org", "max", "asked by x***@example.org", None),
        (before[3].id, "ban", "ip", "2001:db8::/48", "max", "comment #99", None),  # no comment #99: no link to it
    ]
    with Session(engine) as session:  # the migrated bans still hold, lift and record like any other
        assert len(bans.bans_for(session, "TROLL@example.org", "203.0.113.5")) == 2
        assert bans.lift(session, "ip", "2001:db8::1", by="mia", reason="shared address")
        bans.ban(session, email=None, ip="192.0.2.9", by="mia")
        newest = bans.bans_for(session, None, "192.0.2.9")[0].id
        assert newest > before[3].id  # the highest id, lifted, is never handed out again (SQLite: AUTOINCREMENT)
        assert [(e.row.action, e.row.ban_id, e.value) for e in bans.history(session, limit=2)] == [
            ("ban", newest, "192.0.2.9"), ("lift", before[3].id, None)]
        assert [e.row.action for e in bans.events_for(session, "troll@example.org", None, 10)] == ["ban", "ban"]
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM ban_events"))


def test_migrations_0007_and_0008_go_down_to_0006_and_up_again_keeping_the_bans(at_0006):
    engine = at_0006
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO bans (kind, value, created_by, reason, created_at) VALUES ('email', 'troll@example.org', 'mia', 'r', "
                                "'2026-01-02 00:00:00+00')"))
    upgrade(engine)
    config = alembic_config(engine)
    command.downgrade(config, "0006")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT kind, value FROM bans")).all() == [("email", "troll@example.org")]
        assert "ban_events" not in inspect(connection).get_table_names()
        assert "ix_webhook_outbox_order" not in {i["name"] for i in inspect(connection).get_indexes("webhook_outbox")}
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT action, masked FROM ban_events")).all() == [("ban", "t***@example.org")]
        assert "ix_webhook_outbox_order" in {i["name"] for i in inspect(connection).get_indexes("webhook_outbox")}
