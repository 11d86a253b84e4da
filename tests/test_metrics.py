"""/metrics after decisions through every door (API single and bulk, the desk's single, bulk, filter,
group and "reject & ban", Akismet's reports), read as Prometheus text, on SQLite and PostgreSQL.

Counters are per process and other tests in this process decide too, so each test compares
the counters before and after its own decisions.
"""

from __future__ import annotations

import re
from collections import Counter

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from conftest import Desk
from moderation import store

HUMAN = "moderation_human_decisions_total"


def scrape(client) -> dict[tuple[str, tuple], float]:
    """Every sample on /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def human_decisions(samples: dict) -> Counter:
    """{(action, reason): count} from moderation_human_decisions_total."""
    return Counter({(dict(labels)["action"], dict(labels)["reason"]): value for (name, labels), value in samples.items() if name == HUMAN})


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def signed_in(api) -> Desk:
    desk = Desk(api)
    desk.add_user("mia")
    assert desk.login("mia").status_code == 302
    return desk


def post(api, text: str, *, email: str, ip: str = "192.0.2.7") -> int:
    response = api.post_comment(text, author={"name": "Reader", "email": email, "ip": ip})
    assert response.status_code == 201, response.json
    return response.json["id"]


def statuses(api) -> Counter:
    with Session(api.app.extensions["moderation.engine"]) as session:
        return Counter(store.count_by_status(session))


def test_every_human_decision_is_counted_once_whichever_door_it_comes_through(api):
    desk = signed_in(api)
    ordinary = [post(api, f"Comment {n} about the new tram line and its timetable.", email=f"r{n}@example.org") for n in range(7)]
    flood = [post(api, f"Visit my shop number {n} for bargains", email=f"f{n}@example.org", ip="203.0.113.66") for n in range(2)]
    wave = [post(api, text, email=f"bot{n}@example.org", ip=f"198.51.100.{n}") for n, text in enumerate([
        "Make $500 a day from home!!! Visit www.easy-cash.example now",
        "Make $500 a day from home! Visit www.easy-cash.example now!!",
        "MAKE $500 A DAY FROM HOME visit www.easy-cash.example NOW",
    ])]
    troll = post(api, "You are all idiots", email="troll@example.org", ip="203.0.113.5")
    before = scrape(api.client)
    assert value(before, "moderation_comments", status="pending") == len(ordinary) + len(flood) + len(wave) + 1

    # The API: one decision, then a bulk of two and one that conflicts (already decided).
    assert api.decide(ordinary[0], "approve").status_code == 200
    bulk = api.client.post("/api/v1/decisions", headers=api.headers("moderator"), json={"decisions": [
        {"comment_id": ordinary[1], "action": "reject", "reason": "spam"},
        {"comment_id": ordinary[2], "action": "reject", "reason": "spam"},
        {"comment_id": ordinary[0], "action": "reject", "reason": "spam"},
    ]})
    assert [r["result"] for r in bulk.json["results"]] == ["decided", "decided", "conflict"]
    # The desk: one comment, a selection, every pending comment matching a filter, a near-duplicate group.
    assert desk.decide(ordinary[3], "abuse").status_code == 302
    assert sorted(desk.decide(ordinary[4:6], "off_topic", json=True).json["decided"]) == ordinary[4:6]
    by_filter = desk.post("/moderate/decide", {"scope": "filter", "ip": "203.0.113.66", "verdict": "spam"}, json=True)
    assert sorted(by_filter.json["decided"]) == flood
    groups = re.findall(r'class="group" id="g-\d+" data-ids="([\d,]+)"', desk.page("/moderate/queue"))
    assert [sorted(int(i) for i in ids.split(",")) for ids in groups] == [wave]
    assert sorted(desk.decide(wave, "other", json=True).json["decided"]) == wave
    # The desk's conflicts change nothing and count nothing; taking a decision back counts.
    assert desk.decide(ordinary[0], "spam", json=True).status_code == 409
    assert desk.decide(ordinary[1], "approve", expected="rejected", json=True).status_code == 200
    # "Reject & ban": a rejection as spam or abuse, whichever score is higher.
    scores = api.get(f"/api/v1/comments/{troll}").json["scores"]
    ban_reason = "spam" if scores["spam"] >= scores["toxic"] else "abuse"
    assert desk.post("/moderate/ban", {"id": str(troll)}, json=True).status_code == 200

    after = scrape(api.client)
    assert human_decisions(after) - human_decisions(before) == Counter({
        ("approve", ""): 2, ("reject", "spam"): 2 + len(flood), ("reject", "abuse"): 1, ("reject", "off_topic"): 2,
        ("reject", "other"): len(wave),
    }) + Counter({("reject", ban_reason): 1})
    # People's decisions are not the model's: the intake counter did not move.
    automatic = sum(v for (name, _), v in after.items() if name == "moderation_decisions_total")
    assert automatic == sum(v for (name, _), v in before.items() if name == "moderation_decisions_total")
    # The queue-depth gauge follows every decision, whichever door it came through.
    in_database = statuses(api)
    assert in_database == Counter({"pending": 1, "published": 2, "rejected": 10})
    for status in ("pending", "published", "rejected"):
        assert value(after, "moderation_comments", status=status) == in_database[status], status
    # The desk's own requests are counted like the API's.
    for status in ("200", "302", "409"):
        assert value(after, "moderation_http_requests_total", method="POST", endpoint="/moderate/decide", status=status) \
            > value(before, "moderation_http_requests_total", method="POST", endpoint="/moderate/decide", status=status), status


def test_a_ban_on_an_already_rejected_comment_counts_no_second_decision(api):
    desk = signed_in(api)
    comment_id = post(api, "You are all idiots", email="troll@example.org", ip="203.0.113.5")
    assert api.decide(comment_id, "reject", "abuse").status_code == 200
    before = human_decisions(scrape(api.client))
    assert desk.post("/moderate/ban", {"id": str(comment_id)}, json=True).status_code == 200
    assert human_decisions(scrape(api.client)) == before


def test_akismet_reports_are_counted_as_human_decisions(api):
    before = human_decisions(scrape(api.client))
    fields = {"api_key": api.site_key, "blog": "https://blog.example.org/", "user_ip": "203.0.113.5"}
    assert api.client.post("/1.1/submit-spam", data={**fields, "comment_content": "Cheap pills at pills.example"}).status_code == 200
    assert api.client.post("/1.1/submit-ham", data={**fields, "comment_content": "A fair point about the budget."}).status_code == 200
    assert human_decisions(scrape(api.client)) - before == Counter({("reject", "spam"): 1, ("approve", ""): 1})


def test_label_flags_count_by_label_and_outcome_at_the_sections_own_thresholds(make_api):
    # spam flags everything in politics (review_at 0) and nothing elsewhere (review_at above any score)
    api = make_api(THRESHOLDS={"spam": {"review_at": 2.0, "reject_at": 2.0}, "toxic": {"review_at": 2.0, "reject_at": 2.0}},
                   SECTION_THRESHOLDS={"politics": {"spam": {"review_at": 0.0}}})
    flags = "moderation_label_flags_total"
    before = scrape(api.client)
    assert api.post_comment("A view on the match", article={"id": "1", "section": "sport"}).json["status"] == "published"
    assert api.post_comment("A view on the vote", article={"id": "2", "section": "politics"}).json["status"] == "pending"
    after = scrape(api.client)
    assert value(after, flags, label="spam", outcome="review") - value(before, flags, label="spam", outcome="review") == 1
    assert value(after, flags, label="spam", outcome="accept") == value(before, flags, label="spam", outcome="accept")
