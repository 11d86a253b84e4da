"""Check incoming JSON bodies and turn them into plain values, naming every bad field.

Each string field has a defined answer for hostile input: too long, control characters
or lone surrogates (which no database can store as UTF-8) are 422 errors naming the
field; nothing half-checked reaches the database. The API's query-string filters are
checked the same way (`text_problem`). A body nested too deeply for the JSON parser is a
400, like any other body that is not JSON.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from moderation.errors import ApiError
from moderation.schema import STATUSES

# Unicode category Cc (C0 controls, DEL and the C1 controls U+0080-U+009F) except tab, LF and CR.
# Format characters (Cf: bidi marks, zero-width joiners) are real text and stay: text.normalize strips them for scoring.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")

ACTIONS = ("approve", "reject")
REASONS = ("spam", "abuse", "off_topic", "other")


@dataclass
class NewComment:
    text: str
    author: dict[str, str | None]
    article: dict[str, str | None]
    parent_id: int | None
    external_id: str | None


class Checker:
    """Collect field errors while reading a body, then raise them all at once."""

    def __init__(self):
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def object(self, body: dict, field: str, required: bool = False) -> dict:
        value = body.get(field)
        if value is None:
            if required:
                self.fail(field, "is required")
            return {}
        if not isinstance(value, dict):
            self.fail(field, "must be an object")
            return {}
        return value

    def string(self, body: dict, field: str, path: str, *, max_length: int, required: bool = False, allow_int: bool = False) -> str | None:
        value = body.get(field)
        if value is None:
            if required:
                self.fail(path, "is required")
            return None
        if allow_int and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.fail(path, "must be a string")
            return None
        problem = _characters_problem(value)
        if problem is None and required and not value.strip():
            problem = "must not be empty"
        if problem is None and len(value) > max_length:
            problem = f"is longer than {max_length} characters"
        if problem:
            self.fail(path, problem)
            return None
        return value

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(422, "the request has invalid fields", fields=self.errors)


def _characters_problem(value: str) -> str | None:
    if _SURROGATE.search(value):
        return "contains invalid Unicode (a lone surrogate)"
    if _CONTROL.search(value):
        return "contains control characters"
    return None


def text_problem(value: str, max_length: int) -> str | None:
    """What is wrong with a string from outside (a lone surrogate, control characters, its length), or None.

    The same checks as `Checker.string`, for the API's query-string filters: a NUL byte
    there would otherwise reach PostgreSQL, which refuses it (a 500, not a 422).
    """
    if (problem := _characters_problem(value)) is not None:
        return problem
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


def json_object(request) -> dict:
    """Return the request's JSON object body, or raise 415 / 400 in the shared shape.

    Every API endpoint that takes a JSON body reads it here: the parser recurses once per
    nesting level, so a body of a few thousand "[" raises RecursionError, not ValueError,
    and that too is a body that is not JSON (400), not a crash (500).
    """
    if not request.is_json:
        raise ApiError(415, "send the body as application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise ApiError(400, "the body is not valid JSON (it is nested too deeply)") from None
    if body is None and request.get_data().strip() != b"null":
        raise ApiError(400, "the body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", fields={"body": "must be an object"})
    return body


def _scheme(url: str) -> str | None:
    """The URL's scheme; None when urlsplit cannot read it at all ("http://[" raises ValueError)."""
    try:
        return urlsplit(url).scheme
    except ValueError:
        return None


def new_comment(body: dict, max_text_chars: int) -> NewComment:
    """Validate ``POST /api/v1/comments``."""
    check = Checker()
    text = check.string(body, "text", "text", max_length=max_text_chars, required=True)
    author_in = check.object(body, "author")
    article_in = check.object(body, "article")
    author = {
        "name": check.string(author_in, "name", "author.name", max_length=200),
        "email": check.string(author_in, "email", "author.email", max_length=320),
        "url": check.string(author_in, "url", "author.url", max_length=2000),
        "ip": check.string(author_in, "ip", "author.ip", max_length=64),
        "user_agent": check.string(author_in, "user_agent", "author.user_agent", max_length=1000),
    }
    if author["email"] and not _EMAIL.match(author["email"]):
        check.fail("author.email", "is not an email address")
    elif author["email"]:
        author["email"] = author["email"].lower()  # one author however it is capitalised: history, duplicates, bans
    if author["ip"]:
        try:
            author["ip"] = str(ipaddress.ip_address(author["ip"].strip()))
        except ValueError:
            check.fail("author.ip", "is not an IPv4 or IPv6 address")
    if author["url"] and _scheme(author["url"]) not in ("http", "https"):
        check.fail("author.url", "must be an http or https URL")
    article = {
        "id": check.string(article_in, "id", "article.id", max_length=200, allow_int=True),
        "url": check.string(article_in, "url", "article.url", max_length=2000),
        "title": check.string(article_in, "title", "article.title", max_length=500),
        "section": check.string(article_in, "section", "article.section", max_length=200),
    }
    parent_id = body.get("parent_id")
    if parent_id is not None and (not isinstance(parent_id, int) or isinstance(parent_id, bool) or not 1 <= parent_id < 2**63):
        check.fail("parent_id", "must be a positive integer")
        parent_id = None
    external_id = check.string(body, "external_id", "external_id", max_length=200, allow_int=True)
    check.raise_if_any()
    return NewComment(text, author, article, parent_id, external_id)


def decision(body: dict, path: str = "") -> tuple[str, str | None, str | None, str]:
    """Validate ``{action, reason?, note?, expected_status?}``; return (action, reason, note, expected_status)."""
    check = Checker()
    action = check.string(body, "action", path + "action", max_length=20, required=True)
    reason = check.string(body, "reason", path + "reason", max_length=20)
    note = check.string(body, "note", path + "note", max_length=2000)
    if action is not None and action not in ACTIONS:
        check.fail(path + "action", f"must be one of {', '.join(ACTIONS)}")
    if action == "reject" and reason is None:
        check.fail(path + "reason", f"is required to reject; one of {', '.join(REASONS)}")
    if reason is not None and reason not in REASONS:
        check.fail(path + "reason", f"must be one of {', '.join(REASONS)}")
    expected = check.string(body, "expected_status", path + "expected_status", max_length=20) or "pending"
    if expected not in STATUSES:
        check.fail(path + "expected_status", f"must be one of {', '.join(STATUSES)}")
    check.raise_if_any()
    return action, reason, note, expected
