"""Every setting, declared once with its default and help text, applied in layers.

Order (later wins): the defaults below, a TOML file (``MODERATION_CONFIG`` or
``INSTANCE_DIR/moderation.toml``), ``MODERATION_<NAME>`` environment variables, then
explicit overrides (tests, command-line options). README.md lists every setting; a test
fails when one is missing there.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from moderation.policy import section_key


class Setting(NamedTuple):
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_DIR", "instance", "Folder for this installation's files: models, SQLite database, config."),
    Setting("MODEL_DIR", None, "Model bundle to serve and score with. Default: INSTANCE_DIR/model."),
    Setting("EMBEDDINGS_DIR", None, "Piece-vector table (scripts/build-embeddings) that training adds beside the n-grams when it exists. "
            "Default: INSTANCE_DIR/embeddings; set it empty to train on n-grams only."),
    Setting("DATA_DIR", None, "Folder holding the public labelled datasets. Default: ../shared/data beside the checkout."),
    Setting("DECISION_LABELS", ["spam", "toxic"], "Labels whose thresholds decide accept/review/reject; the others are informational."),
    Setting("THRESHOLDS", {}, 'Per-label threshold overrides, e.g. {"toxic": {"review_at": 0.3, "reject_at": 0.99}}.'),
    Setting("EXPLAIN_TOP", 5, "How many top terms per label to return with each score."),
    Setting("DATABASE_URL", None, "SQLAlchemy or plain postgresql:// URL. Default: SQLite at INSTANCE_DIR/moderation.db."),
    Setting("DATABASE_SCHEMA", None, "PostgreSQL schema (search_path) to use; lets several installations or test runs share one database."),
    Setting("MAX_TEXT_CHARS", 10_000, "Longest comment text accepted, in characters (longer: 422)."),
    Setting("MAX_BODY_BYTES", 256 * 1024, "Largest request body accepted, in bytes (larger: 413)."),
    Setting("API_KEY_CACHE_SECONDS", 5, "How long each worker trusts a looked-up live API key; a revoked key is refused within this time (0: look up every request)."),
    Setting("RATE_LIMIT", "10 per minute", "Comments allowed per author email and per IP address (more: 429 with Retry-After)."),
    Setting("RATELIMIT_STORAGE_URI", "memory://", "Where rate-limit counters live; redis://host:6379 lets several API hosts share them."),
    Setting("MAX_LINKS", 2, "Comments with more links than this are held for review."),
    Setting("HOLD_WORDS", [], "Words or phrases that hold a comment for review (matched on normalised text)."),
    Setting("BLOCK_WORDS", [], "Words or phrases that reject a comment (matched on normalised text)."),
    Setting("TRUSTED_MIN_APPROVED", 3, "Comments a moderator approved (and none rejected) after which an author skips review unless scores are high."),
    Setting("TRUSTED_MAX_SCORE", 0.9, "Score at or above which even a trusted author's comment is held."),
    Setting("DISTRUST_MIN_DECIDED", 3, "Decided comments after which an author's rejection rate is judged."),
    Setting("DISTRUST_REJECTION_RATE", 0.5, "Rejection rate at or above which all of an author's comments are held."),
    Setting("DUPLICATE_WINDOW_SECONDS", 3600, "The same normalised text from the same author or IP within this window is rejected."),
    Setting("DISCARD_SPAM_AT", 0.995, "Spam score at or above which a comment is rejected and kept out of every queue (Akismet's discard)."),
    Setting("SECTION_THRESHOLDS", {}, 'Per-section threshold overrides, e.g. {"politics": {"toxic": {"review_at": 0.05}}}; sections match in any capitals.'),
    Setting("LANGUAGES", ["en"], "Languages the model was trained on; confidently detected others are held for review."),
    Setting("LANGUAGE_MIN_CONFIDENCE", 0.9, "Confidence needed before a comment is held for its language."),
    Setting("SECRET_KEY", None, "Signs the review desk's session cookies. Default: a random key kept in INSTANCE_DIR/secret_key; set the same value on every host."),
    Setting("SECURE_COOKIES", True, "Send the desk's session cookie over HTTPS only (browsers also accept it on http://127.0.0.1 and localhost)."),
    Setting("FORCE_HTTPS", False, "Redirect plain-HTTP requests to HTTPS and send HSTS; leave off when a TLS proxy in front does it."),
    Setting("PROXY_HOPS", 0, "Reverse proxies in front of the app whose X-Forwarded-For, -Proto and -Host it trusts (werkzeug's ProxyFix), "
                             "so per-IP limits and logs see the reader's address and HTTPS; 0: trust none, the connecting address is the client."),
    Setting("SESSION_HOURS", 12, "How long a desk sign-in lasts."),
    Setting("LOGIN_MAX_FAILURES", 5, "Consecutive failed sign-ins after which an account is locked."),
    Setting("LOGIN_LOCKOUT_SECONDS", 900, "How long a locked account stays locked (an admin can unlock it sooner)."),
    Setting("LOGIN_RATE_LIMIT", "30 per 10 minutes", "Sign-in attempts allowed per IP address, whatever the account."),
    Setting("DESK_PAGE_SIZE", 25, "Comments per page in the review desk."),
    Setting("MODELS_DIR", None, "The model registry: one bundle folder per version. Default: INSTANCE_DIR/models."),
    Setting("MODEL_CHECK_SECONDS", 5.0, "How often each worker asks which model version is live, and swaps a new one in."),
    Setting("SITE_LABEL_WEIGHT", 3.0, "How much more a moderator's decision weighs in training than a public dataset row."),
    Setting("SITE_HOLDOUT_SHARE", 0.2, "Newest share of the site's decisions kept out of training to judge champion and challenger."),
    Setting("PROMOTION_TOLERANCE", 0.01, "How much ROC AUC a challenger may lose on any public dev set and still be promoted."),
    Setting("DRIFT_ALERT_OVERTURN", 0.3, "Share of a label's flags that moderators overturn above which `moderation drift` and the dashboard raise an alert."),
    Setting("DRIFT_MIN_DECISIONS", 20, "Human decisions on a label's flags needed before its overturn rate can raise an alert."),
    Setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, "How long a webhook endpoint has to answer before the attempt counts as failed."),
    Setting("WEBHOOK_MAX_ATTEMPTS", 10, "Attempts per event before delivery gives up (the delivery log keeps every attempt)."),
    Setting("WEBHOOK_BACKOFF_SECONDS", 10.0, "Wait before the first retry; each later retry waits twice as long."),
    Setting("WEBHOOK_BACKOFF_CAP_SECONDS", 3600.0, "The longest wait between two retries."),
    Setting("WEBHOOK_DISABLE_AFTER", 20, "Failed deliveries in a row after which an endpoint is disabled, with the reason shown."),
    Setting("GROUP_SIMILARITY", 0.8, "Cosine similarity (character n-grams) at which held comments are grouped as near-duplicates."),
    Setting("CORAL_SIGNING_SECRETS", {}, 'Coral external moderation: site name to the phase\'s signing secret (a list of secrets while rotating), '
                                         'e.g. {"coral": "ssc_..."}; the secret that verifies X-Coral-Signature names the site. Empty: every Coral request gets 401.'),
    Setting("TRAINING_BACKEND", "memory", 'How `moderation train` fits: "memory" (TF-IDF over all rows at once) or "streaming" (hashed features, SGD chunk by chunk: memory bounded for millions of comments).'),
    Setting("RETAIN_IP_DAYS", 30, "Days after which `moderation purge` drops comments' IP addresses and user agents, and lifts IP bans (0: keep them forever)."),
    Setting("PURGE_SPAM_DAYS", 15, "Days after which `moderation purge` blanks the text and author of comments rejected as spam, as Akismet does (0: keep them forever)."),
    Setting("DATABASE_TIMEOUT_SECONDS", 10.0, "Longest wait for the database per step (PostgreSQL connect, a free pooled connection, SQLite's lock); past it the API answers 503 with Retry-After."),
    Setting("RATELIMIT_KEY_PREFIX", "", "Prefix of the rate-limit keys in RATELIMIT_STORAGE_URI, so installations sharing one Redis do not share counters (hosts of one installation must use the same)."),
    Setting("LOG_FORMAT", "json", 'Log lines on stderr: "json" (one object a line, with the request id), "text", or "off" (leave logging to the host program). Keys, passwords and email addresses are always redacted.'),
)

DEFAULTS = {s.name: s.default for s in SETTINGS}
PREFIX = "MODERATION_"


class ConfigError(ValueError):
    """A setting that is unknown or of the wrong type: the message names it and where it came from."""


def _parse_env(name: str, raw: str, default: Any) -> Any:
    """Read an environment string as the type of the setting's default."""
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (list, dict)):
            return json.loads(raw)
    except ValueError:
        kind = "JSON" if isinstance(default, (list, dict)) else type(default).__name__
        raise ConfigError(f"{PREFIX}{name}={raw!r} is not {'an' if kind == 'int' else 'a'} {kind} (default {json.dumps(default)})") from None
    return raw


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _thresholds_problem(value: Any) -> str | None:
    """What is wrong with {label: {"review_at": number, "reject_at": number}}, if anything."""
    if not isinstance(value, dict):
        return "must be a table of labels"
    for label, limits in value.items():
        if not isinstance(limits, dict) or not limits:
            return f"{label!r} must be a table with review_at and/or reject_at"
        for key, limit in limits.items():
            if key not in ("review_at", "reject_at"):
                return f"{label!r} has {key!r}; only review_at and reject_at are known"
            if not _is_number(limit):
                return f"{label}.{key} must be a number, not {limit!r}"
    return None


def _problem(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be setting ``name``, or None when it can."""
    default = DEFAULTS[name]
    if name == "THRESHOLDS":
        return _thresholds_problem(value)
    if name == "SECTION_THRESHOLDS":
        if not isinstance(value, dict):
            return "must be a table of sections"
        keys = sorted(value, key=section_key)
        clash = next(((a, b) for a, b in zip(keys, keys[1:]) if section_key(a) == section_key(b)), None)
        if clash:
            return f"sections {clash[0]!r} and {clash[1]!r} are one section (sections are matched in any capitals)"
        return next((f"section {section!r}: {problem}" for section, per_label in value.items()
                     if (problem := _thresholds_problem(per_label))), None)
    if default is None:
        return None if value is None or isinstance(value, str) else "must be a string"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "must be a whole number"
    if isinstance(default, float):
        return None if _is_number(value) else "must be a number"
    if isinstance(default, list):
        return None if isinstance(value, list) and all(isinstance(v, str) for v in value) else "must be a list of strings"
    if isinstance(default, dict):
        return None if isinstance(value, dict) else "must be a table"
    return None if isinstance(value, str) else "must be a string"


def _checked(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Refuse unknown settings and values of the wrong type, naming each and where it came from."""
    unknown = [key for key in values if key not in DEFAULTS]
    if unknown:
        hints = [f"{key}" + (f" (did you mean {close[0]}?)" if (close := difflib.get_close_matches(key, DEFAULTS, n=1)) else "") for key in unknown]
        raise ConfigError(f"{source}: unknown setting(s) {', '.join(hints)}; README.md lists every setting")
    for key, value in values.items():
        if (problem := _problem(key, value)) is not None:
            raise ConfigError(f"{source}: {key} {problem} (got {value!r})")
    return values


def load_config(overrides: dict | None = None, environ: dict | None = None) -> dict[str, Any]:
    """Return the effective configuration: defaults, then TOML file, environment, overrides.

    The TOML file is looked for in the INSTANCE_DIR that the environment or the overrides
    name, not only the default one. Unknown settings and values of the wrong type in the
    file or the environment raise `ConfigError`.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    config = dict(DEFAULTS)
    instance_dir = overrides.get("INSTANCE_DIR") or environ.get(PREFIX + "INSTANCE_DIR") or config["INSTANCE_DIR"]
    toml_path = Path(environ.get(PREFIX + "CONFIG") or Path(instance_dir) / "moderation.toml")
    if toml_path.is_file():
        try:
            with open(toml_path, "rb") as handle:
                from_file = {key.upper(): value for key, value in tomllib.load(handle).items()}
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{toml_path}: not valid TOML: {error}") from None
        config.update(_checked(from_file, str(toml_path)))
    for setting in SETTINGS:
        raw = environ.get(PREFIX + setting.name)
        if raw is not None:
            config[setting.name] = _checked({setting.name: _parse_env(setting.name, raw, setting.default)}, PREFIX + setting.name)[setting.name]
    config.update(overrides)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{Path(config['INSTANCE_DIR']).resolve() / 'moderation.db'}"
    if not config["MODEL_DIR"]:
        config["MODEL_DIR"] = str(Path(config["INSTANCE_DIR"]) / "model")
    if config["EMBEDDINGS_DIR"] is None:
        config["EMBEDDINGS_DIR"] = str(Path(config["INSTANCE_DIR"]) / "embeddings")
    return config
