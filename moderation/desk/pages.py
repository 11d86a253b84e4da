"""Pages to read, not to work: one comment with its decision trail, an author's record, the audit log."""

from __future__ import annotations

from datetime import datetime, time, timezone

from flask import abort, current_app, render_template, request

from moderation import bans, store
from moderation.db import get_session
from moderation.desk import bp
from moderation.desk.queue import VERDICTS, card
from moderation.desk.signin import signed_in

AUDIT_PAGE = 50
AUDIT_ACTIONS = ("accept", "review", "reject", "approve", "erase")


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
    if ip and not email:
        try:
            ip = bans.canonical("ip", ip)
        except ValueError:
            abort(404, "That is not an IP address.")
    session = get_session()
    counts, latest = store.comments_by_author(session, email=email, ip=None if email else ip)
    return render_template(
        "desk/author.html", email=email, ip=None if email else ip, counts=counts, cards=[card(c) for c in latest],
        bans=bans.bans_for(session, email, None if email else ip),
        labels=list(current_app.extensions["moderation.service"].rules.thresholds),
    )


def _day(name: str, end_of_day: bool = False) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date() if raw else None
    except ValueError:
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
    actor = request.args.get("actor") or None
    action = request.args.get("action") if request.args.get("action") in AUDIT_ACTIONS else None
    before = request.args.get("before_id", "")
    entries = store.audit(
        session, actor=actor, action=action, since=_day("since"), until=_day("until", end_of_day=True),
        before_id=int(before) if before.isdigit() and int(before) <= store.MAX_ID else None, limit=AUDIT_PAGE + 1,
    )
    more = len(entries) > AUDIT_PAGE
    entries = entries[:AUDIT_PAGE]
    return render_template(
        "desk/audit.html", entries=entries, actors=store.audit_actors(session), actions=AUDIT_ACTIONS,
        next_before=entries[-1].id if more else None,
        filters={k: request.args.get(k, "") for k in ("actor", "action", "since", "until")},
    )
