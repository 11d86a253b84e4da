"""Coral's external moderation phase, so a Coral (Talk v6+) installation can ask us about each comment.

Contract: Coral's EXTERNAL_MODERATION_PHASES.md and WEBHOOKS.md ("Webhook Signing"), and the
code that calls phases, src/core/server/services/comments/pipeline/phases/external.ts and
src/core/server/models/settings (generateSignatures), in github.com/coralproject/talk:

- Coral POSTs JSON ``{action: "NEW"|"EDIT", comment: {body, parentID}, author: {id, role},
  story: {id, url}, site: {id}, tenantID, tenantDomain}`` for each new or edited comment.
- ``X-Coral-Signature: sha256=<hex>[,sha256=<hex>...]``: HMAC-SHA256 of the raw body with
  each active signing secret (two while a secret is being rotated). There is no timestamp,
  so a replay cannot be told from a resend; see README "Akismet and Coral".
- The answer is 204 (no opinion) or 200 with ``{status?, actions?: [{actionType: "FLAG",
  reason: "COMMENT_DETECTED_TOXIC"|"COMMENT_DETECTED_SPAM"}]}``, within the phase's timeout.

The comment goes through the same intake as ``POST /api/v1/comments`` (stored, scored,
decided, in our queue). Accept answers 204: we do not moderate it, Coral's settings apply.
Review answers SYSTEM_WITHHELD and reject REJECTED, each with a flag for every decision
label at or above its review threshold, as Coral's own toxicity phase does. Coral sends no
email or IP address; the author's Coral id, as ``<id>@coral.invalid`` (an address that can
never be delivered), keys the author's history, bans and duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta

from flask import Blueprint, Response, current_app, jsonify, request

from moderation import policy, validation
from moderation.db import get_session
from moderation.errors import ApiError
from moderation.intake import submit
from moderation.schema import Comment

bp = Blueprint("coral", __name__, url_prefix="/api/coral")

ACTIONS = ("NEW", "EDIT")
FLAG_OF_LABEL = {"spam": "COMMENT_DETECTED_SPAM", "toxic": "COMMENT_DETECTED_TOXIC"}
STATUS_OF_DECISION = {"review": "SYSTEM_WITHHELD", "reject": "REJECTED"}
# Our validation's field paths, named as Coral sent them.
CORAL_NAMES = {"text": "comment.body", "author.name": "author.id", "author.email": "author.id", "article.id": "story.id", "article.url": "story.url"}
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def signing_secrets(config: dict) -> list[tuple[str, bytes]]:
    """(site, secret) pairs from CORAL_SIGNING_SECRETS; raise ValueError when it is malformed."""
    configured = config["CORAL_SIGNING_SECRETS"]
    if not isinstance(configured, dict):
        raise ValueError("CORAL_SIGNING_SECRETS must map a site name to a signing secret or a list of them")
    pairs = []
    for site, secrets in configured.items():
        secrets = [secrets] if isinstance(secrets, str) else secrets
        if not 1 <= len(site) <= 100 or not isinstance(secrets, list) or not secrets or not all(isinstance(s, str) and s for s in secrets):
            raise ValueError(f"CORAL_SIGNING_SECRETS[{site!r}]: a site name of 1 to 100 characters needs a non-empty secret or list of secrets")
        pairs += [(site, secret.encode()) for secret in secrets]
    return pairs


@bp.record_once
def _check_settings(state) -> None:
    """A malformed setting stops the app at start, not at Coral's first request."""
    try:
        state.app.extensions["moderation.coral_secrets"] = signing_secrets(state.app.config)
    except ValueError:
        state.app.extensions["moderation.engine"].dispose()  # the app will not start: close its database connections
        raise


def signed_site(raw: bytes, header: str | None) -> str:
    """The site whose secret produced one of the header's signatures of ``raw``; 401 otherwise."""
    if not header:
        raise ApiError(401, "send the X-Coral-Signature header Coral signs each request with")
    offered = [value.strip().encode("latin-1", "replace") for prefix, _, value in (part.strip().partition("=") for part in header.split(","))
               if prefix == "sha256" and value.strip()]
    if not offered:
        raise ApiError(401, "X-Coral-Signature holds no sha256=<hex> signature")
    pairs = current_app.extensions["moderation.coral_secrets"]
    if not pairs:
        raise ApiError(401, "no Coral signing secret is configured here (CORAL_SIGNING_SECRETS)")
    for site, secret in pairs:
        expected = hmac.new(secret, raw, hashlib.sha256).hexdigest().encode()
        if any(hmac.compare_digest(expected, signature) for signature in offered):
            return site
    raise ApiError(401, "X-Coral-Signature does not match the body with any configured signing secret")


def _coral_request(raw: bytes) -> tuple[str, validation.NewComment]:
    """Check Coral's payload; return (action, the comment as our intake takes it). Errors name Coral's fields."""
    try:
        body = json.loads(raw)
    except ValueError:  # not JSON, or not UTF-8
        raise ApiError(400, "the body is not valid JSON") from None
    except RecursionError:  # the parser recurses once per level: a few thousand "[" are a body that is not JSON, not a crash
        raise ApiError(400, "the body is not valid JSON (it is nested too deeply)") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object", fields={"body": "must be an object"})
    check = validation.Checker()
    action = check.string(body, "action", "action", max_length=10, required=True)
    if action is not None and action not in ACTIONS:
        check.fail("action", "must be NEW or EDIT")
    comment = check.object(body, "comment", required=True)
    if "comment" not in check.errors:
        check.string(comment, "body", "comment.body", max_length=current_app.config["MAX_TEXT_CHARS"], required=True)
    parent = comment.get("parentID")
    if parent is not None and not isinstance(parent, str):
        check.fail("comment.parentID", "must be a string or null")
    author = check.object(body, "author")
    author_id = check.string(author, "id", "author.id", max_length=200)
    check.string(author, "role", "author.role", max_length=50)
    story = check.object(body, "story")
    check.raise_if_any()
    fields = {
        "text": comment.get("body"),
        "author": {"name": author_id, "email": f"{author_id}@coral.invalid" if author_id and _SAFE_ID.fullmatch(author_id) else None},
        "article": {"id": story.get("id"), "url": story.get("url")},
    }
    try:
        return action, validation.new_comment(fields, current_app.config["MAX_TEXT_CHARS"])
    except ApiError as error:
        renamed = {CORAL_NAMES.get(path, path): problem for path, problem in (error.fields or {}).items()}
        raise ApiError(error.status, error.message, fields=renamed or None) from None


def flags(comment: Comment, rules: policy.Rules) -> list[str]:
    """Coral's flag for each decision label at or above its review threshold (spam, too, for discarded spam)."""
    limits = policy.thresholds_for(rules, comment.article_section)
    labels = {label for label in rules.decision_labels
              if label in FLAG_OF_LABEL and label in limits and comment.scores.get(label, 0.0) >= limits[label]["review_at"]}
    if comment.discarded:
        labels.add("spam")
    return [flag for label, flag in FLAG_OF_LABEL.items() if label in labels]


@bp.post("/moderate")
def moderate():
    """Verify Coral's signature, store and decide the comment, answer in Coral's terms."""
    raw = request.get_data(cache=True)
    site = signed_site(raw, request.headers.get("X-Coral-Signature"))
    action, new = _coral_request(raw)
    service = current_app.extensions["moderation.service"]
    # An edit is the author's own comment again, never a duplicate post.
    window = timedelta(0) if action == "EDIT" else timedelta(seconds=current_app.config["DUPLICATE_WINDOW_SECONDS"])
    comment, _created = submit(get_session(), new, site=site, assessor=service.assessor, rules=service.rules, duplicate_window=window)
    headers = {"X-Moderation-Decision": comment.decision, "X-Moderation-Comment-Id": str(comment.id)}
    if comment.decision not in STATUS_OF_DECISION:
        return Response(status=204, headers=headers)  # accepted: no opinion, Coral publishes as its settings say
    answer = {"status": STATUS_OF_DECISION[comment.decision]}
    found = flags(comment, service.rules)
    if found:
        answer["actions"] = [{"actionType": "FLAG", "reason": flag} for flag in found]
    response = jsonify(answer)
    response.headers.update(headers)
    return response
