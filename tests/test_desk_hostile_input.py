"""Hostile query strings and forms on the review desk answer a normal page, never a 500, on SQLite and
on PostgreSQL (which refuses a NUL byte that SQLite would store).

The desk is HTML for people, so it keeps its conventions for bad input: a page link whose cursor it
cannot follow shows the first page with a notice; a filter it cannot use is ignored with a message
(on a page to read) or refused (for a bulk decision, which must never widen to more comments); an
author who cannot be named is a 404 page. Each case below crashed the desk (500) or answered a
silently wrong page before it was checked: cursors nested too deeply, holding NaN or a time past
year 9999 in UTC, control characters in filters, names and notes, and digits such as "²" that pass
str.isdigit() but not int().
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy.orm import Session

from conftest import CRAFTED_CURSORS, Desk
from moderation import store

OUT_OF_DATE = "That page link is out of date; showing the first page."


def _post(desk: Desk, text: str = "A perfectly ordinary comment about the news.", *, email="reader@example.org", ip="192.0.2.7", **fields) -> int:
    response = desk.api.post_comment(text, author={"name": "Reader", "email": email, "ip": ip}, **fields)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _status(desk: Desk, comment_id: int) -> str:
    with Session(desk.app.extensions["moderation.engine"]) as session:
        return store.get_comment(session, comment_id).status


def _ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="card[^"]*" id="c-(\d+)"', html)]


def _page(desk: Desk, path: str, status: int = 200) -> str:
    response = desk.client.get(path)
    assert response.status_code == status, (path, response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _tab(tab: str) -> str:
    return "/moderate/queue" if tab == "pending" else f"/moderate/queue/{tab}"


@pytest.mark.parametrize("sort,cursor", CRAFTED_CURSORS, ids=[f"{i}-{s}" for i, (s, _) in enumerate(CRAFTED_CURSORS)])
def test_a_crafted_cursor_shows_the_first_page_with_a_notice(desk, sort, cursor):
    ids = [_post(desk, f"Comment number {n} about the harbour.", email=f"r{n}@example.org") for n in range(2)]
    for tab in ("pending", "all"):
        html = _page(desk, f"{_tab(tab)}?sort={sort}&cursor={quote(cursor)}")
        assert OUT_OF_DATE in html
        assert sorted(_ids_on(html)) == ids, tab


def test_issued_and_hand_made_valid_cursors_still_page_without_a_notice(make_api):
    desk = Desk(make_api(DESK_PAGE_SIZE=1))
    desk.add_user("mia")
    desk.login("mia")
    ids = [_post(desk, f"Comment number {n} about the harbour.", email=f"r{n}@example.org") for n in range(3)]
    for sort in ("risk", "age"):
        seen, path = [], f"/moderate/queue?sort={sort}"
        while path:
            html = _page(desk, path)
            assert OUT_OF_DATE not in html
            seen += _ids_on(html)
            found = re.search(r'<a rel="next" href="([^"]+)"', html)
            path = found.group(1).replace("&amp;", "&") if found else None
        assert sorted(seen) == ids, sort
    # Any time within UTC's range, in any offset, and any finite risk (an integer too big for the database's
    # integers, too: it is compared as a float) are cursors the desk can follow.
    for sort, key in (("age", "2000-01-01T00:00:00+14:00"), ("age", "9999-12-31T23:59:59+00:00"), ("risk", 1e300), ("risk", -5), ("risk", 2**63)):
        assert OUT_OF_DATE not in _page(desk, f"/moderate/queue?sort={sort}&cursor={store.encode_cursor([key, 1])}"), (sort, key)
    assert _ids_on(_page(desk, f"/moderate/queue?sort=age&cursor={store.encode_cursor(['0001-01-01T00:00:00+00:00', 0])}")) == ids[:1]


# --- the queue's filters ----------------------------------------------------------------------

BAD_FILTERS = [
    ("article", "a\x00b"),
    ("section", "\x00"),
    ("author", "reader@example.org\x00"),
    ("ip", "fe80::1%\x00"),  # ipaddress keeps a scope id, NUL and all
    ("section", "ne\x85ws"),  # a C1 control (at the end, strip() would remove it: NEL is whitespace)
    ("article", "x" * 201),  # longer than the column: it could never match
    ("author", "x" * 321),
    ("ip", "not an address"),
]


@pytest.mark.parametrize("name,value", BAD_FILTERS, ids=[f"{n}-{v[:12]!r}" for n, v in BAD_FILTERS])
def test_a_filter_it_cannot_use_is_ignored_with_a_message(desk, name, value):
    ids = [_post(desk, f"Comment number {n} about the harbour.", email=f"r{n}@example.org") for n in range(2)]
    for tab in ("pending", "rejected", "all"):
        html = _page(desk, f"{_tab(tab)}?{urlencode({name: value})}")
        assert "the filter ignores it" in html, tab
        if tab != "rejected":
            assert sorted(_ids_on(html)) == ids, tab


@pytest.mark.parametrize("name,value", BAD_FILTERS, ids=[f"{n}-{v[:12]!r}" for n, v in BAD_FILTERS])
def test_a_bulk_decision_on_a_filter_it_cannot_use_decides_nothing(desk, name, value):
    ids = [_post(desk, f"Comment number {n} about the harbour.", email=f"r{n}@example.org") for n in range(2)]
    response = desk.post("/moderate/decide", {"scope": "filter", name: value, "verdict": "spam"}, json=True)
    assert response.status_code == 422 and response.json["decided"] == [] and response.json["problems"]
    response = desk.post("/moderate/decide", {"scope": "filter", name: value, "verdict": "spam"}, follow_redirects=True)
    assert response.status_code == 200 and "nothing was decided" in response.get_data(as_text=True)
    assert [_status(desk, i) for i in ids] == ["pending", "pending"]


def test_ordinary_filters_still_filter(desk):
    article, section = "ä\u200d1", "Ünïcode"  # a zero-width joiner is text, not a control character
    found = _post(desk, article={"id": article, "section": section})
    _post(desk, "Another comment elsewhere.", email="else@example.org", ip="198.51.100.2")
    for query in (f"article={quote(article)}", f"section={quote(section)}", "ip=192.0.2.7", "author=READER@example.org"):
        html = _page(desk, f"/moderate/queue?{query}")
        assert "the filter ignores it" not in html and _ids_on(html) == [found], query


# --- the audit log, the author page --------------------------------------------------------


@pytest.mark.parametrize("query,message", [
    ("before_id=%C2%B2", "page link"),  # "²".isdigit() is True, int("²") raises
    ("before_id=%D9%A3", "page link"),  # an Arabic-Indic 3: int() reads it, but no page link ever holds one
    ("before_id=-1", "page link"),
    ("before_id=" + "9" * 30, "page link"),
    ("actor=%00", "Who"),
    ("actor=mia%1B", "Who"),
    ("actor=" + "x" * 101, "Who"),
    ("since=yesterday", "From"),
    ("until=2024-13-01", "To"),
])
def test_the_audit_log_ignores_what_it_cannot_use_with_a_message(desk, query, message):
    comment_id = _post(desk)
    html = _page(desk, f"/moderate/audit?{query}")
    assert re.search(r'<p class="message error">[^<]*' + message + r'[^<]*ignores it', html), html[:3000]
    assert f'<a href="/moderate/comments/{comment_id}">#{comment_id}</a>' in html


def test_the_audit_log_still_pages_and_filters(desk):
    comment_id = _post(desk)
    desk.decide(comment_id, "approve")
    html = _page(desk, "/moderate/audit?actor=mia&since=2000-01-01&until=9999-12-31")
    assert "ignores it" not in html and f"#{comment_id}</a>" in html
    assert f"#{comment_id}</a>" not in _page(desk, "/moderate/audit?before_id=1")


@pytest.mark.parametrize("query", ["email=%00", "email=reader@example.org%00", "email=a%C2%85b", "email=" + "x" * 321,
                                   "ip=fe80::1%25%00", "ip=not-an-address"])
def test_an_author_who_cannot_be_named_is_a_404_page(desk, query):
    _post(desk)
    html = _page(desk, f"/moderate/author?{query}", 404)
    assert "Not found" in html


# --- forms: decisions, bans, sign-in and users ---------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "٣", str(2**63), "9" * 30, "-1", "1\x00"])
def test_a_selection_of_ids_that_are_not_ids_decides_nothing(desk, raw):
    comment_id = _post(desk)
    response = desk.post("/moderate/decide", {"ids": [raw], "verdict": "approve"}, json=True)
    assert response.status_code == 422 and response.json["decided"] == []
    assert _status(desk, comment_id) == "pending"


@pytest.mark.parametrize("raw", ["²", "٣", str(2**63), "9" * 30, "-1", ""])
def test_a_ban_on_an_id_that_is_not_an_id_is_a_404_page(desk, raw):
    comment_id = _post(desk)
    response = desk.post("/moderate/ban", {"id": raw})
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)
    assert _status(desk, comment_id) == "pending"


@pytest.mark.parametrize("path,extra", [("/moderate/decide", {"verdict": "approve"}), ("/moderate/ban", {})])
def test_a_note_with_control_characters_is_refused_and_decides_nothing(desk, path, extra):
    comment_id = _post(desk)
    fields = {"ids": str(comment_id)} if path.endswith("decide") else {"id": str(comment_id)}
    response = desk.post(path, {**fields, **extra, "note": "odd \x00 note"}, json=True)
    assert response.status_code == 422 and response.json["decided"] == [] and "note" in response.json["problems"][0]
    response = desk.post(path, {**fields, **extra, "note": "bell \x07"}, follow_redirects=True)
    assert response.status_code == 200 and "control characters" in response.get_data(as_text=True)
    assert _status(desk, comment_id) == "pending"
    # A note with line breaks is an ordinary note.
    assert desk.post(path, {**fields, **extra, "note": "line one\r\nline two\ttabbed"}, json=True).status_code == 200


@pytest.mark.parametrize("kind,value", [("email", "\x00"), ("email", "a\x85@example.org"), ("ip", "fe80::1%\x00"), ("ip", "nonsense"),
                                        ("email", "x" * 400)])
def test_lifting_a_ban_on_a_value_that_cannot_be_banned_says_so(desk, kind, value):
    response = desk.post("/moderate/bans/lift", {"kind": kind, "value": value}, follow_redirects=True)
    assert response.status_code == 200 and "There was no ban on" in response.get_data(as_text=True)


@pytest.mark.parametrize("name", ["\x00", "mia\x00", "mi\x85a", "x" * 101])
def test_signing_in_with_a_name_that_cannot_exist_is_the_usual_refusal(api, name):
    desk = Desk(api)
    desk.add_user("mia")
    response = desk.client.post("/moderate/login", data={"name": name, "password": "whatever it is", "csrf_token": desk.csrf()})
    assert response.status_code == 401 and "Wrong name or password." in response.get_data(as_text=True)
    assert desk.login("mia").status_code == 302


def test_an_admin_cannot_add_or_change_a_user_whose_name_has_control_characters(desk):
    admin = Desk(desk.api)
    admin.login("ada")
    response = admin.post("/moderate/users", {"name": "eve\x00", "role": "moderator", "password": "long enough password"}, follow_redirects=True)
    assert response.status_code == 200 and "User not added" in response.get_data(as_text=True)
    response = admin.post("/moderate/users", {"name": "eve\x1b[31m", "role": "moderator", "password": "long enough password"}, follow_redirects=True)
    assert response.status_code == 200 and "User not added" in response.get_data(as_text=True)
    for action in ("disable", "enable", "unlock"):
        response = admin.post(f"/moderate/users/mia%00/{action}", follow_redirects=True)
        assert response.status_code == 200 and "Nothing changed" in response.get_data(as_text=True), action
    assert desk.page("/moderate/queue")  # mia is still signed in


@pytest.mark.parametrize("target", ["/moderate/queue\r\nX-Injected: 1", "/moderate/queue\x00", "/moderate/queue\x85"])
def test_a_next_page_with_control_characters_goes_to_the_queue(desk, target):
    response = desk.client.get("/moderate/login", query_string={"next": target})  # signed in: straight on
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/queue"
    response = desk.post("/moderate/bans/lift", {"kind": "ip", "value": "192.0.2.1", "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/moderate/queue"
    assert "X-Injected" not in response.headers
