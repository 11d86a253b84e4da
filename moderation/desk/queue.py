"""The queues and the decisions made on them: one comment, a selection, a whole filter, a group.

Each decision goes through `store.decide`, so the desk and the API share one rule: the
first moderator wins, and the second is told who decided and when, not shown an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for

from moderation import bans, store
from moderation.db import get_session
from moderation.desk import bp
from moderation.desk.render import drivers, highlight
from moderation.desk.signin import current_user, safe_next, signed_in
from moderation.schema import PENDING, PUBLISHED, REJECTED, Comment
from moderation.similar import group_similar

TABS = {"pending": PENDING, "rejected": REJECTED, "published": PUBLISHED, "all": None}
# A verdict is what the moderator clicked; it maps onto the API's action and reason.
VERDICTS = {
    "approve": ("approve", None), "spam": ("reject", "spam"), "abuse": ("reject", "abuse"),
    "off_topic": ("reject", "off_topic"), "other": ("reject", "other"),
}
MAX_BULK = 1000  # the most comments one bulk action on a filter decides
GROUP_CANDIDATES = 1000  # held comments compared for near-duplicates


def _filter(status: str | None) -> store.QueueFilter:
    """Read the queue filter from the query string (or a bulk form's hidden fields)."""
    values = request.values
    rules = current_app.extensions["moderation.service"].rules
    label = values.get("label") or None
    if label is not None and label not in rules.thresholds:
        label = None
    ip = (values.get("ip") or "").strip() or None
    if ip:
        try:
            ip = bans.canonical("ip", ip)
        except ValueError:
            flash(f"{ip!r} is not an IP address; the filter ignores it.", "error")
            ip = None
    return store.QueueFilter(
        status=status, label=label, label_at=rules.thresholds.get(label, {}).get("review_at", 0.5) if label else 0.5,
        article=(values.get("article") or "").strip() or None, section=(values.get("section") or "").strip() or None,
        author=(values.get("author") or "").strip() or None, ip=ip,
    )


def _filter_args(where: store.QueueFilter) -> dict:
    return {k: v for k, v in (("label", where.label), ("article", where.article), ("section", where.section),
                              ("author", where.author), ("ip", where.ip)) if v}


@dataclass
class Card:
    """A comment as the desk shows it."""

    comment: Comment
    segments: list = field(default_factory=list)
    group: int | None = None  # index of its near-duplicate group on this page, if any


def card(comment: Comment) -> Card:
    return Card(comment, highlight(comment.text, comment.terms, drivers(comment.scores or {}, comment.reasons or [])))


@bp.get("/")
@signed_in()
def home():
    return redirect(url_for("desk.queue"))


@bp.get("/queue", defaults={"tab": "pending"})
@bp.get("/queue/<tab>")
@signed_in()
def queue(tab: str):
    """A queue tab: counts, filters, near-duplicate groups (pending only), one page of cards."""
    if tab not in TABS:
        abort(404)
    session = get_session()
    where = _filter(TABS[tab])
    sort = request.args.get("sort") if request.args.get("sort") in ("risk", "age") else "risk"
    try:
        page, next_cursor = store.queue(session, where, sort=sort, cursor=request.args.get("cursor") or None,
                                        limit=current_app.config["DESK_PAGE_SIZE"])
    except (ValueError, TypeError, KeyError):
        flash("That page link is out of date; showing the first page.", "error")
        page, next_cursor = store.queue(session, where, sort=sort, limit=current_app.config["DESK_PAGE_SIZE"])
    counts = store.count_matching(session, where)
    counts["all"] = sum(counts.values())
    groups = _groups(session, where) if tab == "pending" else []
    in_group = {comment_id: number for number, group in enumerate(groups) for comment_id in group["ids"]}
    cards = [card(c) for c in page]
    for item in cards:
        item.group = in_group.get(item.comment.id)
    labels = list(current_app.extensions["moderation.service"].rules.thresholds)
    return render_template(
        "desk/queue.html", tab=tab, tabs=TABS, counts=counts, cards=cards, groups=groups, where=where, sort=sort,
        filter_args=_filter_args(where), next_cursor=next_cursor, labels=labels, verdicts=VERDICTS,
        first_page=not request.args.get("cursor"),
    )


def _groups(session, where: store.QueueFilter) -> list[dict]:
    """Near-duplicate groups among the riskiest held comments matching the filter."""
    candidates, _ = store.queue(session, where, sort="risk", limit=GROUP_CANDIDATES)
    found = group_similar([c.text for c in candidates], current_app.config["GROUP_SIMILARITY"])
    groups = []
    for members in found:
        comments = [candidates[i] for i in members]
        groups.append({
            "ids": [c.id for c in comments], "sample": comments[0], "size": len(comments),
            "authors": len({c.author_email or c.author_ip or c.author_name for c in comments}),
            "comments": comments,
        })
    return groups


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == "application/json"


def _conflict_message(session, comment: Comment) -> str:
    last = store.last_decision(session, comment.id)
    who = f" by {last.actor}" if last and last.actor != "model" else " by the model" if last else ""
    when = f" at {store.aware(last.created_at):%H:%M} UTC" if last else ""
    return f"Comment #{comment.id} was already {comment.status}{who}{when}; your decision was not applied."


def _ids() -> list[int]:
    ids = []
    for raw in request.form.getlist("ids"):
        if raw.isdigit() and 0 < int(raw) <= store.MAX_ID:
            ids.append(int(raw))
    return list(dict.fromkeys(ids))


def apply_verdict(ids: list[int], verdict: str, note: str | None, expected: str | None) -> tuple[list[Comment], list[str]]:
    """Decide each comment on its own; return those decided and a message for each that was not."""
    session = get_session()
    action, reason = VERDICTS[verdict]
    decided, problems = [], []
    for comment_id in ids:
        comment = store.get_comment(session, comment_id)
        if comment is None:
            problems.append(f"Comment #{comment_id} does not exist.")
            continue
        # The status the moderator saw when clicking; without one, a pending comment.
        current = expected if expected in (PENDING, PUBLISHED, REJECTED) else PENDING
        try:
            decided.append(store.decide(session, comment_id, actor=current_user().name, action=action, reason=reason,
                                        note=note, expected_status=current))
        except store.Conflict as conflict:
            problems.append(_conflict_message(session, conflict.comment))
        except LookupError:
            problems.append(f"Comment #{comment_id} does not exist.")
    return decided, problems


def _answer(decided: list[Comment], problems: list[str], summary: str):
    """JSON for the page's script, else flash messages and back to where the moderator was."""
    status = 409 if problems and not decided else 200
    if _wants_json():
        return jsonify({"decided": [c.id for c in decided], "problems": problems, "message": summary}), status
    if decided:
        flash(summary, "info")
    for problem in problems:
        flash(problem, "conflict")
    return redirect(safe_next(request.form.get("next")))


def _summary(decided: list[Comment], verdict: str) -> str:
    what = "approved" if verdict == "approve" else f"rejected ({verdict.replace('_', ' ')})"
    return f"{len(decided)} comment{'s' if len(decided) != 1 else ''} {what}."


@bp.post("/decide")
@signed_in()
def decide():
    """Decide the selected comments, or (scope=filter) every pending comment matching the filter."""
    verdict = request.form.get("verdict", "")
    if verdict not in VERDICTS:
        abort(400, "unknown verdict")
    note = (request.form.get("note") or "").strip()[:2000] or None
    if request.form.get("scope") == "filter":
        ids = store.matching_ids(get_session(), _filter(PENDING), MAX_BULK)
        expected = PENDING
    else:
        ids, expected = _ids(), request.form.get("expected")
    if not ids:
        if _wants_json():
            return jsonify({"decided": [], "problems": ["Nothing was selected."], "message": ""}), 422
        flash("Nothing was selected.", "error")
        return redirect(safe_next(request.form.get("next")))
    decided, problems = apply_verdict(ids, verdict, note, expected)
    return _answer(decided, problems, _summary(decided, verdict))


@bp.post("/ban")
@signed_in()
def ban():
    """Reject the comment and hold everything its author (email and IP address) sends from now on."""
    comment = store.get_comment(get_session(), int(request.form.get("id", "0") or 0)) if request.form.get("id", "").isdigit() else None
    if comment is None:
        abort(404, "no such comment")
    verdict = "spam" if comment.scores.get("spam", 0.0) >= comment.scores.get("toxic", 0.0) else "abuse"
    decided, problems = ([], []) if comment.status == REJECTED else apply_verdict([comment.id], verdict, request.form.get("note") or None, request.form.get("expected"))
    banned = bans.ban(get_session(), email=comment.author_email, ip=comment.author_ip, by=current_user().name,
                      reason=f"comment #{comment.id}")
    who = " and ".join(value for _, value in banned) or "this anonymous author (no email or IP address: nothing to ban)"
    return _answer(decided or [comment], problems, f"Comment #{comment.id} rejected; {who} banned: their comments will be held.")


@bp.post("/bans/lift")
@signed_in()
def lift_ban():
    kind, value = request.form.get("kind", ""), request.form.get("value", "")
    try:
        lifted = kind in bans.KINDS and bans.lift(get_session(), kind, value)
    except ValueError:
        lifted = False
    flash(f"Ban on {kind} {value} lifted." if lifted else f"There was no ban on {kind} {value}.", "info" if lifted else "error")
    return redirect(safe_next(request.form.get("next")))
