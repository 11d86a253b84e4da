"""Pages to read, not to work: one comment with its decision trail, an author's record, the audit log, the bans and their history."""

from __future__ import annotations

from datetime import datetime, time, timezone

from flask import abort, current_app, flash, render_template, request

from moderation import bans, store, validation
from moderation.db import get_session
from moderation.desk import bp
from moderation.desk.queue import VERDICTS, card, id_arg, shown
from moderation.desk.signin import signed_in
from moderation.schema import AuditEntry, Comment

AUDIT_PAGE = 50
AUDIT_ACTIONS = ("accept", "review", "reject", "approve", "erase")
BANS_PAGE = 50  # bans, or history rows, per page: a site may have thousands
AUTHOR_BAN_EVENTS = 50


@bp.get("/comments/<int:comment_id>")
@signed_in()
def comment(comment_id: int):
    """The comment, its scores and reasons, and everything that happened to it (model and people)."""
    session = get_session()
    found = store.get_comment(session, comment_id) if comment_id <= store.MAX_ID else None
    if found is None:
        abort(404, f"There is no comment #{comment_id}.")
    parent = store.get_comment(session, found.parent_id) if found.parent_id else None
    return render_template(
        "desk/comment.html", card=card(found), trail=store.history_of(session, comment_id), parent=parent,
        verdicts=VERDICTS, bans=bans.bans_for(session, found.author_email, found.author_ip),
        labels=list(current_app.extensions["moderation.service"].rules.thresholds),
    )


@bp.get("/author")
@signed_in()
def author():
    """An author's record by email (or IP address): how many comments were published and rejected, the latest ones."""
    email = (request.args.get("email") or "").strip() or None
    ip = (request.args.get("ip") or "").strip() or None
    if not email and not ip:
        abort(404, "Name an author by email or IP address.")
    # No author's address holds control characters (a NUL byte PostgreSQL refuses) or is longer than its column.
    if email and (problem := validation.text_problem(email, Comment.author_email.type.length)):
        abort(404, f"There is no author with that email address: it {problem}.")
    if ip and not email:
        if validation.text_problem(ip, Comment.author_ip.type.length):
            abort(404, "That is not an IP address.")
        try:
            ip = bans.canonical("ip", ip)
        except ValueError:
            abort(404, "That is not an IP address.")
    session = get_session()
    counts, latest = store.comments_by_author(session, email=email, ip=None if email else ip)
    return render_template(
        "desk/author.html", email=email, ip=None if email else ip, counts=counts, cards=[card(c) for c in latest],
        bans=bans.bans_for(session, email, None if email else ip),
        ban_events=bans.events_for(session, email, None if email else ip, AUTHOR_BAN_EVENTS), max_reason=bans.MAX_REASON,
        labels=list(current_app.extensions["moderation.service"].rules.thresholds),
    )


def _ignored(title: str, raw: str, problem: str) -> None:
    flash(f"The {title} filter {shown(raw)} {problem}; the log ignores it.", "error")


def _day(name: str, title: str, end_of_day: bool = False) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date() if raw else None
    except ValueError:
        _ignored(title, raw, "is not a day (YYYY-MM-DD)")
        return None
    if day is None:
        return None
    moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=timezone.utc)
    return moment


@bp.get("/audit")
@signed_in()
def audit():
    """The audit log, newest first, filtered by moderator, action and date (UTC days)."""
    session = get_session()
    filters = {k: request.args.get(k, "") for k in ("actor", "action", "since", "until")}
    actor = filters["actor"] or None
    # A moderator's name never holds control characters (a NUL byte PostgreSQL refuses) nor outgrows its column.
    if actor and (problem := validation.text_problem(actor, AuditEntry.actor.type.length)):
        _ignored("Who", actor, problem)
        actor = filters["actor"] = None
    action = filters["action"] or None
    if action and action not in AUDIT_ACTIONS:
        _ignored("Action", action, "is not an action")
        action = filters["action"] = None
    since, until = _day("since", "From"), _day("until", "To", end_of_day=True)
    filters.update({k: "" for k, day in (("since", since), ("until", until)) if day is None})
    before = request.args.get("before_id")
    before_id = id_arg(before)
    if before and before_id is None:  # "²" passes str.isdigit() but not int(); no page link holds it
        flash("That page link is out of date; the log ignores it and shows the newest entries.", "error")
    entries = store.audit(session, actor=actor, action=action, since=since, until=until, before_id=before_id, limit=AUDIT_PAGE + 1)
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    return render_template(
        "desk/audit.html", entries=entries, actors=store.audit_actors(session), actions=AUDIT_ACTIONS,
        next_before=entries[-1].id if more else None, filters={k: v or "" for k, v in filters.items()},
    )


def _before() -> int | None:
    """The page link's ``before`` id; None, with a notice, for one no page link holds."""
    raw = request.args.get("before")
    before_id = id_arg(raw)
    if raw and before_id is None:
        flash("That page link is out of date; showing the newest.", "error")
    return before_id


@bp.get("/bans")
@signed_in()
def ban_list():
    """The bans in force, newest first, each with who made it, when, why and a button to lift it."""
    return _bans_page("list", bans.in_force, lambda ban: ban.id)


@bp.get("/bans/history")
@signed_in()
def ban_history():
    """Every ban and lift, newest first: the trace that stays when a lift deletes the ban."""
    return _bans_page("history", bans.history, lambda event: event.row.id)


def _bans_page(view: str, fetch, key):
    """One page of ``fetch(session, before_id=..., limit=...)``, with the link to the next (older) page."""
    session = get_session()
    before_id = _before()
    found = fetch(session, before_id=before_id, limit=BANS_PAGE + 1)
    return render_template(
        "desk/bans.html", view=view, items=found[:BANS_PAGE], total=bans.count_in_force(session), before=before_id,
        next_before=key(found[BANS_PAGE - 1]) if len(found) > BANS_PAGE else None, max_reason=bans.MAX_REASON,
    )
