"""The review desk through the Flask client, on SQLite and PostgreSQL: every page, permission and form."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy.orm import Session

from conftest import PASSWORD, Desk
from moderation import accounts, store

PAGES = ["/moderate/", "/moderate/queue", "/moderate/queue/rejected", "/moderate/queue/published", "/moderate/queue/all",
         "/moderate/audit", "/moderate/dashboard", "/moderate/dashboard/decisions.png", "/moderate/dashboard/overturns.png",
         "/moderate/author?email=reader@example.org"]
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
    '<a href="javascript:window.__pwned=1">click</a>',
    "</textarea><script>alert(1)</script>",
    "\" autofocus onfocus=\"window.__pwned=1",
]


def _post(desk: Desk, text: str = "A perfectly ordinary comment about the news.", *, email="reader@example.org", ip="192.0.2.7", **fields) -> int:
    author = {"name": fields.pop("name", "Reader"), "email": email, "ip": ip}
    response = desk.api.post_comment(text, author=author, **fields)
    assert response.status_code == 201, response.json
    return response.json["id"]


def _comment(desk: Desk, comment_id: int):
    with Session(desk.app.extensions["moderation.engine"]) as session:
        return store.get_comment(session, comment_id)


def _ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="card[^"]*" id="c-(\d+)"', html)]


# --- signing in and out ---------------------------------------------------------------------


def test_every_page_sends_a_visitor_who_is_not_signed_in_to_the_sign_in_form(api):
    client = api.app.test_client()
    for path in PAGES + ["/moderate/comments/1", "/moderate/users"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/moderate/login"), path


def test_sign_in_with_the_right_password_opens_the_queue_and_the_wrong_one_does_not(api):
    desk = Desk(api)
    desk.add_user("mia")
    wrong = desk.login("mia", "not the password")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.get_data(as_text=True)
    unknown = desk.login("nobody", PASSWORD)
    assert unknown.status_code == 401 and "Wrong name or password" in unknown.get_data(as_text=True)
    assert desk.client.get("/moderate/queue").status_code == 302
    right = desk.login("mia")
    assert right.status_code == 302 and right.headers["Location"] == "/moderate/queue"
    assert desk.client.get("/moderate/queue").status_code == 200


def test_the_session_cookie_is_secure_http_only_and_same_site(api):
    desk = Desk(api)
    desk.add_user("mia")
    cookie = desk.login("mia").headers["Set-Cookie"]
    assert cookie.startswith("moderation_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in cookie


def test_signing_out_ends_the_session_on_the_server_so_a_copied_cookie_is_useless(desk):
    stolen = desk.client.get_cookie("moderation_session").value
    assert desk.post("/moderate/logout").status_code == 302
    assert desk.client.get("/moderate/queue").status_code == 302
    thief = desk.app.test_client()
    thief.set_cookie("moderation_session", stolen)
    assert thief.get("/moderate/queue").status_code == 302


def test_after_repeated_failures_the_account_is_locked_even_for_the_right_password_until_unlocked(make_api):
    desk = Desk(make_api(LOGIN_MAX_FAILURES=3))
    desk.add_user("mia")
    for _ in range(3):
        assert desk.login("mia", "guess").status_code == 401
    locked = desk.login("mia")
    assert locked.status_code == 401 and "locked" in locked.get_data(as_text=True)
    with Session(desk.app.extensions["moderation.engine"]) as session:
        accounts.unlock_user(session, "mia")
    assert desk.login("mia").status_code == 302


def test_a_lock_ends_by_itself_after_the_lockout_time(make_api):
    desk = Desk(make_api(LOGIN_MAX_FAILURES=2, LOGIN_LOCKOUT_SECONDS=0))
    desk.add_user("mia")
    desk.login("mia", "guess")
    desk.login("mia", "guess")
    assert desk.login("mia").status_code == 302


def test_a_success_resets_the_failure_count(make_api):
    desk = Desk(make_api(LOGIN_MAX_FAILURES=3))
    desk.add_user("mia")
    desk.login("mia", "guess")
    desk.login("mia", "guess")
    assert desk.login("mia").status_code == 302
    desk.post("/moderate/logout")
    desk.login("mia", "guess")
    desk.login("mia", "guess")
    assert desk.login("mia").status_code == 302


def test_sign_in_attempts_are_rate_limited_per_address(make_api):
    desk = Desk(make_api(LOGIN_RATE_LIMIT="3 per day"))
    for _ in range(3):
        assert desk.login("nobody", "guess").status_code == 401
    assert desk.login("nobody", "guess").status_code == 429


def test_a_disabled_account_loses_its_open_session_and_cannot_sign_in(desk):
    with Session(desk.app.extensions["moderation.engine"]) as session:
        accounts.disable_user(session, "mia")
    assert desk.client.get("/moderate/queue").status_code == 302
    assert desk.login("mia").status_code == 401


def test_after_sign_in_the_browser_goes_back_to_the_page_it_asked_for_but_never_off_site(api):
    desk = Desk(api)
    desk.add_user("mia")
    token = desk.csrf()
    good = desk.client.post("/moderate/login", data={"name": "mia", "password": PASSWORD, "csrf_token": token, "next": "/moderate/audit?actor=x"})
    assert good.headers["Location"] == "/moderate/audit?actor=x"
    desk.post("/moderate/logout")
    for target in ("https://evil.example/", "//evil.example/moderate", "/api/v1/queue", "/\\evil.example"):
        token = desk.csrf()
        bad = desk.client.post("/moderate/login", data={"name": "mia", "password": PASSWORD, "csrf_token": token, "next": target})
        assert bad.headers["Location"] == "/moderate/queue", target
        desk.post("/moderate/logout")


# --- forms, headers and permissions ----------------------------------------------------------


def test_a_form_without_a_valid_csrf_token_is_refused_and_changes_nothing(desk):
    comment_id = _post(desk)
    for token in (None, "forged-token"):
        data = {"ids": str(comment_id), "verdict": "approve", **({"csrf_token": token} if token else {})}
        response = desk.client.post("/moderate/decide", data=data)
        assert response.status_code == 400
        assert "security token" in response.get_data(as_text=True)
    assert _comment(desk, comment_id).status == "pending"


def test_pages_carry_a_strict_content_security_policy_and_security_headers(desk):
    response = desk.client.get("/moderate/queue")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html and "onclick" not in html  # nothing inline for the CSP to block


def test_every_page_opens_for_a_moderator(desk):
    comment_id = _post(desk)
    for path in PAGES + [f"/moderate/comments/{comment_id}"]:
        response = desk.client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
    assert desk.client.get("/moderate/dashboard/decisions.png").data.startswith(b"\x89PNG")


def test_user_management_is_for_admins_only(desk):
    assert desk.client.get("/moderate/users").status_code == 403
    assert desk.post("/moderate/users", {"name": "eve", "role": "admin", "password": PASSWORD}).status_code == 403
    assert desk.post("/moderate/users/max/disable").status_code == 403
    with Session(desk.app.extensions["moderation.engine"]) as session:
        assert accounts.find_user(session, "eve") is None
    admin = Desk(desk.api)
    admin.login("ada")
    assert "max" in admin.page("/moderate/users")
    admin.post("/moderate/users", {"name": "eve", "role": "moderator", "password": PASSWORD})
    admin.post("/moderate/users/max/disable")
    with Session(desk.app.extensions["moderation.engine"]) as session:
        assert accounts.find_user(session, "eve").role == "moderator"
        assert accounts.find_user(session, "max").disabled_at is not None
    assert Desk(desk.api).login("eve").status_code == 302
    assert Desk(desk.api).login("max").status_code == 401


def test_an_admin_cannot_add_a_user_with_a_short_password_or_disable_themselves(desk):
    admin = Desk(desk.api)
    admin.login("ada")
    page = admin.post("/moderate/users", {"name": "eve", "role": "moderator", "password": "short"}, follow_redirects=True)
    assert "at least 10 characters" in page.get_data(as_text=True)
    page = admin.post("/moderate/users/ada/disable", follow_redirects=True)
    assert "cannot disable your own account" in page.get_data(as_text=True)


def test_the_desk_cookie_does_not_open_the_api_and_an_api_key_does_not_open_the_desk(desk):
    assert desk.client.get("/api/v1/queue").status_code == 401
    response = desk.api.client.get("/moderate/queue", headers=desk.api.headers("moderator"))
    assert response.status_code == 302


# --- what a moderator sees ---------------------------------------------------------------------


def test_hostile_comments_are_shown_as_text_everywhere(desk):
    ids = [_post(desk, payload, name=payload, email=f"x{n}@example.org",
                 article={"id": "a1", "title": payload, "section": "news"}) for n, payload in enumerate(HOSTILE)]
    pages = ["/moderate/queue", "/moderate/queue/all", f"/moderate/comments/{ids[0]}", "/moderate/author?email=x0@example.org"]
    for path in pages:
        html = desk.page(path)
        for payload in HOSTILE:
            assert payload not in html, (path, payload)
        assert "&lt;script&gt;" in html
        assert 'href="javascript:' not in html


def test_an_author_website_link_is_only_clickable_when_it_is_http(desk):
    from moderation.desk.render import web_link

    assert web_link("https://reader.example/blog") == "https://reader.example/blog"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>", "//evil.example", "vbscript:x", ""):
        assert web_link(bad) is None


def test_the_card_shows_author_article_scores_reasons_model_version_and_highlighted_words(desk):
    comment_id = _post(desk, "Buy cheap pills now at www.pills.example and win", name="Spammy Sam",
                       article={"id": "a42", "title": "Budget vote", "url": "https://news.example/a42", "section": "politics"})
    html = desk.page(f"/moderate/comments/{comment_id}")
    comment = _comment(desk, comment_id)
    for expected in ("Spammy Sam", "reader@example.org", "192.0.2.7", "Budget vote", 'href="https://news.example/a42"', "politics",
                     comment.model_version, "<meter", "spam score"):
        assert expected in html, expected
    assert re.search(r'<mark class="term term-spam"[^>]*>[^<]+</mark>', html)


def test_tabs_show_counts_and_the_queue_filters_by_label_article_section_author_and_ip(desk):
    a = _post(desk, "First comment on politics.", article={"id": "p1", "section": "politics"})
    b = _post(desk, "Second comment on sport.", email="other@example.org", ip="198.51.100.9", article={"id": "s1", "section": "sport"})
    c = _post(desk, "Third comment on sport.", email="third@example.org", ip="198.51.100.10", article={"id": "s1", "section": "sport"})
    desk.decide(c, "spam")
    html = desk.page("/moderate/queue")
    assert re.search(r'data-tab="pending">2<', html) and re.search(r'data-tab="rejected">1<', html) and re.search(r'data-tab="all">3<', html)
    assert set(_ids_on(html)) == {a, b}
    assert _ids_on(desk.page("/moderate/queue?section=sport")) == [b]
    assert _ids_on(desk.page("/moderate/queue?article=p1")) == [a]
    assert _ids_on(desk.page("/moderate/queue?author=other@example.org")) == [b]
    assert _ids_on(desk.page("/moderate/queue?ip=198.51.100.9")) == [b]
    assert set(_ids_on(desk.page("/moderate/queue?label=spam"))) == {a, b}  # held on spam by the test thresholds
    assert _ids_on(desk.page("/moderate/queue/rejected")) == [c]
    assert set(_ids_on(desk.page("/moderate/queue/all"))) == {a, b, c}
    assert re.search(r'data-tab="pending">1<', desk.page("/moderate/queue?section=sport"))


def test_pages_follow_each_other_without_repeating_or_skipping_while_comments_leave(make_api):
    desk = Desk(make_api(DESK_PAGE_SIZE=3))
    desk.add_user("mia")
    desk.login("mia")
    ids = [_post(desk, f"Comment number {n} about the council budget and roads.", email=f"r{n}@example.org") for n in range(8)]
    seen, path = [], "/moderate/queue?sort=age"
    while path:
        html = desk.page(path)
        page = _ids_on(html)
        seen += page
        if len(seen) == 3:
            desk.decide(seen[0], "approve")  # a comment leaves the queue between pages
        found = re.search(r'<a rel="next" href="([^"]+)"', html)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert seen == ids


def test_near_duplicates_are_grouped_and_a_group_is_decided_at_once(desk):
    wave = [_post(desk, text, email=f"bot{n}@example.org", ip=f"203.0.113.{n}") for n, text in enumerate([
        "Make $500 a day from home!!! Visit www.easy-cash.example now",
        "Make $500 a day from home! Visit www.easy-cash.example now!!",
        "MAKE $500 A DAY FROM HOME visit www.easy-cash.example NOW",
        "Make $5OO a day fr0m home! Visit www.easy-cash.example now",
    ])]
    other = _post(desk, "The council should publish the full budget before the vote.", email="citizen@example.org")
    html = desk.page("/moderate/queue")
    groups = re.findall(r'class="group" id="g-(\d+)" data-ids="([\d,]+)"', html)
    assert len(groups) == 1
    assert sorted(int(i) for i in groups[0][1].split(",")) == sorted(wave)
    response = desk.decide(wave, "spam", json=True)
    assert response.status_code == 200 and sorted(response.json["decided"]) == sorted(wave)
    assert all(_comment(desk, i).status == "rejected" for i in wave)
    assert _comment(desk, other).status == "pending"
    assert "Near-duplicates" not in desk.page("/moderate/queue")


# --- deciding -----------------------------------------------------------------------------------


def test_a_decision_changes_the_status_and_is_logged_under_the_moderator_s_name(desk):
    comment_id = _post(desk)
    response = desk.decide(comment_id, "abuse", note="personal attack")
    assert response.status_code == 302
    comment = _comment(desk, comment_id)
    assert comment.status == "rejected"
    with Session(desk.app.extensions["moderation.engine"]) as session:
        trail = store.history_of(session, comment_id)
    assert [(e.actor, e.action, e.reason, e.note) for e in trail] == [("model", "review", None, trail[0].note), ("mia", "reject", "abuse", "personal attack")]
    assert "1 comment rejected (abuse)." in desk.page("/moderate/queue")


def test_a_decision_someone_else_made_first_shows_a_clear_conflict_message(desk):
    comment_id = _post(desk)
    other = Desk(desk.api)
    other.login("max")
    assert other.decide(comment_id, "approve").status_code == 302
    page = desk.decide(comment_id, "spam", next="/moderate/queue", follow_redirects=True)
    assert page.status_code == 200
    assert f"Comment #{comment_id} was already published by max" in page.get_data(as_text=True)
    assert "your decision was not applied" in page.get_data(as_text=True)
    response = desk.decide(comment_id, "spam", json=True)
    assert response.status_code == 409 and "already published by max" in response.json["problems"][0]
    assert _comment(desk, comment_id).status == "published"


def test_a_published_comment_can_be_taken_down_and_a_rejected_one_restored(desk):
    comment_id = _post(desk)
    desk.decide(comment_id, "approve")
    desk.decide(comment_id, "spam", expected="published")
    assert _comment(desk, comment_id).status == "rejected"
    desk.decide(comment_id, "approve", expected="rejected")
    assert _comment(desk, comment_id).status == "published"


def test_bulk_decisions_apply_to_the_selection_and_report_each_conflict(desk):
    ids = [_post(desk, f"Comment {n} on the transport plan.", email=f"r{n}@example.org") for n in range(4)]
    desk.decide(ids[0], "approve")
    response = desk.decide(ids, "spam", json=True)
    assert response.status_code == 200
    assert sorted(response.json["decided"]) == ids[1:]
    assert len(response.json["problems"]) == 1 and f"#{ids[0]}" in response.json["problems"][0]


def test_a_bulk_action_on_a_filter_decides_every_pending_comment_it_matches_and_nothing_else(make_api):
    desk = Desk(make_api(DESK_PAGE_SIZE=2))  # more matches than one page shows
    desk.add_user("mia")
    desk.login("mia")
    flood = [_post(desk, f"Visit my site number {n}", email=f"f{n}@example.org", ip="203.0.113.66") for n in range(5)]
    bystander = _post(desk, "A reader from elsewhere.", email="else@example.org", ip="198.51.100.1")
    response = desk.post("/moderate/decide", {"scope": "filter", "ip": "203.0.113.66", "verdict": "spam"}, json=True)
    assert sorted(response.json["decided"]) == flood
    assert _comment(desk, bystander).status == "pending"


def test_reject_and_ban_holds_everything_the_author_sends_later_until_the_ban_is_lifted(make_api):
    api = make_api(THRESHOLDS={"spam": {"review_at": 2.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}})
    desk = Desk(api)
    desk.add_user("mia")
    desk.login("mia")
    first = _post(desk, "You are all idiots", email="Troll@Example.org", ip="203.0.113.5")
    assert _comment(desk, first).status == "published"  # these thresholds publish everything
    response = desk.post("/moderate/ban", {"id": str(first), "expected": "published"}, json=True)
    assert response.status_code == 200
    assert _comment(desk, first).status == "rejected"
    later = api.post_comment("A harmless remark.", author={"email": "troll@example.org"}).json
    assert later["status"] == "pending" and any("banned" in r for r in later["reasons"])
    by_ip = api.post_comment("Another harmless remark.", author={"ip": "203.0.113.5", "email": "new@example.org"}).json
    assert by_ip["status"] == "pending"
    assert "Banned" in desk.page("/moderate/author?email=troll@example.org")
    desk.post("/moderate/bans/lift", {"kind": "email", "value": "troll@example.org"})
    desk.post("/moderate/bans/lift", {"kind": "ip", "value": "203.0.113.5"})
    free = api.post_comment("A third harmless remark.", author={"email": "troll@example.org", "ip": "203.0.113.5"}).json
    assert not any("banned" in r for r in free["reasons"])


# --- reading: trail, author, audit, dashboard -------------------------------------------------------


def test_the_comment_page_shows_the_whole_decision_trail(desk):
    comment_id = _post(desk)
    desk.decide(comment_id, "approve")
    desk.decide(comment_id, "off_topic", expected="published", note="wrong article")
    html = desk.page(f"/moderate/comments/{comment_id}")
    rows = re.findall(r"<tr class=\"(model|human)\">\s*<td>[^<]+</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]*)</td>", html)
    assert rows == [("model", "model", "review", ""), ("human", "mia", "approve", ""), ("human", "mia", "reject", "off_topic")]
    assert "wrong article" in html and "published → rejected" in html
    assert desk.client.get("/moderate/comments/999999").status_code == 404


def test_the_author_page_counts_published_and_rejected_comments(desk):
    ids = [_post(desk, f"Comment {n} about the bridge repairs.") for n in range(3)]
    desk.decide(ids[0], "approve")
    desk.decide(ids[1], "spam")
    html = desk.page("/moderate/author?email=reader@example.org")
    assert re.search(r"<dt>Published</dt><dd>1</dd>", html) and re.search(r"<dt>Rejected</dt><dd>1</dd>", html)
    assert re.search(r"<dt>Pending</dt><dd>1</dd>", html)
    assert set(_ids_on(html)) == set(ids)


def test_the_audit_log_page_filters_by_moderator_action_and_day(desk):
    a, b = _post(desk, "One comment about trains."), _post(desk, "Another comment about buses.")
    desk.decide(a, "approve")
    other = Desk(desk.api)
    other.login("max")
    other.decide(b, "spam")

    def comments(query: str) -> list[int]:
        return [int(i) for i in re.findall(r'<td><a href="/moderate/comments/\d+">#(\d+)</a></td>', desk.page("/moderate/audit" + query))]

    assert comments("?actor=mia") == [a]
    assert comments("?actor=max&action=reject") == [b]
    assert comments("?action=approve") == [a]
    today = datetime.now(timezone.utc).date().isoformat()
    assert sorted(comments(f"?since={today}&until={today}")) == [a, a, b, b]
    assert comments("?until=2000-01-01") == []


def test_the_dashboard_counts_the_queue_automatic_share_and_overturns_by_label(make_api):
    api = make_api(THRESHOLDS={"spam": {"review_at": 0.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}})
    desk = Desk(api)
    desk.add_user("mia")
    desk.login("mia")
    ids = [_post(desk, f"Comment {n} on the harbour plan.", email=f"h{n}@example.org") for n in range(3)]
    desk.decide(ids[0], "approve")  # overturns the spam flag
    desk.decide(ids[1], "spam")  # agrees with it
    from moderation import stats

    with Session(desk.app.extensions["moderation.engine"]) as session:
        numbers = stats.dashboard(session, api.app.extensions["moderation.service"].rules.thresholds)
    assert numbers.pending == 1 and numbers.oldest_pending is not None
    spam = next(o for o in numbers.overturns if o.label == "spam")
    assert (spam.decided, spam.overturned) == (2, 1)
    assert numbers.auto_share == 0.0  # all three were held for people
    today = numbers.days[-1]
    assert (today.held, today.approved, today.rejected) == (3, 1, 1)
    html = desk.page("/moderate/dashboard")
    assert '<dd id="pending-count"><a href="/moderate/queue">1</a></dd>' in html
    assert "<td>spam</td><td>2</td><td>1</td><td>50 %</td>" in html
    assert desk.client.get("/moderate/dashboard/overturns.png").data.startswith(b"\x89PNG")


def test_two_hosts_with_the_same_instance_folder_share_the_session_secret(make_api):
    first = make_api()
    second = make_api()  # same INSTANCE_DIR (tmp_path) and database: another host
    desk = Desk(first)
    desk.add_user("mia")
    desk.login("mia")
    cookie = desk.client.get_cookie("moderation_session").value
    other = second.app.test_client()
    other.set_cookie("moderation_session", cookie)
    assert other.get("/moderate/queue").status_code == 200
    assert (first.app.config["SECRET_KEY"] == second.app.config["SECRET_KEY"]) and len(first.app.config["SECRET_KEY"]) >= 40


@pytest.mark.parametrize("verdict", ["bogus", ""])
def test_an_unknown_verdict_is_refused(desk, verdict):
    comment_id = _post(desk)
    assert desk.decide(comment_id, verdict).status_code == 400
    assert _comment(desk, comment_id).status == "pending"


def test_the_dashboard_raises_an_alert_when_people_overturn_too_many_flags(make_api):
    desk = Desk(make_api(DRIFT_MIN_DECISIONS=3, DRIFT_ALERT_OVERTURN=0.5))
    desk.add_user("mia")
    desk.login("mia")
    assert "ALERT" not in desk.page("/moderate/dashboard")
    ids = [_post(desk, f"Comment {n} about the new cycle lanes.", email=f"c{n}@example.org") for n in range(3)]
    for comment_id in ids:  # every comment was flagged as spam by the test thresholds; people approve them all
        desk.decide(comment_id, "approve")
    assert "ALERT spam: moderators overturned 3 of 3 flags" in desk.page("/moderate/dashboard")


def test_an_erasure_is_not_counted_as_a_moderator_decision_nor_named_as_the_decider(desk):
    from moderation import privacy, stats

    comment_id = _post(desk, "A reader who later asks to be forgotten.", email="forget.me@example.org")
    desk.decide(comment_id, "approve")
    with Session(desk.app.extensions["moderation.engine"]) as session:
        privacy.erase(session, "forget.me@example.org", actor="ada")
        numbers = stats.dashboard(session, desk.app.extensions["moderation.service"].rules.thresholds)
    assert numbers.by_moderator == {"mia": 1}
    page = desk.decide(comment_id, "spam", follow_redirects=True).get_data(as_text=True)
    assert f"Comment #{comment_id} was already published by mia" in page
    assert "erase" in desk.page("/moderate/audit?action=erase")


# --- the desk as moderators read it: thresholds, sorting, filters, caps ---------------------------------


def test_only_the_labels_that_flagged_a_comment_have_their_words_marked_and_named(make_api):
    # spam flags everything; toxic only from 0.95, which a warm "thank you" (toxic about 0.9 on the tiny model) does not reach
    desk = Desk(make_api(THRESHOLDS={"spam": {"review_at": 0.0, "reject_at": 2.0}, "toxic": {"review_at": 0.95, "reject_at": 0.99}}))
    desk.add_user("mia")
    desk.login("mia")
    harmless = _post(desk, "Great reporting, thank you")
    comment = _comment(desk, harmless)
    assert comment.scores["toxic"] < 0.95 and {t["label"] for t in comment.terms} & {"toxic", "insult", "offensive"}
    html = desk.page(f"/moderate/comments/{harmless}")
    assert not re.search(r'<mark class="term term-(toxic|insult|offensive|hate)"', html)
    # score bars are coloured against each label's own thresholds (clamped to 0-1), not fixed 0.3/0.7
    assert re.search(r'<dt>toxic</dt><dd><meter min="0" max="1" low="0.95" high="0.99"', html)
    assert re.search(r'<dt>spam</dt><dd><meter min="0" max="1" low="0.0" high="1.0"', html)
    spam = _post(desk, "Buy cheap pills now at www.pills.example and win", email="promo@example.org")
    html = desk.page(f"/moderate/comments/{spam}")
    assert re.search(r'<mark class="term term-spam" data-label="spam" title="pushed spam up \(strongest in this comment\)">www.pills.example</mark>', html)
    assert "raised spam by" not in html
    assert re.search(r'<p class="terms small">Marked words pushed up a score that flagged this comment:\s*<span class="term-key"><mark class="term term-spam">spam</mark>: “', html)
    assert "“www.pills.example” (strongest)" in html and "“cheap” (weaker)" in html
    assert '<div class="score decides"><dt>spam</dt>' in html and '<div class="score"><dt>hate</dt>' in html
    assert not re.search(r'<mark class="term term-hate"', html)  # no threshold: it flagged nothing


def test_a_label_filter_sorts_by_that_label_s_score_unless_age_is_chosen(make_api):
    desk = Desk(make_api(DESK_PAGE_SIZE=2, THRESHOLDS={"spam": {"review_at": 0.0, "reject_at": 2.0}, "toxic": {"review_at": 0.0, "reject_at": 2.0}}))
    desk.add_user("mia")
    desk.login("mia")
    ids = [_post(desk, text, email=f"r{n}@example.org") for n, text in enumerate([
        "Buy cheap pills now at www.pills.example and win", "Great reporting, thank you", "Is this ok? The plan is a good one.",
        "you stupid idiot, buy cheap pills", "Cheap loans, call 0800 123 4567 today"])]
    comments = [_comment(desk, i) for i in ids]
    by_toxic = [c.id for c in sorted(comments, key=lambda c: (-c.scores["toxic"], -c.id))]
    by_risk = [c.id for c in sorted(comments, key=lambda c: (-c.risk, -c.id))]
    assert by_toxic != by_risk

    def every_page(path):
        seen = []
        while path:
            html = desk.page(path)
            seen += _ids_on(html)
            found = re.search(r'<a rel="next" href="([^"]+)"', html)
            path = found.group(1).replace("&amp;", "&") if found else None
        return seen

    assert every_page("/moderate/queue?label=toxic") == by_toxic
    assert every_page("/moderate/queue?label=toxic&sort=risk") == by_toxic
    assert "highest toxic score first" in desk.page("/moderate/queue?label=toxic")
    assert every_page("/moderate/queue?label=toxic&sort=age") == ids
    assert every_page("/moderate/queue") == by_risk


def test_the_section_filter_ignores_capitals_and_switching_tabs_keeps_the_sort(desk):
    sport = _post(desk, "A comment on the match.", article={"id": "s1", "section": "sport"})
    _post(desk, "A comment on the budget.", email="other@example.org", article={"id": "p1", "section": "politics"})
    assert _ids_on(desk.page("/moderate/queue?section=Sport")) == [sport]
    assert _ids_on(desk.page("/moderate/queue?section=SPORT")) == [sport]
    assert re.search(r'data-tab="pending">1<', desk.page("/moderate/queue?section=Sport"))
    html = desk.page("/moderate/queue?sort=age&section=sport")
    for tab in ("rejected", "published", "all"):
        assert re.search(rf'href="/moderate/queue/{tab}\?[^"]*sort=age', html), tab
    assert desk.client.get("/moderate/queue/counts?section=Sport").json == {"pending": 1, "rejected": 0, "published": 0, "all": 1}
    desk.decide(sport, "spam")
    assert desk.client.get("/moderate/queue/counts?section=sport").json == {"pending": 0, "rejected": 1, "published": 0, "all": 1}


def test_a_filter_action_names_the_cap_in_its_confirmation_and_says_what_is_left(desk, monkeypatch):
    from moderation.desk import queue

    monkeypatch.setattr(queue, "MAX_BULK", 2)
    flood = [_post(desk, f"Visit my site number {n}", email=f"f{n}@example.org", ip="203.0.113.66") for n in range(3)]
    html = desk.page("/moderate/queue?ip=203.0.113.66")
    assert 'data-confirm="Reject the first 2 of 3 matching comments as spam?"' in html
    assert "Reject all 3 matching" not in html
    response = desk.post("/moderate/decide", {"scope": "filter", "ip": "203.0.113.66", "verdict": "spam"}, json=True)
    assert len(response.json["decided"]) == 2 and set(response.json["decided"]) < set(flood)
    assert response.json["message"] == "2 comments rejected (spam). At most 2 are decided at once: 1 more pending comment still matches this filter."
    assert 'data-confirm="Reject all 1 matching comments as spam?"' in desk.page("/moderate/queue?ip=203.0.113.66")


def test_a_conflict_answer_names_each_comment_and_its_current_status(desk):
    comment_id = _post(desk)
    other = Desk(desk.api)
    other.login("max")
    other.decide(comment_id, "approve")
    response = desk.decide(comment_id, "spam", json=True)
    assert response.status_code == 409
    assert response.json["conflicts"] == [{"id": comment_id, "status": "published", "message": response.json["problems"][0]}]
