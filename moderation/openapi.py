"""The OpenAPI 3.1 document of the JSON API, served at GET /api/v1/openapi.json (no key needed).

It is built for each request from this app's own limits (text length, body size, the
queue's labels from the loaded model), so it describes what this installation really
accepts; tests/test_openapi.py fails when a route, status or field drifts from it.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from moderation.api import FILTER_MAX_LENGTH
from moderation.errors import CODES
from moderation.privacy import ERASE
from moderation.schema import STATUSES
from moderation.validation import ACTIONS, REASONS

bp = Blueprint("openapi", __name__)

JSON = "application/json"
ID_MAX = 2**63 - 1  # ids are BIGINT; larger ones are not ids this API ever issues
QUERY_ID_MAX = 2**62  # what api._int_arg accepts for comment_id / before_id
NO_CONTROL = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"  # validation._CONTROL, negated
EMAIL = "^[^@\\s]{1,64}@[^@\\s]{1,255}$"  # validation._EMAIL
MODEL_ACTIONS = ("accept", "review", "reject")


# --- small helpers --------------------------------------------------------------------


def ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def nullable(schema: dict) -> dict:
    """The schema, or JSON null (OpenAPI 3.1 spells ``nullable`` as a type list)."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    types = [schema["type"]] if isinstance(schema["type"], str) else list(schema["type"])
    out = {**schema, "type": [*types, "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def obj(properties: dict, required: list[str] | None = None, *, closed: bool = True, **extra) -> dict:
    """An object schema; ``closed`` objects are answers, whose keys are exactly these."""
    schema = {"type": "object", "properties": properties, "required": list(properties) if required is None else required}
    if closed:
        schema["additionalProperties"] = False
    return {**schema, **extra}


def text_field(max_length: int, description: str = "", **extra) -> dict:
    """An incoming string as validation.Checker.string checks it: length, no control characters."""
    schema = {"type": "string", "maxLength": max_length, "pattern": NO_CONTROL, **extra}
    if description:
        schema["description"] = description
    return schema


def error_schema(code: str, *, fields: bool = False, comment: bool = False) -> dict:
    """The one error shape (errors.error_body) with its code fixed for one status."""
    properties = {"code": {"type": "string", "const": code}, "message": {"type": "string", "minLength": 1}}
    required = ["code", "message"]
    if fields:
        properties["fields"] = ref("schemas", "FieldErrors")
        required.append("fields")
    if comment:
        properties["comment"] = ref("schemas", "Comment")
        required.append("comment")
    return obj({"error": obj(properties, required)})


def error_response(status: int, description: str, *, fields: bool = False, comment: bool = False, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {JSON: {"schema": error_schema(CODES[status], fields=fields, comment=comment)}}}
    if headers:
        response["headers"] = headers
    return response


def json_response(description: str, schema: dict, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def errors(*statuses: int) -> dict:
    """The shared error responses, by status."""
    return {str(status): ref("responses", CODES[status]) for status in statuses}


def query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def filter_query(name: str, max_length: int, description: str) -> dict:
    """An exact-match filter, checked as api._text_arg checks it: no control characters, at most the column's length."""
    return query(name, text_field(max_length), description)


def json_body(schema_name: str, description: str) -> dict:
    return {"required": True, "description": description, "content": {JSON: {"schema": ref("schemas", schema_name)}}}


# --- schemas ----------------------------------------------------------------------------


def comment_schema(*, history: bool) -> dict:
    """api.comment_json: the public shape of a comment, optionally with its audit history."""
    properties = {
        "id": {"type": "integer", "minimum": 1, "maximum": ID_MAX},
        "external_id": nullable({"type": "string", "maxLength": 200, "description": "The site's own id (integers are returned as strings)."}),
        "status": {"type": "string", "enum": list(STATUSES), "description": "Where the comment is now."},
        "decision": {"type": "string", "enum": list(MODEL_ACTIONS), "description": "What the policy decided at intake."},
        "discarded": {"type": "boolean", "description": "Certain spam: rejected and kept out of every queue."},
        "scores": ref("schemas", "Scores"),
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "Why the policy decided as it did."},
        "terms": {"type": "array", "items": ref("schemas", "Term"), "description": "Spans that raised each label's score, strongest first."},
        "model_version": nullable({"type": "string", "description": "null when no model could score the comment."}),
        "text": {"type": "string"},
        "author": obj({name: nullable({"type": "string"}) for name in ("name", "email", "url", "ip")},
                      description="As sent, but the email lower-cased and the IP address normalised; the user agent is stored but never returned."),
        "article": obj({name: nullable({"type": "string"}) for name in ("id", "url", "title", "section")}),
        "parent_id": nullable({"type": "integer", "minimum": 1, "maximum": ID_MAX}),
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }
    if history:
        properties["history"] = {"type": "array", "items": ref("schemas", "AuditEntry"),
                                 "description": "Every audit entry of the comment, oldest first."}
    return obj(properties)


def audit_entry_schema() -> dict:
    """api.audit_json: one append-only audit log row."""
    return obj({
        "id": {"type": "integer", "minimum": 1, "maximum": ID_MAX},
        "comment_id": {"type": "integer", "minimum": 1, "maximum": ID_MAX},
        "actor": {"type": "string", "description": '"model", or the name of the moderator key that decided.'},
        "action": {"type": "string", "enum": sorted(set(MODEL_ACTIONS) | set(ACTIONS) | {ERASE}),
                   "description": "accept/review/reject by the model at intake; approve/reject by a moderator; "
                                  "erase: a reader's personal data was erased (POST /api/v1/erasures), the status unchanged."},
        "reason": nullable({"type": "string", "enum": list(REASONS),
                            "description": "null for the model's entry and for approvals without a reason."}),
        "note": nullable({"type": "string", "description": "The moderator's note (email addresses masked as j***@example.org), or the model's reasons joined by '; '."}),
        "previous_status": nullable({"type": "string", "enum": list(STATUSES), "description": "null for the intake entry."}),
        "new_status": {"type": "string", "enum": list(STATUSES)},
        "scores": ref("schemas", "Scores"),
        "model_version": nullable({"type": "string"}),
        "created_at": {"type": "string", "format": "date-time"},
    })


def decision_fields() -> dict:
    """validation.decision plus api._decide's expected_status."""
    return {
        "action": {"type": "string", "enum": list(ACTIONS)},
        "reason": nullable({"type": "string", "enum": list(REASONS), "description": "Required to reject; optional to approve."}),
        "note": nullable(text_field(2000)),
        "expected_status": {"type": "string", "enum": list(STATUSES), "default": "pending",
                            "description": "Decide only if the comment is still in this status; otherwise 409."},
    }


REASON_TO_REJECT = {"if": {"properties": {"action": {"const": "reject"}}, "required": ["action"]},
                    "then": {"properties": {"reason": {"type": "string"}}, "required": ["reason"]}}


def schemas(max_text_chars: int) -> dict:
    optional = lambda schema: nullable(schema)  # noqa: E731  null means "not given"
    new_comment = obj({
        "text": text_field(max_text_chars, "Must contain a non-space character.", minLength=1),
        "author": optional(obj({
            "name": optional(text_field(200)),
            "email": optional(text_field(320, allOf=[{"pattern": EMAIL}])),
            "url": optional(text_field(2000, "An http or https URL.")),
            "ip": optional(text_field(64, "An IPv4 or IPv6 address; stored in normal form.")),
            "user_agent": optional(text_field(1000)),
        }, [], closed=False)),
        "article": optional(obj({
            "id": optional({"type": ["string", "integer"], "maxLength": 200, "pattern": NO_CONTROL, "description": "Integers are kept as strings."}),
            "url": optional(text_field(2000)),
            "title": optional(text_field(500)),
            "section": optional(text_field(200)),
        }, [], closed=False)),
        "parent_id": optional({"type": "integer", "minimum": 1, "maximum": ID_MAX, "description": "An existing comment's id (422 otherwise)."}),
        "external_id": optional({"type": ["string", "integer"], "maxLength": 200, "pattern": NO_CONTROL,
                                 "description": "The site's own id: a retry with the same external_id returns the original comment (200)."}),
    }, ["text"], closed=False)
    decision = obj(decision_fields(), ["action"], closed=False, **REASON_TO_REJECT)
    bulk_item = obj({"comment_id": {"type": "integer"}, **decision_fields()}, ["comment_id", "action"], closed=False, **REASON_TO_REJECT)
    result = lambda name, comment: obj({"comment_id": {"type": "integer"}, "result": {"const": name}, "comment": comment})  # noqa: E731
    return {
        "Scores": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                   "description": "Score per label, 0 to 1; empty when no model scored the comment."},
        "Term": obj({"text": {"type": "string"}, "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
                     "label": {"type": "string"}, "weight": {"type": "number"}}),
        "Comment": comment_schema(history=False),
        "CommentWithHistory": comment_schema(history=True),
        "AuditEntry": audit_entry_schema(),
        "FieldErrors": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"},
                        "description": 'Field path (e.g. "author.email", "decisions[3].reason") to what is wrong with it.'},
        "Error": obj({"error": obj({"code": {"type": "string", "enum": sorted(set(CODES.values()))}, "message": {"type": "string"},
                                    "fields": ref("schemas", "FieldErrors"), "comment": ref("schemas", "Comment")}, ["code", "message"])},
                     description="The one error shape; each response below fixes the code."),
        "NewComment": new_comment,
        "Decision": decision,
        "BulkDecisions": obj({"decisions": {"type": "array", "minItems": 1, "maxItems": 500, "items": bulk_item}}, closed=False,
                             description="Every item is checked before any is applied; expected_status is checked per item as it is applied."),
        "BulkResult": {"oneOf": [
            result("decided", ref("schemas", "Comment")),
            result("conflict", ref("schemas", "Comment")),
            result("not_found", {"type": "null"}),
        ]},
        "Queue": obj({"comments": {"type": "array", "items": ref("schemas", "Comment")},
                      "next_cursor": nullable({"type": "string", "description": "Pass as ?cursor= for the next page; null on the last page."})}),
        "Erasure": obj({"email": {"type": "string", "maxLength": 320, "pattern": EMAIL, "description": "The reader's address, in any case."}},
                       closed=False),
        "Erased": obj({
            "comments": {"type": "integer", "minimum": 0, "description": "Comments whose author name, email, URL, IP address and user agent were removed."},
            "texts_redacted": {"type": "integer", "minimum": 0, "description": "Comments (anyone's) whose text mentioned the address, now masked."},
            "bans_removed": {"type": "integer", "minimum": 0, "description": "Bans on the address, on its comments' IP addresses, or mentioning it."},
            "audit_notes_mentioning": {"type": "integer", "minimum": 0,
                                       "description": "Audit notes that mention the address: the log is append-only, so they are left unchanged."},
        }),
        "AuditPage": obj({"entries": {"type": "array", "items": ref("schemas", "AuditEntry")},
                          "next_before_id": nullable({"type": "integer", "description": "The last entry's id: pass as ?before_id= for older "
                                                                                        "entries; null when the page is empty."})}),
    }


# --- Akismet's wire protocol (moderation/akismet.py) -----------------------------------------

FORM = "application/x-www-form-urlencoded"
AKISMET_FIELDS = {
    "api_key": "A site API key of this service (Akismet's key). `key` is accepted too.",
    "key": "The same key, under verify-key's older name.",
    "blog": "The site's front page URL (required, not checked).",
    "user_ip": "The commenter's IP address (required except for verify-key).",
    "user_agent": "The commenter's browser.", "referrer": "Accepted and ignored.", "permalink": "The article's URL.",
    "comment_type": "Accepted and ignored.", "comment_author": "The commenter's name.", "comment_author_email": "The commenter's email.",
    "comment_author_url": "An http or https URL.", "comment_content": "The comment (required except for verify-key).",
    "comment_date_gmt": "Accepted and ignored.", "blog_lang": "Accepted and ignored.", "blog_charset": "Accepted and ignored.",
    "is_test": "1 or true: decide and answer, but store nothing and learn nothing.", "recheck_reason": "Accepted and ignored.",
}


def akismet_operation(operation_id: str, summary: str, description: str, answers: list[str], *, verdict: bool, max_body_bytes: int) -> dict:
    """One Akismet call: a form in, a plain-text answer out, HTTP 200 even for a bad key or a missing field."""
    fields = ("key", "api_key", "blog") if operation_id == "akismetVerifyKey" else tuple(AKISMET_FIELDS)
    help_header = {"description": "Why the answer is `invalid`, `Missing required field: NAME.` or `Invalid value: NAME.`",
                   "schema": {"type": "string"}}
    headers = {"X-akismet-debug-help": help_header}
    if operation_id != "akismetVerifyKey":
        headers["X-akismet-error"] = {"description": "Sent with `Invalid value: NAME.`: plugins hold such a comment for a person.",
                                      "schema": {"type": "string"}}
    if verdict:
        headers |= {
            "X-akismet-pro-tip": {"description": "`discard` with `true` for certain spam (rejected and kept out of every queue).",
                                  "schema": {"type": "string", "const": "discard"}},
            "X-Moderation-Decision": {"description": "Not Akismet's: accept, review (answered `false`: the site's own moderation "
                                                     "settings then apply, and our moderators see it) or reject.",
                                      "schema": {"type": "string", "enum": list(MODEL_ACTIONS)}},
            "X-Moderation-Comment-Id": {"description": "Not Akismet's: the stored comment's id (not sent for is_test).",
                                        "schema": {"type": "integer", "minimum": 1, "maximum": ID_MAX}},
        }
    return {"post": {
        "operationId": operation_id, "tags": ["akismet"], "security": [], "summary": summary,
        "description": description + " The key travels in the form, as Akismet's does; every answer is text/plain, "
                                     "except a 503 (the database cannot answer now), which is the API's JSON error.",
        "requestBody": {"required": True, "description": f"At most {max_body_bytes} bytes.", "content": {FORM: {"schema": {
            "type": "object", "properties": {name: {"type": "string", "description": AKISMET_FIELDS[name]} for name in fields}}}}},
        "responses": {
            "200": {"description": "Akismet's answer: " + ", ".join(f"`{a}`" for a in answers) + ".", "headers": headers,
                    "content": {"text/plain": {"schema": {"type": "string", "examples": answers}}}},
            "413": {"description": f"`Request too large.`: the body is larger than {max_body_bytes} bytes.",
                    "content": {"text/plain": {"schema": {"type": "string", "const": "Request too large."}}}},
            **errors(503),
        },
    }}


def akismet_paths(max_body_bytes: int) -> dict:
    problems = ["invalid", "Missing required field: user_ip.", "Invalid value: comment_author_email."]
    thanks = "Thanks for making the web a better place."
    submission = ("Record the site's report as a moderator-like decision on the stored comment (stored first if it was never "
                  "checked): a training label. is_test reports change nothing.")
    return {
        "/1.1/verify-key": akismet_operation(
            "akismetVerifyKey", "Akismet: is this a live site key?", "`valid` for a live site key and a blog URL, else `invalid`.",
            ["valid", "invalid"], verdict=False, max_body_bytes=max_body_bytes),
        "/1.1/comment-check": akismet_operation(
            "akismetCommentCheck", "Akismet: store, score and decide a comment",
            "The same intake as POST /api/v1/comments. `true`: we reject it; `false`: we accept it or hold it for review. "
            "The same text from the same author email and IP address is answered from the stored comment's current status.",
            ["true", "false", *problems], verdict=True, max_body_bytes=max_body_bytes),
        "/1.1/submit-spam": akismet_operation(
            "akismetSubmitSpam", "Akismet: the site says it is spam (reject as spam)", submission, [thanks, *problems],
            verdict=False, max_body_bytes=max_body_bytes),
        "/1.1/submit-ham": akismet_operation(
            "akismetSubmitHam", "Akismet: the site says it is not spam (approve)", submission, [thanks, *problems],
            verdict=False, max_body_bytes=max_body_bytes),
    }


# --- the document -------------------------------------------------------------------------


def webhook_paths(max_body_bytes: int) -> dict:
    """webhook_api: a site key manages its own webhook endpoints."""
    from moderation.webhooks import EVENTS

    site_only = "Needs a site key (a moderator key gets 403); a site sees only its own endpoints."
    webhook_id = {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX}}
    events = {"type": "array", "items": {"type": "string", "enum": list(EVENTS)}, "minItems": 1}
    endpoint = {
        "id": {"type": "integer", "minimum": 1, "maximum": ID_MAX}, "url": {"type": "string"}, "events": events,
        "created_at": {"type": "string", "format": "date-time"}, "failures": {"type": "integer", "minimum": 0,
                                                                             "description": "Failed deliveries in a row."},
        "disabled": {"type": "boolean"}, "disabled_reason": nullable({"type": "string"}),
    }
    new = obj({"url": text_field(2000, "An http or https URL that accepts POSTed events, at a public address: loopback, private-network, "
                                       "link-local (cloud metadata) and reserved addresses are refused with 422, in any notation, "
                                       "and so is a host name resolving to one. Redirects are never followed."),
               "events": {**events, "description": "Default: all of them."}}, ["url"], closed=False)
    not_found = {"404": {"description": "No such webhook for this site.", "content": {JSON: {"schema": error_schema(CODES[404])}}}}
    return {
        "/api/v1/webhooks": {
            "post": {
                "operationId": "addWebhook", "tags": ["webhooks"], "x-roles": ["site"], "summary": "Register a webhook endpoint",
                "description": f"{site_only} The answer carries the signing secret: the only time it is shown.",
                "requestBody": {"required": True, "description": f"At most {max_body_bytes} bytes.", "content": {JSON: {"schema": new}}},
                "responses": {"201": json_response("Registered.", obj({**endpoint, "secret": {"type": "string"}})),
                              **errors(400, 401, 403, 413, 415, 422, 503)},
            },
            "get": {
                "operationId": "listWebhooks", "tags": ["webhooks"], "x-roles": ["site"], "summary": "This site's endpoints",
                "description": site_only,
                "responses": {"200": json_response("Every endpoint, removed ones too.", obj({"webhooks": {"type": "array", "items": obj(endpoint)}})),
                              **errors(401, 403, 503)},
            },
        },
        "/api/v1/webhooks/{webhook_id}": {"delete": {
            "operationId": "removeWebhook", "tags": ["webhooks"], "x-roles": ["site"], "summary": "Stop sending to an endpoint",
            "description": f"{site_only} Its delivery log stays readable.", "parameters": [webhook_id],
            "responses": {"204": {"description": "Removed."}, **errors(401, 403, 503), **not_found},
        }},
        "/api/v1/webhooks/{webhook_id}/deliveries": {"get": {
            "operationId": "webhookDeliveries", "tags": ["webhooks"], "x-roles": ["site"], "summary": "An endpoint's delivery log",
            "description": f"{site_only} The latest 100 attempts, newest first.", "parameters": [webhook_id],
            "responses": {"200": json_response("The attempts.", obj({"deliveries": {"type": "array", "items": obj({
                "id": {"type": "integer"}, "event_id": {"type": "integer", "description": "The event's id, as in its body."},
                "attempted_at": {"type": "string", "format": "date-time"}, "status_code": nullable({"type": "integer"}),
                "error": nullable({"type": "string"}), "duration_ms": {"type": "number"},
            })}})), **errors(401, 403, 503), **not_found},
        }},
    }


def build_document(*, labels: tuple[str, ...], max_text_chars: int, max_body_bytes: int, rate_limit: str) -> dict:
    """The whole document for an app with these limits and queue labels."""
    comment_id = {"name": "comment_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX}}
    rate_headers = {
        "X-RateLimit-Limit": ref("headers", "X-RateLimit-Limit"),
        "X-RateLimit-Remaining": ref("headers", "X-RateLimit-Remaining"),
        "X-RateLimit-Reset": ref("headers", "X-RateLimit-Reset"),
        "Retry-After": {"description": "Seconds until the window resets (sent on every rate-limited answer).",
                        "schema": {"type": "integer", "minimum": 0}},
    }
    created_headers = {"Location": ref("headers", "Location"), **rate_headers}
    moderator_only = "Needs a moderator key (a site key gets 403)."
    paths = {
        "/api/v1/comments": {"post": {
            "operationId": "createComment", "tags": ["comments"], "x-roles": ["site"],
            "summary": "Score, decide and store a reader comment",
            "description": f"Needs a site key (a moderator key gets 403). Rate-limited to {rate_limit} per author email and per "
                           "IP address; comments without them are not limited. Checked in this order: key, body, retry (a retry "
                           "is never limited nor counted), rate limit (a refused comment counts against neither limit).",
            "requestBody": json_body("NewComment", f"At most {max_body_bytes} bytes."),
            "responses": {
                "201": json_response("Stored and decided.", ref("schemas", "Comment"), created_headers),
                "200": json_response("A retry: this site already sent this external_id; the original comment, unchanged.",
                                     ref("schemas", "Comment"), created_headers),
                **errors(400, 401, 403, 413, 415, 422, 429, 503),
            },
        }},
        "/api/v1/comments/{comment_id}": {"get": {
            "operationId": "getComment", "tags": ["comments"], "x-roles": ["site", "moderator"],
            "summary": "A comment's status and decision history",
            "description": "Any site or moderator key (an admin key gets 403); a site sees only its own readers' comments.",
            "parameters": [comment_id],
            "responses": {"200": json_response("The comment and its history.", ref("schemas", "CommentWithHistory")),
                          **errors(401, 403, 404, 503)},
        }},
        "/api/v1/comments/{comment_id}/decision": {"post": {
            "operationId": "decideComment", "tags": ["decisions"], "x-roles": ["moderator"],
            "summary": "Approve or reject a comment",
            "description": f"{moderator_only} The first of two concurrent decisions wins; the other gets 409.",
            "parameters": [comment_id], "requestBody": json_body("Decision", f"At most {max_body_bytes} bytes."),
            "responses": {"200": json_response("Decided; the comment and its history.", ref("schemas", "CommentWithHistory")),
                          **errors(400, 401, 403, 404, 409, 413, 415, 422, 503)},
        }},
        "/api/v1/decisions": {"post": {
            "operationId": "decideMany", "tags": ["decisions"], "x-roles": ["moderator"],
            "summary": "Decide up to 500 comments; each succeeds or fails on its own", "description": moderator_only,
            "requestBody": json_body("BulkDecisions", f"At most {max_body_bytes} bytes."),
            "responses": {"200": json_response("One result per decision, in order.",
                                               obj({"results": {"type": "array", "items": ref("schemas", "BulkResult")}})),
                          **errors(400, 401, 403, 413, 415, 422, 503)},
        }},
        "/api/v1/queue": {"get": {
            "operationId": "queue", "tags": ["queue"], "x-roles": ["moderator"],
            "summary": "Comments awaiting a person, one keyset page at a time",
            "description": f"{moderator_only} Discarded comments are never listed.",
            "parameters": [
                query("status", {"type": "string", "enum": list(STATUSES), "default": "pending"}, "Comments in this status."),
                query("label", {"type": "string", "enum": list(labels)}, "Only comments whose score for this label reaches its review threshold."),
                filter_query("article", FILTER_MAX_LENGTH["article"], "Exact article id."),
                filter_query("section", FILTER_MAX_LENGTH["section"], "Article section, in any capitals."),
                filter_query("author", FILTER_MAX_LENGTH["author"], "Author email, in any capitals."),
                filter_query("ip", FILTER_MAX_LENGTH["ip"], "Exact author IP address (any form; compared in normal form)."),
                query("older_than", {"type": "integer", "minimum": 0, "maximum": 10**8}, "Only comments at least this many seconds old."),
                query("newer_than", {"type": "integer", "minimum": 0, "maximum": 10**8}, "Only comments at most this many seconds old."),
                query("sort", {"type": "string", "enum": ["risk", "age"], "default": "risk"}, "risk: highest risk first; age: oldest first."),
                query("cursor", {"type": "string"}, "next_cursor from the previous page, with the same filters and sort "
                                                    "(any other string: 422 naming cursor)."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Page size."),
            ],
            "responses": {"200": json_response("One page.", ref("schemas", "Queue")), **errors(401, 403, 422, 503)},
        }},
        "/api/v1/audit": {"get": {
            "operationId": "audit", "tags": ["audit"], "x-roles": ["moderator"],
            "summary": "The append-only decision log, newest first", "description": moderator_only,
            "parameters": [
                query("comment_id", {"type": "integer", "minimum": 0, "maximum": QUERY_ID_MAX}, "Entries of this comment (0: all)."),
                filter_query("actor", FILTER_MAX_LENGTH["actor"], '"model" or a moderator key name.'),
                query("action", text_field(FILTER_MAX_LENGTH["action"], examples=sorted(set(MODEL_ACTIONS) | set(ACTIONS) | {ERASE})),
                      "Exact action."),
                query("since", {"type": "string"}, "ISO 8601 date or date-time (inclusive); without an offset, UTC. "
                                                   "It must fall within the years 1 to 9999 in UTC."),
                query("until", {"type": "string"}, "ISO 8601 date or date-time (exclusive); without an offset, UTC. "
                                                   "It must fall within the years 1 to 9999 in UTC."),
                query("before_id", {"type": "integer", "minimum": 0, "maximum": QUERY_ID_MAX}, "Entries older than this id (0: no bound)."),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "Page size."),
            ],
            "responses": {"200": json_response("One page.", ref("schemas", "AuditPage")), **errors(401, 403, 422, 503)},
        }},
        "/api/v1/erasures": {"post": {
            "operationId": "eraseReader", "tags": ["privacy"], "x-roles": ["admin"],
            "summary": "Erase one reader's personal data",
            "description": "Needs an admin key (`moderation keys create --role admin`; site and moderator keys get 403). Removes name, "
                           "email, URL, IP address and user agent from every comment by the address (any case), masks it in comment texts, "
                           "lifts bans on it and on its comments' IP addresses. Texts and decisions stay (so training labels do); one "
                           "audit entry, action erase, records that it happened, without the address. Repeating it changes nothing.",
            "requestBody": json_body("Erasure", f"At most {max_body_bytes} bytes."),
            "responses": {"200": json_response("Erased; what changed, counted.", ref("schemas", "Erased")),
                          **errors(400, 401, 403, 413, 415, 422, 503)},
        }},
        "/api/v1/openapi.json": {"get": {
            "operationId": "openapi", "tags": ["meta"], "security": [], "summary": "This document",
            "responses": {"200": json_response("The OpenAPI document.", {"type": "object", "required": ["openapi", "paths"]})},
        }},
        "/healthz": {"get": {
            "operationId": "healthz", "tags": ["health"], "security": [], "summary": "The process is alive",
            "responses": {"200": json_response("Alive.", obj({"status": {"const": "ok"}}))},
        }},
        "/readyz": {"get": {
            "operationId": "readyz", "tags": ["health"], "security": [], "summary": "Ready: a model is loaded and the database answers",
            "responses": {
                "200": json_response("Ready.", obj({"status": {"const": "ready"}, "model_version": nullable({"type": "string"})})),
                "503": json_response("Not ready; problems names what is missing.", obj({
                    "status": {"const": "not ready"}, "model_version": nullable({"type": "string"}),
                    "problems": obj({"model": {"type": "string"}, "database": {"type": "string"}}, [], minProperties=1),
                }), {"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0},
                                     "description": "Seconds to wait before asking again."}}),
            },
        }},
        **akismet_paths(max_body_bytes),
        **webhook_paths(max_body_bytes),
        "/metrics": {"get": {
            "operationId": "metrics", "tags": ["health"], "security": [], "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text exposition format.", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }},
    }
    responses = {
        CODES[400]: error_response(400, "The body is not valid JSON (malformed, or nested too deeply to parse)."),
        CODES[401]: error_response(401, "No API key, or an unknown or revoked one.",
                                   headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string", "const": "Bearer"}}}),
        CODES[403]: error_response(403, "The key's role may not do this."),
        CODES[404]: error_response(404, "No such comment."),
        CODES[409]: error_response(409, "The comment is no longer in expected_status; nothing changed. "
                                        "error.comment is the comment as it now is.", comment=True),
        CODES[413]: error_response(413, f"The body is larger than {max_body_bytes} bytes."),
        CODES[415]: error_response(415, "The body is not sent as application/json."),
        CODES[422]: error_response(422, "Invalid fields or query parameters; error.fields names each one.", fields=True),
        CODES[429]: error_response(429, "Too many comments from this author email or IP address.", headers={
            **rate_headers, "Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0}, "description": "Seconds to wait."}}),
        CODES[503]: error_response(503, "The database cannot answer now (unreachable, restarting, locked beyond the busy timeout, no "
                                        "connection free, its disk full); nothing was changed, so the request may be sent again.",
                                   headers={"Retry-After": {"required": True, "schema": {"type": "integer", "minimum": 0},
                                                            "description": "Seconds to wait before sending it again."}}),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "comment-moderation", "version": "1",
                 "description": "Comments in, decisions out, the moderation queue and the audit log. Every error answers "
                                "{\"error\": {\"code\", \"message\", \"fields\"?, \"comment\"?}}."},
        "servers": [{"url": "/"}],
        "security": [{"bearerKey": []}, {"apiKeyHeader": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerKey": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>."},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Used only when there is no Bearer header."},
            },
            "schemas": schemas(max_text_chars),
            "responses": responses,
            "headers": {
                "Location": {"required": True, "schema": {"type": "string", "format": "uri-reference"}, "description": "The comment's URL."},
                "X-RateLimit-Limit": {"schema": {"type": "integer"},
                                      "description": "Comments allowed in the window (only when the author is limited)."},
                "X-RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Comments left in the window."},
                "X-RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Unix time the window resets."},
            },
        },
    }


def document_for(app) -> dict:
    """The document for this app: its configured limits and its model's labels."""
    rules = app.extensions["moderation.service"].rules
    return build_document(
        labels=tuple(rules.thresholds) or ("spam", "toxic"),  # the same choice api.queue offers
        max_text_chars=app.config["MAX_TEXT_CHARS"], max_body_bytes=app.config["MAX_BODY_BYTES"], rate_limit=app.config["RATE_LIMIT"],
    )


@bp.get("/api/v1/openapi.json")
def openapi_document():
    """The OpenAPI document; public, like the API's shape."""
    return jsonify(document_for(current_app._get_current_object()))
