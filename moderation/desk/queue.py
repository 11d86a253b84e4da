"""The queues and the decisions made on them: one comment, a selection, a whole filter, a group.

Decisions go through `store.decide_many` (one transaction for a whole filter), whose rule the API shares: the
first moderator wins, and the second is told who decided and when, not shown an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for

from moderation import bans, store, validation
from moderation.policy import thresholds_for
from moderation.db import get_session
from moderation.desk import bp
from moderation.desk.render import flagged, highlight, strongest
from moderation.desk.signin import current_user, safe_next, signed_in
from moderation.schema import PENDING, PUBLISHED, REJECTED, Ban, Comment
from moderation.similar import group_similar

TABS = {"pending": PENDING, "rejected": REJECTED, "published": PUBLISHED, "all": None}
# A verdict is what the moderator clicked; it maps onto the API's action and reason.
VERDICTS = {
    "approve": ("approve", None), "spam": ("reject", "spam"), "abuse": ("reject", "abuse"),
    "off_topic": ("reject", "off_topic"), "other": ("reject", "other"),
}
MAX_BULK = 1000  # the most comments one bulk action on a filter decides
GROUP_CANDIDATES = 1000  # held comments compared for near-duplicates
MAX_NOTE = 2000
DIGITS = re.compile(r"[0-9]{1,19}")  # an id as the desk writes it: "²" and "٣" pass str.isdigit(), never a form of ours
# Each text filter: its name in the form, and the column it must equal (whose length no longer value can match).
FILTERS = {"article": ("article", Comment.article_id), "section": ("section", Comment.article_section),
           "author": ("author email", Comment.author_email), "ip": ("IP", Comment.author_ip)}


def shown(value: str, limit: int = 60) -> str:
    """A value from outside, quoted for a message: control characters escaped, a long one cut short."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def id_arg(raw: str | None) -> int | None:
    """An id from a form or a link: 1 to `store.MAX_ID` in ASCII digits, else None."""
    if raw is None or not DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if 0 < value <= store.MAX_ID else None


def _filter(status: str | None) -> tuple[store.QueueFilter, list[str]]:
    """Read the queue filter from the query string (or a bulk form's hidden fields).

    Return it with what is wrong with the filters it had to leave out: control characters
    (PostgreSQL refuses a NUL byte), a value longer than its column, an IP address that is none.
    """
    values = request.values
    rules = current_app.extensions["moderation.service"].rules
    label = values.get("label") or None
    if label is not None and label not in rules.thresholds:
        label = None
    found, problems = {}, []
    for name, (title, column) in FILTERS.items():
        value = (values.get(name) or "").strip() or None
        if value is None:
            continue
        problem = validation.text_problem(value, column.type.length)
        if problem is None and name == "ip":
            try:
                value = bans.canonical("ip", value)
            except ValueError:
                problem = "is not an IP address"
        if problem:
            problems.append(f"The {title} filter {shown(value)} {problem}")
            continue
        found[name] = value
    where = store.QueueFilter(
        status=status, label=label, label_at=rules.thresholds.get(label, {}).get("review_at", 0.5) if label else 0.5, **found,
    )
    return where, problems


def _cursor(sort: str) -> str | None:
    """The page link's cursor in normal form (`store.normal_cursor`); None, with a notice, for any other."""
    try:
        return store.normal_cursor(request.args.get("cursor"), sort)
    except ValueError:
        flash("That page link is out of date; showing the first page.", "error")
        return None


def _filter_args(where: store.QueueFilter) -> dict:
    return {k: v for k, v in (("label", where.label), ("article", where.article), ("section", where.section),
                              ("author", where.author), ("ip", where.ip)) if v}


@dataclass
class Card:
    """A comment as the desk shows it."""

    comment: Comment
    segments: list = field(default_factory=list)
    group: int | None = None  # index of its near-duplicate group on this page, if any
    limits: dict = field(default_factory=dict)  # each label's review and reject thresholds for this comment
    strongest: dict = field(default_factory=dict)  # each marked label's heaviest term weight
    deciding: frozenset = frozenset()  # the labels whose thresholds decide


def card(comment: Comment) -> Card:
    """The comment with only the terms of the labels that flagged it marked, and its thresholds."""
    rules = current_app.extensions["moderation.service"].rules
    limits = thresholds_for(rules, comment.article_section)
    segments = highlight(comment.text, comment.terms, flagged(comment.scores or {}, comment.reasons or [], limits, rules.decision_labels))
    return Card(comment, segments, limits=limits, strongest=strongest(segments), deciding=frozenset(rules.decision_labels))


def effective_sort(sort: str, where: store.QueueFilter) -> str:
    """With a label filter, "riskiest first" means the highest score of that label first."""
    return "label" if sort == "risk" and where.label else sort


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
    where, problems = _filter(TABS[tab])
    for problem in problems:
        flash(f"{problem}; the filter ignores it.", "error")
    sort = request.args.get("sort") if request.args.get("sort") in ("risk", "age") else "risk"
    order = effective_sort(sort, where)
    cursor = _cursor(order)
    try:
        page, next_cursor = store.queue(session, where, sort=order, cursor=cursor, limit=current_app.config["DESK_PAGE_SIZE"])
    except (ValueError, TypeError, KeyError):
        flash("That page link is out of date; showing the first page.", "error")
        cursor = None
        page, next_cursor = store.queue(session, where, sort=order, limit=current_app.config["DESK_PAGE_SIZE"])
    counts = _counts(session, where)
    groups = _groups(session, where) if tab == "pending" else []
    in_group = {comment_id: number for number, group in enumerate(groups) for comment_id in group["ids"]}
    cards = [card(c) for c in page]
    for item in cards:
        item.group = in_group.get(item.comment.id)
    labels = list(current_app.extensions["moderation.service"].rules.thresholds)
    return render_template(
        "desk/queue.html", tab=tab, tabs=TABS, counts=counts, cards=cards, groups=groups, where=where, sort=sort,
        filter_args=_filter_args(where), next_cursor=next_cursor, labels=labels, verdicts=VERDICTS,
        first_page=not cursor, max_bulk=MAX_BULK,
    )


def _counts(session, where: store.QueueFilter) -> dict[str, int]:
    counts = store.count_matching(session, where)
    counts["all"] = sum(counts.values())
    return counts


@bp.get("/queue/counts")
@signed_in()
def queue_counts():
    """The tab counts for a filter (the queue page's query string), for the page's script to refresh after a decision."""
    where, _ = _filter(None)
    return jsonify(_counts(get_session(), where))


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
    return list(dict.fromkeys(i for i in map(id_arg, request.form.getlist("ids")) if i is not None))


def _note() -> tuple[str | None, str | None]:
    """The form's note (trimmed, at most MAX_NOTE characters) and what is wrong with it, if anything:
    control characters (a NUL byte PostgreSQL refuses) but tab and line breaks."""
    note = (request.form.get("note") or "").strip()[:MAX_NOTE] or None
    problem = validation.text_problem(note, MAX_NOTE) if note else None
    return (None, f"The note {problem}; nothing was decided.") if problem else (note, None)


def _refuse(message: str):
    """Decide nothing and say why: 422 for the page's script, else a message back where the moderator was."""
    if _wants_json():
        return jsonify({"decided": [], "problems": [message], "message": ""}), 422
    flash(message, "error")
    return redirect(safe_next(request.form.get("next")))


def apply_verdict(ids: list[int], verdict: str, note: str | None, expected: str | None) -> tuple[list[Comment], list[str], list[dict]]:
    """Decide the comments in one transaction; return those decided, a message for each that was not, and
    each comment someone else decided first, with its current status (for the page to show it as decided)."""
    session = get_session()
    action, reason = VERDICTS[verdict]
    # The status the moderator saw when clicking; without one, a pending comment.
    current = expected if expected in (PENDING, PUBLISHED, REJECTED) else PENDING
    result = store.decide_many(session, ids, actor=current_user().name, action=action, reason=reason, note=note, expected_status=current)
    conflicts = [{"id": comment.id, "status": comment.status, "message": _conflict_message(session, comment)} for comment in result.conflicts]
    problems = [conflict["message"] for conflict in conflicts] + [f"Comment #{comment_id} does not exist." for comment_id in result.missing]
    return result.decided, problems, conflicts


def _answer(decided: list[Comment], problems: list[str], summary: str, conflicts: list[dict] = ()):
    """JSON for the page's script, else flash messages and back to where the moderator was."""
    status = 409 if problems and not decided else 200
    if _wants_json():
        return jsonify({"decided": [c.id for c in decided], "statuses": {str(c.id): c.status for c in decided},
                        "problems": problems, "conflicts": list(conflicts), "message": summary}), status
    if decided:
        flash(summary, "info")
    for problem in problems:
        flash(problem, "conflict")
    return redirect(safe_next(request.form.get("next")))


def _summary(decided: list[Comment], verdict: str) -> str:
    what = "approved" if verdict == "approve" else f"rejected ({verdict.replace('_', ' ')})"
    return f"{len(decided):,} comment{'s' if len(decided) != 1 else ''} {what}."


@bp.post("/decide")
@signed_in()
def decide():
    """Decide the selected comments, or (scope=filter) every pending comment matching the filter."""
    verdict = request.form.get("verdict", "")
    if verdict not in VERDICTS:
        abort(400, "unknown verdict")
    note, problem = _note()
    if problem:
        return _refuse(problem)
    if request.form.get("scope") == "filter":
        where, problems = _filter(PENDING)
        if problems:  # left out, the filter would match more comments than the moderator chose
            return _refuse(f"{problems[0]}, so nothing was decided.")
        ids = store.matching_ids(get_session(), where, MAX_BULK, sort=effective_sort("risk", where))
        expected = PENDING
    else:
        ids, expected = _ids(), request.form.get("expected")
    if not ids:
        return _refuse("Nothing was selected.")
    decided, problems, conflicts = apply_verdict(ids, verdict, note, expected)
    summary = _summary(decided, verdict)
    if request.form.get("scope") == "filter" and len(ids) == MAX_BULK:
        left = store.count_matching(get_session(), where)[PENDING]
        if left:  # the cap stopped it: say so, so nobody believes the filter is done
            summary += f" At most {MAX_BULK:,} are decided at once: {left:,} more pending comment{'s' if left != 1 else ''} still match{'es' if left == 1 else ''} this filter."
    return _answer(decided, problems, summary, conflicts)


@bp.post("/ban")
@signed_in()
def ban():
    """Reject the comment and hold everything its author (email and IP address) sends from now on."""
    comment_id = id_arg(request.form.get("id"))
    comment = store.get_comment(get_session(), comment_id) if comment_id is not None else None
    if comment is None:
        abort(404, "no such comment")
    note, problem = _note()
    if problem:
        return _refuse(problem)
    verdict = "spam" if comment.scores.get("spam", 0.0) >= comment.scores.get("toxic", 0.0) else "abuse"
    decided, problems, conflicts = ([], [], []) if comment.status == REJECTED else apply_verdict([comment.id], verdict, note, request.form.get("expected"))
    banned = bans.ban(get_session(), email=comment.author_email, ip=comment.author_ip, by=current_user().name,
                      reason=f"comment #{comment.id}" + (f": {note}" if note else ""), comment_id=comment.id)
    who = " and ".join(value for _, value in banned) or "this anonymous author (no email or IP address: nothing to ban)"
    return _answer(decided or [comment], problems, f"Comment #{comment.id} rejected; {who} banned: their comments will be held.", conflicts)


@bp.post("/bans/lift")
@signed_in()
def lift_ban():
    """Lift a ban, with an optional reason; the ban history records who lifted it, when and why."""
    kind, value = request.form.get("kind", ""), request.form.get("value", "")
    if validation.text_problem(kind, 10) or validation.text_problem(value, Ban.value.type.length):
        # No ban holds control characters (a NUL byte PostgreSQL refuses) or a value longer than the column.
        flash(f"There was no ban on {shown(kind)} {shown(value)}.", "error")
        return redirect(safe_next(request.form.get("next")))
    reason = (request.form.get("reason") or "").strip() or None
    if reason and (problem := validation.text_problem(reason, bans.MAX_REASON)):
        flash(f"The reason {problem}; the ban on {kind} {value} stays.", "error")
        return redirect(safe_next(request.form.get("next")))
    try:
        lifted = kind in bans.KINDS and bans.lift(get_session(), kind, value, by=current_user().name, reason=reason)
    except ValueError:
        lifted = False
    flash(f"Ban on {kind} {value} lifted." if lifted else f"There was no ban on {kind} {value}.", "info" if lifted else "error")
    return redirect(safe_next(request.form.get("next")))
