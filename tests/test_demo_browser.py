"""The comment form end to end, in a real browser: the demo news site posts to the API, a moderator
approves a held comment in the review desk, and it appears under the article."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from conftest import browser_app, serving, sign_in
from moderation import store
from moderation.schema import Comment
from moderation.demo import DEFAULT_ARTICLE, create_demo_app, read_article

CLEAN = "Thanks for this clear report on the working group talks."
SPAM = "BUY CHEAP VIAGRA NOW!!! www.pills.example click here free money"
BORDERLINE = "Both leaders are clowns and this summit was a farce."  # the tiny model holds it for toxicity


@pytest.fixture
def sites(tiny_bundle, sqlite_template, tmp_path):
    """Our service (the tiny model and its own thresholds) and the demo news site posting to it."""
    if not DEFAULT_ARTICLE.is_file():
        pytest.skip(f"no demo article at {DEFAULT_ARTICLE}")
    app = browser_app(tiny_bundle, sqlite_template, tmp_path)
    with serving(app) as moderation_url:
        with Session(app.extensions["moderation.engine"]) as session:
            key = store.create_key(session, "demo-gazette", "site")
        with serving(create_demo_app(moderation_url, key)) as demo_url:
            yield app, moderation_url, demo_url


def _comment(page, text: str, name: str = "Reader", email: str = "reader@example.org") -> None:
    page.fill("#comment", text)
    page.fill("#author", name)
    page.fill("#email", email)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


def test_the_article_page_has_the_standard_comment_form():
    article = read_article(DEFAULT_ARTICLE) if DEFAULT_ARTICLE.is_file() else pytest.skip("no demo article")
    assert article.title and len(article.paragraphs) >= 5
    assert not any(p.startswith(("Advertisements", "[soliloquy", "Leave a Reply")) for p in article.paragraphs)
    assert len(set(article.paragraphs)) == len(article.paragraphs)


def test_a_reader_comments_and_a_moderator_approves_the_held_one(browser, sites):
    app, moderation_url, demo_url = sites
    reader = browser.new_context().new_page()
    reader.goto(demo_url)
    assert reader.locator("h2", has_text="Leave a Reply").is_visible()
    assert "Your email address will not be published. Required fields are marked *" in reader.locator(".note").inner_text()

    _comment(reader, CLEAN)  # published at once
    assert reader.locator(".comment.published .comment-text", has_text=CLEAN).is_visible()

    _comment(reader, SPAM, email="spammer@example.org")  # refused, politely, and shown to nobody
    assert "could not be published" in reader.locator(".notice.refused").inner_text()
    assert reader.locator(".comment-text", has_text="VIAGRA").count() == 0

    _comment(reader, BORDERLINE, name="Critic", email="critic@example.org")  # held: only its author sees it
    held = reader.locator(".comment.pending", has_text=BORDERLINE)
    assert held.is_visible() and "awaiting moderation" in held.inner_text()
    other = browser.new_context().new_page()
    other.goto(demo_url)
    assert other.locator(".comment-text", has_text=BORDERLINE).count() == 0
    assert other.locator(".comment-text", has_text=CLEAN).count() == 1

    moderator = browser.new_context().new_page()
    sign_in(moderator, moderation_url)
    card = moderator.locator("article.card", has_text=BORDERLINE)
    assert card.count() == 1
    card.get_by_role("button", name="Approve").click()
    card.wait_for(state="detached")

    other.reload()
    assert other.locator(".comment.published .comment-text", has_text=BORDERLINE).is_visible()
    reader.reload()
    assert reader.locator(".comment.pending").count() == 0
    with Session(app.extensions["moderation.engine"]) as session:
        stored = sorted((c.status, c.discarded) for c in session.scalars(select(Comment)))
    assert stored == [("published", False), ("published", False), ("rejected", True)]  # certain spam: discarded


def test_a_missing_field_keeps_what_the_reader_typed(browser, sites):
    _, _, demo_url = sites
    page = browser.new_context().new_page()
    page.goto(demo_url)
    page.evaluate("document.querySelector('form').noValidate = true")  # the server must check too
    page.fill("#comment", "A thought worth keeping.")
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert "required fields: name, email" in page.locator(".notice.error").inner_text()
    assert page.locator("#comment").input_value() == "A thought worth keeping."


def test_the_site_says_so_when_the_moderation_service_is_unreachable(browser, tmp_path):
    article = tmp_path / "article.txt"
    article.write_text("A title\n\nA first paragraph.\n")
    with serving(create_demo_app("http://127.0.0.1:9", "no-key", Path(article))) as demo_url:  # nothing listens on port 9
        page = browser.new_context().new_page()
        page.goto(demo_url)
        _comment(page, "Is anyone there?")
        assert "could not post your comment just now" in page.locator(".notice.error").inner_text()
        assert page.locator("#comment").input_value() == "Is anyone there?"
