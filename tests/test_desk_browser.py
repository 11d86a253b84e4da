"""The review desk in a real browser: Debian's Chromium driven by Playwright, against the app served over HTTP.

Screenshots of the queue and the dashboard are saved under SCREENSHOTS (printed at the
end of the test run).
"""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from conftest import HOLD_EVERYTHING, SCREENSHOTS, Api, browser_app, serving, sign_in
from moderation import store

HOSTILE = [
    "<script>window.__pwned = 'script'</script>",
    "<img src=x onerror=\"window.__pwned = 'img'\">",
    "<a href=\"javascript:window.__pwned='link'\">free prize</a>",
    "</textarea><script>alert('textarea')</script>",
    "<svg onload=\"alert('svg')\"></svg>",
    "\"><iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
]


class Site:
    """The app served on a loopback port, with a site key to post comments and desk users."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url
        self.api = Api(app)

    def comment(self, text: str, email: str = "reader@example.org", ip: str = "192.0.2.1", name: str = "Reader") -> int:
        response = self.api.post_comment(text, author={"name": name, "email": email, "ip": ip})
        assert response.status_code == 201, response.json
        return response.json["id"]

    def status(self, comment_id: int) -> str:
        with Session(self.app.extensions["moderation.engine"]) as session:
            return store.get_comment(session, comment_id).status

    def decide_as(self, name: str, comment_id: int, action: str = "approve") -> None:
        with Session(self.app.extensions["moderation.engine"]) as session:
            store.decide(session, comment_id, actor=name, action=action, reason=None if action == "approve" else "spam", note=None)


@pytest.fixture
def site(tiny_bundle, sqlite_template, tmp_path):
    app = browser_app(tiny_bundle, sqlite_template, tmp_path, THRESHOLDS=HOLD_EVERYTHING, DISCARD_SPAM_AT=2.0)
    with serving(app) as url:
        yield Site(app, url)


@pytest.fixture
def page(browser, site):
    """A fresh browser context (own cookies), signed in as mia through the form, keyboard only."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.dialogs = []
    page.accept_dialogs = False  # a test that means to confirm sets this
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.accept() if page.accept_dialogs else dialog.dismiss()))
    sign_in(page, site.url)
    yield page
    context.close()


def _reload_queue(page, site, query: str = ""):
    page.goto(site.url + "/moderate/queue" + query)
    page.wait_for_load_state("load")


def test_sign_in_sets_a_secure_http_only_cookie_the_page_cannot_read(page):
    cookie = next(c for c in page.context.cookies() if c["name"] == "moderation_session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert "moderation_session" not in page.evaluate("document.cookie")
    assert page.locator("header .who").inner_text().startswith("mia")


def test_a_moderator_works_the_queue_with_the_keyboard_only(page, site):
    first = site.comment("First comment, about the tram line.", email="a@example.org")
    second = site.comment("Second comment, about the harbour.", email="b@example.org")
    third = site.comment("Third comment, about the school.", email="c@example.org")
    fourth = site.comment("Fourth comment, about the library.", email="d@example.org")
    fifth = site.comment("Fifth comment, about the park.", email="e@example.org")
    _reload_queue(page, site, "?sort=age")
    assert page.locator("article.card.current").get_attribute("id") == f"c-{first}"
    page.keyboard.press("?")
    assert page.locator("dialog#help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("a")  # approve the first
    page.wait_for_selector(f"#c-{first}", state="detached")
    assert page.locator("article.card.current").get_attribute("id") == f"c-{second}"
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("s")  # the second is spam
    page.wait_for_selector(f"#c-{second}", state="detached")
    page.keyboard.press("d")  # the third is abuse
    page.wait_for_selector(f"#c-{third}", state="detached")
    page.keyboard.press("x")  # select the fourth
    page.keyboard.press("j")
    page.keyboard.press("x")  # and the fifth
    page.accept_dialogs = True
    page.keyboard.press("s")  # reject the selection as spam, once confirmed
    page.wait_for_selector(f"#c-{fifth}", state="detached")
    assert page.dialogs == ["Reject 2 selected comments as spam?"]
    assert [site.status(i) for i in (first, second, third, fourth, fifth)] == ["published", "rejected", "rejected", "rejected", "rejected"]
    assert "2 comments rejected (spam)." in page.locator("#live").inner_text()
    assert page.locator('.count[data-tab="pending"]').inner_text() == "0"


def test_a_group_of_near_duplicates_is_rejected_at_once(page, site):
    wave = [site.comment(text, email=f"bot{n}@example.org", ip=f"203.0.113.{n}") for n, text in enumerate([
        "Cheap Rolex replicas at www.watch-deals.example, 90% off today only!",
        "Cheap Rolex replicas at www.watch-deals.example 90% off, today only!!",
        "CHEAP ROLEX REPLICAS at www.watch-deals.example 90% OFF TODAY ONLY",
    ])]
    keep = site.comment("I was at the match and the atmosphere was great.", email="fan@example.org")
    _reload_queue(page, site)
    group = page.locator(".group").first
    assert "3 similar comments" in group.inner_text()
    page.accept_dialogs = True
    group.get_by_role("button", name="Reject all 3 as spam").click()
    page.wait_for_selector(".group", state="detached")
    assert page.dialogs == ["Reject all 3 similar comments as spam?"]
    for comment_id in wave:
        page.wait_for_selector(f"#c-{comment_id}", state="detached")
    assert [site.status(i) for i in wave] == ["rejected"] * 3
    assert site.status(keep) == "pending"
    page.screenshot(path=str(SCREENSHOTS / "queue-after-group.png"), full_page=True)


def test_a_decision_someone_else_made_first_shows_a_conflict_message(page, site):
    comment_id = site.comment("A comment two moderators look at together.")
    _reload_queue(page, site)
    site.decide_as("max", comment_id, "approve")  # another moderator, elsewhere, is quicker
    page.keyboard.press("s")
    message = page.locator("#live .message.conflict")
    message.wait_for()
    assert f"Comment #{comment_id} was already published by max" in message.inner_text()
    assert site.status(comment_id) == "published"


def test_hostile_comments_run_no_script_anywhere(page, site):
    ids = [site.comment(text, email=f"h{n}@example.org", name=text) for n, text in enumerate(HOSTILE)]
    for path in ("/moderate/queue", "/moderate/queue/all", f"/moderate/comments/{ids[0]}", f"/moderate/comments/{ids[3]}",
                 "/moderate/author?email=h0@example.org", "/moderate/audit"):
        page.goto(site.url + path)
        page.wait_for_load_state("load")
        page.wait_for_timeout(200)  # time for an onerror or onload handler to fire, were it to exist
        assert page.evaluate("window.__pwned === undefined"), path
        assert page.dialogs == [], path
        assert page.locator("iframe").count() == 0, path
    page.goto(site.url + "/moderate/queue")
    shown = page.locator(f"#c-{ids[0]} blockquote.text").inner_text()
    assert shown == HOSTILE[0]  # shown as the text the reader typed


def test_screenshots_of_the_queue_and_the_dashboard(page, site):
    texts = [
        ("Visit www.cheap-pills.example for the best prices!!!", "promo@example.org"),
        ("You are an idiot and so is everyone who agrees with you.", "angry@example.org"),
        ("The council should publish the bridge inspection report.", "civic@example.org"),
        ("Great reporting, thank you for covering the flood.", "thanks@example.org"),
    ]
    ids = [site.comment(text, email=email) for text, email in texts]
    site.decide_as("mia", ids[3], "approve")
    _reload_queue(page, site)
    page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)
    page.goto(site.url + "/moderate/dashboard")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("Array.from(document.images).every(img => img.complete && img.naturalWidth > 0)")
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
    assert (SCREENSHOTS / "queue.png").stat().st_size > 10_000


def test_enter_in_a_note_starts_a_new_line_and_never_decides(page, site):
    comment_id = site.comment("A comment a moderator writes a note about.")
    _reload_queue(page, site)
    note = page.locator(f"#c-{comment_id} [name=note]")
    note.click()
    page.keyboard.type("racist slur, reject as abuse")
    page.keyboard.press("Enter")
    page.keyboard.type("second line")
    page.wait_for_timeout(300)  # time for a submission to happen, were Enter to submit
    assert site.status(comment_id) == "pending"
    assert note.input_value() == "racist slur, reject as abuse\nsecond line"
    page.locator(f"#c-{comment_id} button[value=abuse]").click()  # the explicit button decides, with the note
    page.wait_for_selector(f"#c-{comment_id}", state="detached")
    assert site.status(comment_id) == "rejected"


def test_shortcut_keys_do_nothing_while_the_help_dialog_is_open(page, site):
    comment_id = site.comment("A comment behind the help dialog.")
    _reload_queue(page, site)
    page.keyboard.press("?")
    assert page.locator("dialog#help").is_visible()
    for key in ("a", "s", "d", "x", "j"):
        page.keyboard.press(key)
    page.wait_for_timeout(300)
    assert site.status(comment_id) == "pending"
    assert page.locator("dialog#help").is_visible()
    assert not page.locator(f"#c-{comment_id} input.pick").is_checked()
    page.keyboard.press("?")  # '?' still closes it
    assert not page.locator("dialog#help").is_visible()
    page.keyboard.press("a")
    page.wait_for_selector(f"#c-{comment_id}", state="detached")
    assert site.status(comment_id) == "published"


def test_acting_on_several_comments_asks_first_with_the_count(page, site):
    ids = [site.comment(f"Comment {n} on the ferry timetable.", email=f"r{n}@example.org") for n in range(3)]
    _reload_queue(page, site)
    page.check("#select-all")
    page.keyboard.press("s")  # the dialog is dismissed: nothing happens
    page.locator("#bulk button[value=abuse]").click()
    page.wait_for_timeout(300)
    assert page.dialogs == ["Reject 3 selected comments as spam?", "Reject 3 selected comments as abuse?"]
    assert [site.status(i) for i in ids] == ["pending"] * 3
    page.uncheck("#select-all")
    page.locator(f"#c-{ids[0]} input.pick").check()
    page.keyboard.press("a")  # one comment: no question
    page.wait_for_selector(f"#c-{ids[0]}", state="detached")
    assert len(page.dialogs) == 2 and site.status(ids[0]) == "published"


def test_a_filter_action_is_confirmed_with_the_cap_shows_it_is_busy_and_reports_what_it_did(page, site, monkeypatch):
    from moderation.desk import queue

    monkeypatch.setattr(queue, "MAX_BULK", 2)
    flood = [site.comment(f"Visit my site number {n}", email=f"f{n}@example.org", ip="203.0.113.66") for n in range(3)]
    _reload_queue(page, site, "?ip=203.0.113.66")
    page.evaluate("""() => {
        window.__seen = [];
        const form = document.querySelector('form.filter-bulk');
        new MutationObserver(() => window.__seen.push([form.getAttribute('aria-busy'), form.querySelector('button[value=spam]').textContent]))
            .observe(form, {attributes: true, childList: true, subtree: true, characterData: true});
    }""")
    page.accept_dialogs = True
    page.locator("form.filter-bulk button[value=spam]").click()
    page.locator("#live .message.info", has_text="still matches").wait_for()
    assert page.dialogs == ["Reject the first 2 of 3 matching comments as spam?"]
    assert ["true", "Working…"] in page.evaluate("window.__seen")
    assert page.locator("#live").inner_text() == "2 comments rejected (spam). At most 2 are decided at once: 1 more pending comment still matches this filter."
    assert sorted(site.status(i) for i in flood) == ["pending", "rejected", "rejected"]
    page.wait_for_function("document.querySelector('.filter-count').textContent === '1'")
    assert page.locator("form.filter-bulk button[value=spam]").get_attribute("data-confirm") == "Reject all 1 matching comments as spam?"
    assert page.locator("form.filter-bulk button[value=spam]").is_enabled()


def test_a_lost_decision_is_shown_on_its_card_which_is_marked_with_its_current_status(page, site):
    for n in range(12):  # enough comments that the top of the page is out of view
        site.comment(f"Filler comment {n} about the new cycle lanes, long enough to take some room on the page.", email=f"f{n}@example.org")
    last = site.comment("The comment at the bottom of the page.", email="last@example.org")
    _reload_queue(page, site, "?sort=age")
    site.decide_as("max", last, "approve")
    page.locator(f"#c-{last}").click()
    page.keyboard.press("s")
    message = page.locator(f"#c-{last} .card-message.conflict")
    message.wait_for()
    assert f"Comment #{last} was already published by max" in message.inner_text()
    card = page.locator(f"#c-{last}")
    assert "status-published" in card.get_attribute("class") and "status-pending" not in card.get_attribute("class")
    assert card.locator(".badge.status").inner_text() == "already published"
    toast = page.locator("#live")
    assert toast.evaluate("box => getComputedStyle(box).position") == "fixed" and toast.get_attribute("role") == "status"
    assert toast.is_visible() and toast.evaluate("box => { const r = box.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
    assert site.status(last) == "published"


def test_deciding_on_a_comment_s_page_shows_its_new_status_and_trail(page, site):
    comment_id = site.comment("A comment opened on its own page.")
    page.goto(f"{site.url}/moderate/comments/{comment_id}")
    page.wait_for_load_state("load")
    page.keyboard.press("a")
    page.wait_for_selector(f"#c-{comment_id}.status-published")
    assert page.locator(f"#c-{comment_id} .badge.status").inner_text() == "published"
    rows = page.locator("table.trail tbody tr")
    assert rows.count() == 2 and "mia" in rows.nth(1).inner_text() and "pending → published" in rows.nth(1).inner_text()
    assert "1 comment approved." in page.locator(".messages").first.inner_text()
    assert site.status(comment_id) == "published"


def test_counts_follow_decisions_and_an_emptied_page_says_so(page, site):
    ids = [site.comment(f"Comment {n} on the bin collection.", email=f"r{n}@example.org") for n in range(3)]
    earlier = site.comment("A comment rejected earlier.", email="old@example.org")
    site.decide_as("max", earlier, "reject")
    _reload_queue(page, site)
    assert page.locator('.count[data-tab="rejected"]').inner_text() == "1"
    page.accept_dialogs = True
    page.check("#select-all")
    page.keyboard.press("s")
    for comment_id in ids:
        page.wait_for_selector(f"#c-{comment_id}", state="detached")
    page.wait_for_function("document.querySelector('.count[data-tab=\"rejected\"]').textContent === '4'")
    counts = {tab: page.locator(f'.count[data-tab="{tab}"]').inner_text() for tab in ("pending", "rejected", "published", "all")}
    assert counts == {"pending": "0", "rejected": "4", "published": "0", "all": "4"}
    assert page.locator("section.cards .empty").is_visible()
    assert "Nothing left on this page" in page.locator("section.cards .empty").inner_text()


# --- a phone: 390 px wide -----------------------------------------------------------------------

LONG_EMAIL = "a.reader.with.a.rather.long.address@subscribers.newsroom-example.org"


@pytest.fixture
def phone(browser, site):
    """A browser context as wide as a phone (390 px), signed in as mia; it confirms every question."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.accept()))
    sign_in(page, site.url)
    yield page
    context.close()


def _scrolls_sideways(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")


def test_the_desk_fits_a_phone_and_a_ban_is_lifted_there_by_clicking(phone, site):
    troll = site.comment("You are all idiots, every single one of you.", email="troll@example.org", ip="203.0.113.5")
    other = site.comment("Visit www.cheap-pills.example " + "pillspillspills" * 6, email=LONG_EMAIL, ip="2001:db8:85a3::8a2e:370:7334")
    site.decide_as("max", other, "reject")  # an audit log and a decision trail with some rows
    _reload_queue(phone, site)
    assert not _scrolls_sideways(phone), "queue"
    phone.screenshot(path=str(SCREENSHOTS / "queue-phone.png"), full_page=True)
    phone.locator(f"#c-{troll} button.danger").click()  # "reject & ban author", confirmed
    phone.wait_for_selector(f"#c-{troll}", state="detached")
    assert phone.dialogs == ["Reject this comment and hold everything this author sends from now on?"]
    for path in ("/moderate/queue/all", f"/moderate/comments/{other}", f"/moderate/author?email={LONG_EMAIL}",
                 "/moderate/author?email=troll@example.org", "/moderate/audit", "/moderate/bans/history", "/moderate/dashboard", "/moderate/bans"):
        phone.goto(site.url + path)
        phone.wait_for_load_state("load")
        assert not _scrolls_sideways(phone), path
    phone.screenshot(path=str(SCREENSHOTS / "bans-phone.png"), full_page=True)

    row = phone.locator("table.bans tr", has=phone.get_by_role("link", name="troll@example.org"))
    assert "mia" in row.inner_text() and f"comment #{troll}" in row.inner_text()
    row.get_by_placeholder("why (optional)").fill("apologised by phone")
    row.get_by_role("button", name="Lift the ban on email troll@example.org").click()
    phone.locator(".messages .message.info", has_text="Ban on email troll@example.org lifted.").wait_for()
    assert phone.url.startswith(site.url + "/moderate/bans")
    assert phone.get_by_role("link", name="troll@example.org").count() == 0
    assert phone.get_by_role("link", name="203.0.113.5").count() == 1  # the IP address ban stays
    assert not _scrolls_sideways(phone), "bans, after lifting"
    later = site.api.post_comment("A harmless remark.", author={"email": "troll@example.org"}).json
    assert not any("banned" in reason for reason in later["reasons"])
    phone.get_by_role("link", name="History").click()
    newest = phone.locator("table.ban-events tbody tr").first
    assert all(word in newest.inner_text() for word in ("mia", "lifted", "troll@example.org", "apologised by phone"))
