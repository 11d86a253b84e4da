"""Akismet's wire protocol, so sites and plugins that speak Akismet can use this service instead.

The protocol is Akismet's REST API 1.1 as documented at akismet.com/developers (verify-key,
comment-check, submit-spam, submit-ham) and as client libraries read it (the ``akismet``
package by James Bennett, which tests/test_akismet.py drives unmodified). The Akismet key
is one of our *site* API keys, sent as the form field ``api_key`` (or ``key``).

comment-check runs the same intake as ``POST /api/v1/comments``: the comment is stored,
scored and decided, and moderators see it in the queue. A reject answers ``true`` (with
``X-akismet-pro-tip: discard`` for certain spam); accept and review answer ``false``, so the
site's own moderation settings decide what a held comment does there; the non-standard
``X-Moderation-Decision: accept|review|reject`` header tells clients that care. ``is_test``
requests are decided but store nothing. submit-spam and submit-ham record a moderator-like
decision on the stored comment (storing it first if it was never checked): training labels.

Answers follow Akismet's conventions, not our JSON error shape: ``text/plain``, HTTP 200
even for a bad key (body ``invalid``) or a missing field (``Missing required field: NAME.``),
with ``X-akismet-debug-help`` saying what was wrong.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from moderation import store, validation
from moderation.db import get_engine, get_session
from moderation.errors import ApiError
from moderation.intake import submit
from moderation.schema import PENDING, PUBLISHED, REJECTED, ApiKey, Comment
from moderation.text import normalize

bp = Blueprint("akismet", __name__, url_prefix="/1.1")

THANKS = "Thanks for making the web a better place."  # Akismet's fixed answer to a submission
DECISION_OF_STATUS = {PUBLISHED: "accept", PENDING: "review", REJECTED: "reject"}
# Our validation's field paths, named as the Akismet client sent them.
FORM_NAMES = {
    "text": "comment_content", "author.name": "comment_author", "author.email": "comment_author_email",
    "author.url": "comment_author_url", "author.ip": "user_ip", "author.user_agent": "user_agent", "article.url": "permalink",
}
_TRUE = ("1", "true", "yes", "on")


class AkismetError(Exception):
    """An answer in Akismet's manner: a plain body, HTTP 200 unless said otherwise, and a debug header."""

    def __init__(self, body: str, help_text: str, *, status: int = 200, error: bool = False):
        super().__init__(help_text)
        self.body, self.help_text, self.status, self.error = body, help_text, status, error


def _plain(body: str, status: int = 200, headers: dict | None = None) -> Response:
    return Response(body, status=status, mimetype="text/plain", headers=headers or {})


@bp.errorhandler(AkismetError)
def _akismet_error(error: AkismetError):
    headers = {"X-akismet-debug-help": error.help_text}
    if error.error:  # plugins (WordPress's) hold the comment for a person when they see this header
        headers["X-akismet-error"] = error.help_text
    return _plain(error.body, error.status, headers)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_error):
    limit = current_app.config["MAX_BODY_BYTES"]
    return _akismet_error(AkismetError("Request too large.", f"The request is larger than {limit} bytes.", status=413, error=True))


@bp.errorhandler(ApiError)
def _invalid_fields(error: ApiError):
    """Our validation's 422, renamed to the Akismet fields the client sent."""
    fields = error.fields or {"request": error.message}
    named = "; ".join(f"{FORM_NAMES.get(path, path)} {problem}" for path, problem in fields.items())
    first = FORM_NAMES.get(next(iter(fields)), next(iter(fields)))
    return _akismet_error(AkismetError(f"Invalid value: {first}.", named, error=True))


def _site_key(form) -> ApiKey:
    """The live site key sent as ``api_key`` (Akismet's name) or ``key`` (verify-key's older name)."""
    raw = (form.get("api_key") or form.get("key") or "").strip()
    if not raw:
        raise AkismetError("invalid", 'Empty "api_key" value')
    key = store.find_key(get_session(), raw)
    if key is None:
        raise AkismetError("invalid", "The API key is unknown or revoked.")
    if key.role != "site":
        raise AkismetError("invalid", f"This is a {key.role} key; Akismet clients need a site key.")
    return key


def _require(form, *names: str) -> None:
    for name in names:
        if not form.get(name, "").strip():
            raise AkismetError(f"Missing required field: {name}.", f'Empty "{name}" value')


def _is_test(form) -> bool:
    return form.get("is_test", "").strip().lower() in _TRUE


def _new_comment(form) -> validation.NewComment:
    """Akismet's fields as the JSON API's body, checked by the same validation (no second rule set)."""
    value = lambda name: form.get(name) or None  # noqa: E731  an empty field is an absent one
    body = {
        "text": form.get("comment_content"),
        "author": {"name": value("comment_author"), "email": value("comment_author_email"), "url": value("comment_author_url"),
                   "ip": value("user_ip"), "user_agent": value("user_agent")},
        "article": {"url": value("permalink")},
    }
    return validation.new_comment(body, current_app.config["MAX_TEXT_CHARS"])


def _intake(session: Session, new: validation.NewComment, site: str) -> Comment:
    service = current_app.extensions["moderation.service"]
    comment, _created = submit(
        session, new, site=site, assessor=service.assessor, rules=service.rules,
        duplicate_window=timedelta(seconds=current_app.config["DUPLICATE_WINDOW_SECONDS"]),
    )
    return comment


def _decided_without_storing(new: validation.NewComment, site: str) -> Comment:
    """The whole intake in a transaction that is rolled back: Akismet's is_test stores nothing.

    ``rollback_only`` keeps intake's commit from reaching the outer transaction.
    """
    with get_engine().connect() as connection:
        outer = connection.begin()
        try:
            with Session(bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False) as session:
                return _intake(session, new, site)
        finally:
            outer.rollback()


def _stored(session: Session, site: str, new: validation.NewComment, *, same_ip: bool) -> Comment | None:
    """This site's newest comment with the same normalised text and author email (and IP address, if ``same_ip``)."""
    digest = store.text_hash(normalize(new.text))
    query = select(Comment).where(Comment.site == site, Comment.text_hash == digest)
    email, ip = new.author["email"], new.author["ip"]
    if same_ip:
        query = query.where(Comment.author_email.is_(None) if email is None else Comment.author_email == email)
        query = query.where(Comment.author_ip.is_(None) if ip is None else Comment.author_ip == ip)
    elif email is not None:
        query = query.where(Comment.author_email == email)
    return session.scalar(query.order_by(Comment.id.desc()).limit(1))


@bp.post("/verify-key")
def verify_key():
    """``valid`` for a live site key and a blog URL; ``invalid`` (and why, in a header) otherwise."""
    _site_key(request.form)
    if not request.form.get("blog", "").strip():
        raise AkismetError("invalid", 'Empty "blog" value')
    return _plain("valid")


@bp.post("/comment-check")
def comment_check():
    """Decide a comment like the JSON API does; ``true`` means we reject it.

    A comment this site already sent (same text, author email and IP address: a plugin's
    re-check) is answered from its current status, moderators' decisions included, instead
    of being stored again and rejected as a duplicate.
    """
    form = request.form
    key = _site_key(form)
    _require(form, "blog", "user_ip", "comment_content")
    new = _new_comment(form)
    if _is_test(form):
        comment, headers = _decided_without_storing(new, key.name), {}
    else:
        session = get_session()
        comment = _stored(session, key.name, new, same_ip=True) or _intake(session, new, key.name)
        headers = {"X-Moderation-Comment-Id": str(comment.id)}
    decision = DECISION_OF_STATUS[comment.status]
    headers["X-Moderation-Decision"] = decision
    if decision == "reject" and comment.discarded:
        headers["X-akismet-pro-tip"] = "discard"
    return _plain("true" if decision == "reject" else "false", headers=headers)


def _label(action: str, reason: str | None):
    """Record the site's verdict on the stored comment (storing it first if need be): a training label."""
    form = request.form
    key = _site_key(form)
    _require(form, "blog", "user_ip", "comment_content")
    new = _new_comment(form)
    if _is_test(form):
        return _plain(THANKS)  # Akismet: test calls never train
    session = get_session()
    comment = _stored(session, key.name, new, same_ip=False) or _intake(session, new, key.name)
    actor = f"akismet:{key.name}"[:100]
    note = f"the site reported it through Akismet's submit-{'spam' if action == 'reject' else 'ham'}"
    for _attempt in range(3):  # a moderator deciding at the same moment changes the status we expect
        try:
            store.decide(session, comment.id, actor=actor, action=action, reason=reason, note=note, expected_status=comment.status)
            return _plain(THANKS)
        except store.Conflict as conflict:
            comment = conflict.comment
    raise AkismetError("Please try again.", "The comment's status kept changing while we recorded the report.", status=503, error=True)


@bp.post("/submit-spam")
def submit_spam():
    """The site says this comment is spam: reject it as spam (a spam label)."""
    return _label("reject", "spam")


@bp.post("/submit-ham")
def submit_ham():
    """The site says this comment is not spam: approve it (a not-spam, not-toxic label)."""
    return _label("approve", None)
