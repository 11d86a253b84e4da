"""Logging: JSON lines (or text) on stderr, a request id on every line, and no secrets.

`init_app` gives each request an id (the caller's ``X-Request-ID`` when it is sane, else a
new one), echoes it in the response, writes one access line per request (method, path
without the query, status, duration, the API key's *name*) and, as LOG_FORMAT says,
installs one stderr handler on the root logger. Every line, whatever logger wrote it and
exception tracebacks included, passes through `redact`: API keys (``cm_s_``, ``cm_m_``,
``cm_a_``), webhook secrets (``whsec_``), Bearer tokens and password fields are replaced,
and email addresses are masked (``j***@example.org``).

Under gunicorn (`moderation serve`), `GunicornLogger` formats gunicorn's own lines the same way.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

FORMATS = ("json", "text", "off")
_HANDLER_MARK = "_moderation_handler"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("moderation.access")

_SECRETS = [
    (re.compile(r"\b(cm_[sma]_|whsec_|ssc_)[A-Za-z0-9_\-]+"), r"\1***"),
    (re.compile(r"\b(Bearer|Basic)\s+[^\s\"',;]+", re.IGNORECASE), r"\1 ***"),
    # password=..., "password": "...", password: ... (form posts, JSON, reprs)
    (re.compile(r"""(pass(?:word|wd)?["']?\s*[:=]\s*)(?:"[^"]*"|'[^']*'|[^"'&\s,;}]+)""", re.IGNORECASE), r"\1***"),
    (re.compile(r"""((?:api_key|key|secret|token)["']?\s*[:=]\s*["']?)(?!\*\*\*)[^"'&\s,;}]{8,}""", re.IGNORECASE), r"\1***"),
]
# Any address the API accepts (anything without spaces around one "@": "zoë@bücher.de",
# "ana@localhost", "x@[192.0.2.1]"), minus the quoting and punctuation it sits between in a log line.
_EMAIL = re.compile(r"""([^\s@<>()\[\]"',;:])[^\s@<>()\[\]"',;:]{0,63}+@([^\s@<>()"',;]{1,255}+)""")
# What every pattern above needs in an ASCII line, lower-cased: a line with none of it (most
# access lines) is returned as it is, after a few substring tests instead of five passes
# (0.1 ms per line). Lines with other characters always take the five passes (case-insensitive
# matching of non-ASCII text has its own rules: the Kelvin sign is a "k").
_TRIGGERS = ("cm_", "whsec_", "ssc_", "bearer", "basic", "pass", "@")
_KEY_FIELD = re.compile(r"""(?:key|secret|token)["']?\s*[:=]""")


def _may_hold_secrets(line: str) -> bool:
    if not line.isascii():
        return True
    low = line.lower()
    return any(trigger in low for trigger in _TRIGGERS) or _KEY_FIELD.search(low) is not None


def redact(line: str) -> str:
    """``line`` without API keys, tokens, passwords or full email addresses."""
    if not _may_hold_secrets(line):
        return line
    for pattern, replacement in _SECRETS:
        line = pattern.sub(replacement, line)
    return mask_emails(line)


def mask_emails(text: str) -> str:
    """``text`` with every email address cut to its first letter and domain (``j***@example.org``)."""
    return _EMAIL.sub(r"\1***@\2", text) if "@" in text else text


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


class _RequestId(logging.Filter):
    """Puts the request id (or None outside a request) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        entry.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return redact(super().format(record))


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure(fmt: str, stream=None, level: int = logging.INFO) -> logging.Handler | None:
    """Install the one moderation handler on the root logger (replacing an earlier one); ``off``: leave logging alone."""
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    if fmt == "off":
        return None
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(_RequestId())
    root.addHandler(handler)
    logging.getLogger("moderation").setLevel(level)  # ours at INFO (the access lines); other libraries keep root's WARNING
    return handler


def init_app(app: Flask) -> None:
    """Request ids, the access line, and (unless LOG_FORMAT is off, or the app is a test's) the stderr handler.

    The handler is process-wide (the root logger's): a test app leaves it alone, so a test
    process's other output (a CLI command's, say) is not interleaved with log lines.
    """
    if not app.config.get("TESTING"):
        configure(app.config["LOG_FORMAT"])
    logging.getLogger("moderation").setLevel(min(logging.getLogger("moderation").getEffectiveLevel(), logging.INFO))

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-ID"] = request_id
        key = g.get("api_key")
        started = g.get("request_started")
        access_log.info(
            "%s %s %s", request.method, request.path, response.status_code,
            extra={"method": request.method, "path": request.path, "status": response.status_code,
                   "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
                   "key_name": getattr(key, "name", None), "remote_addr": request.remote_addr},
        )
        return response


try:  # gunicorn is a dependency, but keep this module importable without it
    from gunicorn.glogging import Logger as _GunicornBase
except ImportError:  # pragma: no cover
    _GunicornBase = object


class GunicornLogger(_GunicornBase):  # type: ignore[misc, valid-type]
    """gunicorn's error (and, if enabled, access) log as JSON lines through the same redaction.

    `moderation serve` passes ``--logger-class moderation.logs.GunicornLogger``; the app
    writes the access lines itself (with the request id and key name), so gunicorn's own
    access log stays off.
    """

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())
