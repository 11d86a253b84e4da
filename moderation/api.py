"""The JSON API under /api/v1: comments in, decisions out, the queue and the audit log.

Each view checks its input (moderation.validation), calls intake or store, and answers
in JSON; every failure is an `ApiError` in the one shared shape.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone

from flask import Blueprint, current_app, g, jsonify, request, url_for

from moderation import privacy, store, validation
from moderation.auth import require
from moderation.db import get_session, open_autocommit_session
from moderation.errors import ApiError
from moderation.intake import submit
from moderation.schema import STATUSES, AuditEntry, Comment

bp = Blueprint("api", __name__, url_prefix="/api/v1")
_DIGITS = re.compile(r"[0-9]{1,19}")
# The longest value each exact-match filter can equal: the column's length (moderation.schema).
FILTER_MAX_LENGTH = {name: column.type.length for name, column in (
    ("article", Comment.article_id), ("section", Comment.article_section), ("author", Comment.author_email),
    ("ip", Comment.author_ip), ("actor", AuditEntry.actor), ("action", AuditEntry.action))}


def _invalid(name: str, problem: str) -> ApiError:
    return ApiError(422, "the request has invalid fields", fields={name: problem})


def _iso(moment: datetime | None) -> str | None:
    return store.aware(moment).isoformat() if moment else None


def comment_json(comment: Comment, *, history: list[AuditEntry] | None = None) -> dict:
    """The public shape of a comment (and, when given, its decision history)."""
    body = {
        "id": comment.id,
        "external_id": comment.external_id,
        "status": comment.status,
        "decision": comment.decision,
        "discarded": comment.discarded,
        "scores": comment.scores,
        "reasons": comment.reasons,
        "terms": comment.terms,
        "model_version": comment.model_version,
        "text": comment.text,
        "author": {"name": comment.author_name, "email": comment.author_email, "url": comment.author_url, "ip": comment.author_ip},
        "article": {"id": comment.article_id, "url": comment.article_url, "title": comment.article_title, "section": comment.article_section},
        "parent_id": comment.parent_id,
        "created_at": _iso(comment.created_at),
        "updated_at": _iso(comment.updated_at),
    }
    if history is not None:
        body["history"] = [audit_json(entry) for entry in history]
    return body


def audit_json(entry: AuditEntry) -> dict:
    return {
        "id": entry.id, "comment_id": entry.comment_id, "actor": entry.actor, "action": entry.action,
        "reason": entry.reason, "note": entry.note, "previous_status": entry.previous_status,
        "new_status": entry.new_status, "scores": entry.scores, "model_version": entry.model_version,
        "created_at": _iso(entry.created_at),
    }


def _created(comment: Comment, status: int):
    response = jsonify(comment_json(comment))
    response.status_code = status
    response.headers["Location"] = url_for("api.get_comment", comment_id=comment.id)
    response.headers.update(g.pop("rate_limit_headers", None) or {})
    return response


def _admit(new: validation.NewComment) -> None:
    """The flood limit, asked by intake for a new comment (never for a retry): 429 when the author or address is over it."""
    g.rate_limit_headers = current_app.extensions["moderation.intake_limiter"].admit(new.author["email"], new.author["ip"])


@bp.before_request
def _intake_without_transactions():
    """Intake only reads, then writes the comment and its audit entry in one statement
    (`store.add_comment`), so it needs no transaction of its own: runs before the key's lookup."""
    if request.endpoint == "api.create_comment":
        open_autocommit_session()


@bp.post("/comments")
@require("site")
def create_comment():
    """Score, decide and store a reader comment; retries with the same external_id are safe.

    Checked in this order: key (401/403), body (415/400/422), a retry (200 with the stored
    comment), the flood limit (429), then scored and stored (201).
    """
    body = validation.json_object(request)
    new = validation.new_comment(body, current_app.config["MAX_TEXT_CHARS"])
    service = current_app.extensions["moderation.service"]
    comment, created = submit(
        get_session(), new, site=g.api_key.name, assessor=service.assessor, rules=service.rules,
        duplicate_window=timedelta(seconds=current_app.config["DUPLICATE_WINDOW_SECONDS"]), admit=_admit,
    )
    return _created(comment, 201 if created else 200)


def _comment_or_404(comment_id: int) -> Comment:
    comment = store.get_comment(get_session(), comment_id) if comment_id <= store.MAX_ID else None
    if comment is None:
        raise ApiError(404, f"no comment {comment_id}")
    if g.api_key.role == "site" and comment.site != g.api_key.name:
        raise ApiError(404, f"no comment {comment_id}")  # a site sees only its own readers' comments
    return comment


@bp.get("/comments/<int:comment_id>")
@require("site", "moderator")
def get_comment(comment_id: int):
    """Current status and decision history, so a site can poll a held comment."""
    comment = _comment_or_404(comment_id)
    return jsonify(comment_json(comment, history=store.history_of(get_session(), comment_id)))


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw):
        raise ApiError(422, "the request has invalid fields", fields={name: "must be an integer"})
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(422, "the request has invalid fields", fields={name: f"must be between {low} and {high}"})
    return value


def _text_arg(name: str) -> str | None:
    """An exact-match filter from the query string, checked like a body's string field: no control
    characters (PostgreSQL refuses a NUL byte), no lone surrogates, at most the column's length."""
    raw = request.args.get(name)
    if raw is not None and (problem := validation.text_problem(raw, FILTER_MAX_LENGTH[name])):
        raise _invalid(name, problem)
    return raw


def _ip_arg() -> str | None:
    """Compare addresses as stored: normalised, so 2001:DB8::1 finds 2001:db8::1."""
    raw = _text_arg("ip")  # ipaddress takes a scope id ("fe80::1%eth0") with any character in it
    try:
        return str(ipaddress.ip_address(raw.strip())) if raw else None
    except ValueError:
        raise ApiError(422, "the request has invalid fields", fields={"ip": "is not an IPv4 or IPv6 address"}) from None


def _cursor_arg(sort: str) -> str | None:
    """The queue's cursor in normal form (`store.normal_cursor`); 422 for one this API did not issue."""
    try:
        return store.normal_cursor(request.args.get("cursor"), sort)
    except ValueError:
        raise _invalid("cursor", "is not a cursor this API issued") from None


def _choice_arg(name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = request.args.get(name, default)
    if value is not None and value not in choices:
        raise ApiError(422, "the request has invalid fields", fields={name: f"must be one of {', '.join(choices)}"})
    return value


@bp.get("/queue")
@require("moderator")
def queue():
    """Comments awaiting a person, filtered and sorted, one keyset page at a time."""
    service = current_app.extensions["moderation.service"]
    label = _choice_arg("label", tuple(service.rules.thresholds) or ("spam", "toxic"), None)
    older = _int_arg("older_than", -1, 0, 10**8)
    newer = _int_arg("newer_than", -1, 0, 10**8)
    where = store.QueueFilter(
        status=_choice_arg("status", STATUSES, "pending"),
        label=label,
        label_at=service.rules.thresholds.get(label, {}).get("review_at", 0.5) if label else 0.5,
        article=_text_arg("article"),
        section=_text_arg("section"),
        author=_text_arg("author"),
        ip=_ip_arg(),
        older_than=timedelta(seconds=older) if older >= 0 else None,
        newer_than=timedelta(seconds=newer) if newer >= 0 else None,
    )
    sort = _choice_arg("sort", ("risk", "age"), "risk")
    cursor, limit = _cursor_arg(sort), _int_arg("limit", 50, 1, 200)
    try:
        page, next_cursor = store.queue(get_session(), where, sort=sort, cursor=cursor, limit=limit)
    except (ValueError, TypeError, KeyError):
        raise _invalid("cursor", "is not a cursor this API issued") from None
    return jsonify({"comments": [comment_json(c) for c in page], "next_cursor": next_cursor})


def _decide(comment_id: int, body: dict, path: str = "") -> Comment:
    action, reason, note, expected = validation.decision(body, path)
    if comment_id > store.MAX_ID:
        raise ApiError(404, f"no comment {comment_id}")
    try:
        return store.decide(get_session(), comment_id, actor=g.api_key.name, action=action, reason=reason, note=note, expected_status=expected)
    except LookupError:
        raise ApiError(404, f"no comment {comment_id}") from None
    except store.Conflict as conflict:
        raise ApiError(409, f"comment {comment_id} is already {conflict.comment.status}; nothing was changed",
                       extra={"comment": comment_json(conflict.comment)}) from None


@bp.post("/comments/<int:comment_id>/decision")
@require("moderator")
def decide(comment_id: int):
    """A moderator approves or rejects; the first of two concurrent decisions wins."""
    comment = _decide(comment_id, validation.json_object(request))
    return jsonify(comment_json(comment, history=store.history_of(get_session(), comment_id)))


@bp.post("/decisions")
@require("moderator")
def decide_many():
    """Decide several comments; each one succeeds or fails on its own."""
    body = validation.json_object(request)
    items = body.get("decisions")
    if not isinstance(items, list) or not items or len(items) > 500:
        raise ApiError(422, "the request has invalid fields", fields={"decisions": "must be a list of 1 to 500 decisions"})
    for index, item in enumerate(items):
        path = f"decisions[{index}]."
        comment_id = item.get("comment_id") if isinstance(item, dict) else None
        if not isinstance(comment_id, int) or isinstance(comment_id, bool) or not 1 <= comment_id <= store.MAX_ID:
            raise ApiError(422, "the request has invalid fields", fields={path + "comment_id": "must be a comment id (a positive integer)"})
    decisions = [validation.decision(item, f"decisions[{index}].") for index, item in enumerate(items)]  # all checked before any change
    ids = [item["comment_id"] for item in items]
    if len(set(ids)) == len(ids):  # the same decision for many comments: one transaction each (`store.decide_many`)
        batches: dict[tuple, list[int]] = {}
        for index, decision in enumerate(decisions):
            batches.setdefault(decision, []).append(index)
        work = list(batches.items())
    else:  # a comment decided twice: one at a time, in the order given, so the first wins
        work = [(decision, [index]) for index, decision in enumerate(decisions)]
    results: list[dict] = [{}] * len(items)
    for (action, reason, note, expected), indexes in work:
        done = store.decide_many(get_session(), [ids[i] for i in indexes], actor=g.api_key.name, action=action, reason=reason, note=note,
                                 expected_status=expected)
        found = {c.id: ("decided", c) for c in done.decided} | {c.id: ("conflict", c) for c in done.conflicts}
        for i in indexes:
            result, comment = found.get(ids[i], ("not_found", None))
            results[i] = {"comment_id": ids[i], "result": result, "comment": comment_json(comment) if comment is not None else None}
    return jsonify({"results": results})


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))  # an unencoded "+" in a query arrives as a space
    except ValueError:
        raise _invalid(name, "must be an ISO 8601 date or time") from None
    try:
        return store.aware(moment).astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC; 9999-12-31T23:59:59-14:00 after 9999
        raise _invalid(name, "is outside the years 1 to 9999 in UTC") from None


@bp.get("/audit")
@require("moderator")
def audit():
    """The append-only log of every decision, newest first."""
    comment_id = _int_arg("comment_id", 0, 0, 2**62) or None
    before = _int_arg("before_id", 0, 0, 2**62) or None
    entries = store.audit(
        get_session(), comment_id=comment_id, actor=_text_arg("actor"), action=_text_arg("action"),
        since=_time_arg("since"), until=_time_arg("until"), before_id=before, limit=_int_arg("limit", 100, 1, 500),
    )
    return jsonify({"entries": [audit_json(e) for e in entries], "next_before_id": entries[-1].id if entries else None})


@bp.post("/erasures")
@require("admin")
def erase_reader():
    """Remove one reader's personal data (moderation.privacy.erase); texts and decisions stay, and the answer counts what changed."""
    body = validation.json_object(request)
    try:
        address = privacy.checked_email(body.get("email"))
    except ValueError as error:
        raise ApiError(422, "the request has invalid fields", fields={"email": str(error)}) from None
    return jsonify(privacy.erase(get_session(), address, actor=g.api_key.name).as_json())
