"""Every query the service makes: comments, decisions, the queue, the audit log, API keys.

Views and commands call these small functions and never build SQL themselves. A
status change and its audit entry are always written in one transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from sqlalchemy import JSON, DateTime, and_, bindparam, delete, exc, exists, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from moderation import bans, metrics, webhooks
from moderation.logs import mask_emails
from moderation.policy import History
from moderation.schema import PENDING, PUBLISHED, REJECTED, ApiKey, AuditEntry, Ban, Comment, DeskSession, utcnow

MAX_ID = 2**63 - 1  # the largest id either database stores; larger ones cannot exist
STATUS_OF = {"accept": PUBLISHED, "review": PENDING, "reject": REJECTED}
HUMAN_STATUS = {"approve": PUBLISHED, "reject": REJECTED}


class Conflict(Exception):
    """The comment was not in the expected status: someone else decided first."""

    def __init__(self, comment: Comment):
        super().__init__(f"comment {comment.id} is {comment.status}")
        self.comment = comment


# --- comments -------------------------------------------------------------------------


def text_hash(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()


# The statements every new comment runs are written once as SQL text with typed binds:
# building and compiling a select() per call cost three times the query itself.
_DATETIME, _JSON = DateTime(timezone=True), JSON()
_EXTERNAL_ID = text("SELECT id FROM comments WHERE site = :site AND external_id = :external_id")
# What the policy needs to know about the author, in one round trip: has this normalised
# text come from them (by email or IP) within the window, is either banned, and how were
# their comments decided? Intake asks it together with whether the comment was stored
# already (a retry) and whether its parent exists (`intake_facts`).
_WHO = {"both": "author_email = :email OR author_ip = :ip", "email": "author_email = :email", "ip": "author_ip = :ip"}
_FACT_COLUMNS = (
    "EXISTS (SELECT 1 FROM comments WHERE text_hash = :digest AND created_at >= :since AND ({clause})) AS duplicate,"
    " EXISTS (SELECT 1 FROM bans WHERE (kind = 'email' AND value = :banned_email) OR (kind = 'ip' AND value = :ip)) AS banned,"
    " h.published, h.approved, h.rejected"
)
_HISTORY = (
    " FROM (SELECT coalesce(sum(CASE WHEN status = :published THEN 1 ELSE 0 END), 0) AS published,"
    # approved by a person: published, but not by the model's own "accept"
    " coalesce(sum(CASE WHEN status = :published AND decision <> 'accept' THEN 1 ELSE 0 END), 0) AS approved,"
    " coalesce(sum(CASE WHEN status = :rejected THEN 1 ELSE 0 END), 0) AS rejected"
    " FROM comments WHERE author_email = :email AND NOT discarded) AS h"
)
_AUTHOR_FACTS = {
    who: text("SELECT " + _FACT_COLUMNS.format(clause=clause) + _HISTORY).bindparams(bindparam("since", type_=_DATETIME))
    for who, clause in _WHO.items()
}
_INTAKE_LOOKUP = (
    "SELECT (SELECT id FROM comments WHERE site = :site AND external_id = :external_id) AS existing_id,"
    " EXISTS (SELECT 1 FROM comments WHERE id = :parent_id) AS parent_found"
)
_INTAKE_FACTS = {
    who: text(_INTAKE_LOOKUP + ", " + _FACT_COLUMNS.format(clause=clause) + _HISTORY).bindparams(bindparam("since", type_=_DATETIME))
    for who, clause in _WHO.items()
} | {"none": text(_INTAKE_LOOKUP)}
_COMMENT_COLUMNS = [c for c in Comment.__table__.columns if c.name not in ("id", "purged_at")]  # a new comment is never purged
_AUDIT_COLUMNS = [c for c in AuditEntry.__table__.columns if c.name != "id"]
_COMMENT_SQL = (f"INSERT INTO comments ({', '.join(c.name for c in _COMMENT_COLUMNS)}) "
                f"VALUES ({', '.join(':' + c.name for c in _COMMENT_COLUMNS)}) RETURNING id")
_INSERT_COMMENT = text(_COMMENT_SQL).bindparams(*(bindparam(c.name, type_=c.type) for c in _COMMENT_COLUMNS))
_INSERT_AUDIT = text(
    f"INSERT INTO audit_log ({', '.join(c.name for c in _AUDIT_COLUMNS)}) VALUES ({', '.join(':' + c.name for c in _AUDIT_COLUMNS)})"
).bindparams(*(bindparam(c.name, type_=c.type) for c in _AUDIT_COLUMNS))
# PostgreSQL: the comment and its audit entry in one statement, atomic on its own, so intake
# needs no BEGIN and COMMIT round trips (SQLite has no INSERT inside WITH). The audit entry
# shares the comment's scores, model_version and created_at binds.
_AUDIT_BINDS = [c for c in _AUDIT_COLUMNS if c.name not in ("comment_id", "scores", "model_version", "created_at")]
# Webhook events join the same transaction as the status change they announce (the outbox):
# one row per live endpoint of the comment's site that subscribed to the event.
_OUTBOX_SELECT = (
    "SELECT e.id, {comment_id}, :event, :new_status, :created_at, 0, :created_at FROM webhook_endpoints e{extra} "
    "WHERE e.site = :site AND e.disabled_at IS NULL AND (',' || e.events || ',') LIKE :event_pattern"
)
_OUTBOX_INSERT = "INSERT INTO webhook_outbox (endpoint_id, comment_id, event, status, created_at, attempts, next_attempt_at) "
_ENQUEUE = text(_OUTBOX_INSERT + _OUTBOX_SELECT.format(comment_id=":comment_id", extra="")).bindparams(bindparam("created_at", type_=_DATETIME))
_INSERT_COMMENT_AND_AUDIT = text(
    f"WITH c AS ({_COMMENT_SQL}), a AS (INSERT INTO audit_log ({', '.join(c.name for c in _AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join('(SELECT id FROM c)' if c.name == 'comment_id' else ':' + c.name for c in _AUDIT_COLUMNS)}) RETURNING comment_id), "
    f"o AS ({_OUTBOX_INSERT}{_OUTBOX_SELECT.format(comment_id='a.comment_id', extra=', a')}) SELECT comment_id FROM a"
).bindparams(*(bindparam(c.name, type_=c.type) for c in _COMMENT_COLUMNS + _AUDIT_BINDS))


class _OnCursor:
    """One of intake's statements, compiled once per dialect and run on the DBAPI cursor of the
    session's connection: SQLAlchemy's own SQL (bind casts included) and its own conversion of
    each typed bind (JSON, dates, booleans), without its per-execution bookkeeping, which cost
    intake twice what the database's work did (0.45 ms CPU of its 1.3 ms on SQLite, loaded machine).

    Errors are SQLAlchemy's: the DBAPI error wrapped as `Connection.execute` would wrap it, and a
    lost connection invalidated together with the rest of the pool, as SQLAlchemy does, so
    the request fails once (a 503) and the next ones reconnect.
    """

    def __init__(self, statement, *, returns_row: bool):
        self.statement = statement
        self.returns_row = returns_row  # known here: asking the cursor (its description) cost psycopg a Column object per column, per call
        self._by_dialect: dict[tuple[str, str], tuple] = {}

    def _compiled(self, dialect) -> tuple:
        key = (dialect.name, dialect.driver)
        if key not in self._by_dialect:
            compiled = self.statement.compile(dialect=dialect)
            processors = {name: processor for name, bind in compiled.binds.items()
                          if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None}
            self._by_dialect[key] = (str(compiled), list(compiled.positiontup) if compiled.positional else None, processors)
        return self._by_dialect[key]

    def execute(self, session: Session, params: dict) -> tuple | None:
        """Run the statement; return its first row when it returns one (else None)."""
        connection = session.connection()
        dialect = connection.dialect
        sql, positions, processors = self._compiled(dialect)
        values = {name: processors[name](value) if name in processors else value for name, value in params.items()}
        arguments = tuple(values[name] for name in positions) if positions is not None else values
        dbapi_connection = connection.connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(sql, arguments)
            return cursor.fetchone() if self.returns_row else None
        except dialect.loaded_dbapi.Error as error:
            lost = dialect.is_disconnect(error, dbapi_connection, cursor)
            if lost:
                connection.invalidate(error)
                connection.engine.dispose(close=False)  # the other pooled connections are likely dead too: start afresh
            raise exc.DBAPIError.instance(sql, arguments, error, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect) from error
        finally:
            cursor.close()


_INTAKE_FACTS_ON_CURSOR = {who: _OnCursor(statement, returns_row=True) for who, statement in _INTAKE_FACTS.items()}
_INSERT_COMMENT_ON_CURSOR, _INSERT_AUDIT_ON_CURSOR, _ENQUEUE_ON_CURSOR, _INSERT_COMMENT_AND_AUDIT_ON_CURSOR = (
    _OnCursor(_INSERT_COMMENT, returns_row=True), _OnCursor(_INSERT_AUDIT, returns_row=False), _OnCursor(_ENQUEUE, returns_row=False),
    _OnCursor(_INSERT_COMMENT_AND_AUDIT, returns_row=True))


def find_by_external_id(session: Session, site: str, external_id: str) -> Comment | None:
    found = session.connection().scalar(_EXTERNAL_ID, {"site": site, "external_id": external_id})
    return None if found is None else session.get(Comment, found)


def get_comment(session: Session, comment_id: int) -> Comment | None:
    return session.get(Comment, comment_id)


def _author_binds(digest: str, email: str | None, ip: str | None, window: timedelta) -> dict:
    return {"digest": digest, "since": utcnow() - window, "email": email, "ip": ip, "published": PUBLISHED, "rejected": REJECTED,
            "banned_email": email.strip().lower() if email else None}  # bans store emails lower-cased


def _history(published, approved, rejected) -> History:
    return History(published=int(published), approved=int(approved), rejected=int(rejected))


def author_facts(session: Session, digest: str, email: str | None, ip: str | None, window: timedelta) -> tuple[bool, bool, History]:
    """Return (duplicate, banned, history), asked in one statement: has the same normalised text
    come from this author or IP address within ``window``; is the email or IP address banned
    (`moderation.bans`); how many of the author's comments (by email) were published, approved by a
    person, and rejected."""
    if not email and not ip:
        return False, False, History()
    query = _AUTHOR_FACTS["both" if email and ip else "email" if email else "ip"]
    duplicate, banned, *counts = session.connection().execute(query, _author_binds(digest, email, ip, window)).one()
    return bool(duplicate), bool(banned), _history(*counts)


@dataclass
class IntakeFacts:
    """What intake asks before scoring a new comment (`intake_facts`)."""

    existing_id: int | None = None  # the site already sent a comment with this external_id: a retry
    parent_found: bool = False  # the parent_id names a stored comment
    duplicate: bool = False
    banned: bool = False
    history: History = field(default_factory=History)


def intake_facts(session: Session, *, site: str, external_id: str | None, parent_id: int | None, digest: str,
                 email: str | None, ip: str | None, window: timedelta) -> IntakeFacts:
    """Everything intake asks the database before storing, in one statement: the comment the site
    already sent under ``external_id`` (if any), whether ``parent_id`` exists, and `author_facts`."""
    who = "both" if email and ip else "email" if email else "ip" if ip else "none"
    if who == "none" and external_id is None and parent_id is None:
        return IntakeFacts()
    binds = {"site": site, "external_id": external_id, "parent_id": parent_id}
    if who != "none":
        binds |= _author_binds(digest, email, ip, window)
    row = _INTAKE_FACTS_ON_CURSOR[who].execute(session, binds)
    if who == "none":
        return IntakeFacts(existing_id=row[0], parent_found=bool(row[1]))
    existing_id, parent_found, duplicate, banned, *counts = row
    return IntakeFacts(existing_id, bool(parent_found), bool(duplicate), bool(banned), _history(*counts))


class StoredComment(SimpleNamespace):
    """A comment just stored, as the values that were written: the attributes of a `Comment`.

    Not an ORM object (building one cost more than the INSERT's own bookkeeping) and not
    read back: it is what was committed. Load a `Comment` to change it.
    """


def add_comment(session: Session, values: dict, *, actor: str = "model") -> StoredComment:
    """Store a new comment with the audit entry of its automatic decision, in one transaction.

    Committed before this returns. On PostgreSQL that is one statement (which commits on its
    own when the session is in autocommit mode, see `db.get_session`).
    """
    now = utcnow()
    values = {**values, "created_at": now, "updated_at": now}
    audit = {"actor": actor, "action": values["decision"], "reason": None, "note": "; ".join(values["reasons"]) or None,
             "previous_status": None, "new_status": values["status"]}
    event = webhooks.event_for(values["status"], by_person=False)
    outbox = {"event": event, "event_pattern": f"%,{event},%"}
    if session.connection().dialect.name == "postgresql":
        comment_id = _INSERT_COMMENT_AND_AUDIT_ON_CURSOR.execute(session, {**values, **audit, **outbox})[0]
    else:
        comment_id = _INSERT_COMMENT_ON_CURSOR.execute(session, values)[0]
        _INSERT_AUDIT_ON_CURSOR.execute(session, {**audit, "comment_id": comment_id, "scores": values["scores"],
                                                   "model_version": values["model_version"], "created_at": now})
        _ENQUEUE_ON_CURSOR.execute(session, {**outbox, "comment_id": comment_id, "new_status": values["status"], "created_at": now, "site": values["site"]})
    session.commit()
    return StoredComment(id=comment_id, purged_at=None, **values)


def decide(session: Session, comment_id: int, *, actor: str, action: str, reason: str | None, note: str | None, expected_status: str = PENDING) -> Comment:
    """Apply a moderator's decision if the comment is still in ``expected_status`` (`decide_many`).

    :raise LookupError: no such comment.
    :raise Conflict: someone else decided first; it carries the comment as it now is.
    """
    result = decide_many(session, [comment_id], actor=actor, action=action, reason=reason, note=note, expected_status=expected_status)
    if result.missing:
        raise LookupError(comment_id)
    if result.conflicts:
        raise Conflict(result.conflicts[0])
    return result.decided[0]


@dataclass
class Decided:
    """What `decide_many` did, each list in the order the ids were given."""

    decided: list[Comment]
    conflicts: list[Comment]  # not in the expected status (someone else decided first), as they now are
    missing: list[int]


_IDS_PER_STATEMENT = 500  # well under every driver's limit on bound parameters


def decide_many(session: Session, comment_ids: list[int], *, actor: str, action: str, reason: str | None, note: str | None,
                expected_status: str = PENDING) -> Decided:
    """Apply one moderator's decision to every comment still in ``expected_status``, in one
    transaction, with an audit entry and webhook events for each, and count them in /metrics.

    Each comment's conditional UPDATE makes the first of two concurrent moderators win; the
    comments someone else decided first are returned as conflicts (and not counted).
    """
    new_status = HUMAN_STATUS[action]
    now = utcnow()
    ids = list(dict.fromkeys(comment_ids))
    # Rows are locked in id order, whatever order the moderator chose: two moderators deciding
    # overlapping sets in opposite orders would otherwise deadlock on PostgreSQL.
    ordered = sorted(ids)
    chunks = [ordered[i : i + _IDS_PER_STATEMENT] for i in range(0, len(ordered), _IDS_PER_STATEMENT)]
    changed: set[int] = set()
    for chunk in chunks:
        session.execute(select(Comment.id).where(Comment.id.in_(chunk)).order_by(Comment.id).with_for_update())
        changed.update(session.scalars(
            update(Comment).where(Comment.id.in_(chunk), Comment.status == expected_status)
            .values(status=new_status, updated_at=now).returning(Comment.id).execution_options(synchronize_session=False)))
    found = {comment.id: comment for chunk in chunks
             for comment in session.scalars(select(Comment).where(Comment.id.in_(chunk)).execution_options(populate_existing=True))}
    decided = [found[i] for i in ids if i in changed]
    masked = note and mask_emails(note)  # the log is append-only, so a reader's address typed in a note could never be erased
    session.add_all(AuditEntry(comment_id=comment.id, actor=actor, action=action, reason=reason, note=masked, previous_status=expected_status,
                               new_status=new_status, scores=comment.scores, model_version=comment.model_version, created_at=now)
                    for comment in decided)
    if decided:
        enqueue_events(session, [(comment.id, comment.site) for comment in decided], new_status, webhooks.event_for(new_status, by_person=True), now)
    session.commit()
    if session.expire_on_commit:  # then the commit expired them: one SELECT per chunk, not one per comment its caller reads
        for chunk in chunks:
            session.scalars(select(Comment).where(Comment.id.in_(chunk))).all()
    for _ in decided:
        metrics.record_human_decision(action, reason)  # here, so the API, the desk and Akismet reports all count
    return Decided(decided, [found[i] for i in ids if i in found and i not in changed], [i for i in ids if i not in found])


def enqueue_events(session: Session, comments: list[tuple[int, str]], status: str, event: str, now: datetime) -> None:
    """Queue ``event`` for each (comment id, site)'s subscribed endpoints, in one executemany in the
    caller's transaction (no commit)."""
    session.execute(_ENQUEUE, [{"event": event, "event_pattern": f"%,{event},%", "comment_id": comment_id,
                                "new_status": status, "created_at": now, "site": site} for comment_id, site in comments])


def history_of(session: Session, comment_id: int) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.comment_id == comment_id).order_by(AuditEntry.id)))


# --- the queue --------------------------------------------------------------------------


@dataclass
class QueueFilter:
    status: str | None = PENDING  # None: every status
    label: str | None = None
    label_at: float = 0.5  # a label filter keeps comments scoring at least this
    article: str | None = None
    section: str | None = None
    author: str | None = None
    ip: str | None = None
    older_than: timedelta | None = None
    newer_than: timedelta | None = None


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list:
    """Decode a cursor made by `encode_cursor`; raise ValueError on anything else."""
    padded = cursor + "=" * (-len(cursor) % 4)
    values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(values, list) or len(values) != 2:
        raise ValueError("malformed cursor")
    key, last_id = values
    if not isinstance(last_id, int) or isinstance(last_id, bool) or not 0 <= last_id <= MAX_ID or not isinstance(key, (int, float, str)) or isinstance(key, bool):
        raise ValueError("malformed cursor")
    return values


def normal_cursor(cursor: str | None, sort: str) -> str | None:
    """``cursor`` checked and re-encoded in normal form, so that `queue` only ever compares a
    finite score or a UTC time it can represent; None for none; ValueError for anything else.

    A cursor is the client's to send back, so any string may arrive: one nested too deeply
    (RecursionError), a score of NaN (matching nothing: an empty page) or 1e999, a time whose
    offset takes it past year 1 or 9999 in UTC (OverflowError).
    """
    if not cursor:
        return None
    try:
        key, last_id = decode_cursor(cursor)
        if sort in ("risk", "label"):
            if not isinstance(key, (int, float)) or isinstance(key, bool) or not math.isfinite(key := float(key)):
                raise ValueError("not a score")
        else:
            if not isinstance(key, str):
                raise ValueError("not a time")
            key = aware(datetime.fromisoformat(key)).astimezone(timezone.utc).isoformat()
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as error:
        raise ValueError("malformed cursor") from error
    return encode_cursor([key, last_id])


def _matching(where: QueueFilter) -> list:
    """SQL conditions for a filter; ``status`` None matches every status."""
    conditions = [Comment.discarded.is_(False), Comment.purged_at.is_(None)]
    if where.status is not None:
        conditions.append(Comment.status == where.status)
    if where.label:
        conditions.append(Comment.scores[where.label].as_float() >= where.label_at)
    for column, value in ((Comment.article_id, where.article),
                          (Comment.author_email, where.author and where.author.lower()), (Comment.author_ip, where.ip)):
        if value is not None:
            conditions.append(column == value)
    if where.section is not None:  # "Sport" finds "sport": sections are names people type
        conditions.append(func.lower(Comment.article_section) == func.lower(where.section))  # one folding, the database's
    now = utcnow()
    if where.older_than is not None:
        conditions.append(Comment.created_at <= now - where.older_than)
    if where.newer_than is not None:
        conditions.append(Comment.created_at >= now - where.newer_than)
    return conditions


def _score_key(where: QueueFilter, sort: str):
    """What a page is sorted by, highest first: the filtered label's score (``sort="label"``) or the
    risk; None for ``sort="age"`` (oldest first). Without a label filter "label" is the risk."""
    if sort == "label" and where.label:
        return Comment.scores[where.label].as_float()
    return Comment.risk if sort in ("risk", "label") else None


def queue(session: Session, where: QueueFilter, *, sort: str = "risk", cursor: str | None = None, limit: int = 50) -> tuple[list[Comment], str | None]:
    """Return one page of comments and the cursor of the next page (None at the end).

    Keyset pagination on (score desc, id desc), the score being the risk or the filtered
    label's (`_score_key`), or on (created_at asc, id asc): a page never repeats or skips a
    comment because others arrived or left meanwhile.
    """
    conditions = _matching(where)
    key = _score_key(where, sort)
    if key is not None:
        order = (key.desc(), Comment.id.desc())
        if cursor:
            value, last_id = decode_cursor(cursor)
            if not isinstance(value, (int, float)):
                raise ValueError("malformed cursor")
            conditions.append(or_(key < value, and_(key == value, Comment.id < last_id)))
    else:
        order = (Comment.created_at.asc(), Comment.id.asc())
        if cursor:
            created, last_id = decode_cursor(cursor)
            if not isinstance(created, str):
                raise ValueError("malformed cursor")
            created_at = aware(datetime.fromisoformat(created)).astimezone(timezone.utc)
            conditions.append(or_(Comment.created_at > created_at, and_(Comment.created_at == created_at, Comment.id > last_id)))
    rows = list(session.scalars(select(Comment).where(*conditions).order_by(*order).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    if not more:
        return page, None
    last = page[-1]
    if key is None:
        return page, encode_cursor([aware(last.created_at).isoformat(), last.id])
    return page, encode_cursor([last.scores[where.label] if sort == "label" and where.label else last.risk, last.id])


def aware(moment: datetime) -> datetime:
    """Return ``moment`` with a time zone: SQLite hands datetimes back naive (they are stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Comment.status, func.count()).where(Comment.discarded.is_(False)).group_by(Comment.status)).all()
    return {status: 0 for status in (PUBLISHED, PENDING, REJECTED)} | dict(rows)


# --- the audit log ----------------------------------------------------------------------


def audit(session: Session, *, comment_id: int | None = None, actor: str | None = None, action: str | None = None,
          since: datetime | None = None, until: datetime | None = None, before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Return audit entries newest first, filtered; page with ``before_id``."""
    conditions = []
    for column, value in ((AuditEntry.comment_id, comment_id), (AuditEntry.actor, actor), (AuditEntry.action, action)):
        if value is not None:
            conditions.append(column == value)
    if since is not None:
        conditions.append(AuditEntry.created_at >= since)
    if until is not None:
        conditions.append(AuditEntry.created_at < until)
    if before_id is not None:
        conditions.append(AuditEntry.id < before_id)
    return list(session.scalars(select(AuditEntry).where(*conditions).order_by(AuditEntry.id.desc()).limit(limit)))


# --- API keys -----------------------------------------------------------------------------


def hash_key(raw: str) -> str:
    """Keys are 256-bit random strings, so one sha256 suffices (no password stretching needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _new_key(role: str) -> str:
    return f"cm_{role[0]}_" + secrets.token_urlsafe(32)


def create_key(session: Session, name: str, role: str) -> str:
    """Create a key and return it in clear: the only time it is ever seen."""
    raw = _new_key(role)
    session.add(ApiKey(name=name, role=role, key_hash=hash_key(raw)))
    session.commit()
    return raw


def rotate_key(session: Session, name: str) -> str | None:
    """Give the key named ``name`` a new secret (revoked or not) and return it in clear; None if there is no such key.

    The name stays, and with it the site's comments: a site's comments belong to its key's
    name, so retries by ``external_id`` and polling keep working with the new key. The old
    secret stops working at once (within API_KEY_CACHE_SECONDS on each host).
    """
    key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if key is None:
        return None
    raw = _new_key(key.role)
    key.key_hash, key.revoked_at, key.created_at = hash_key(raw), None, utcnow()
    session.commit()
    return raw


_FIND_KEY = text("SELECT id, name, role, key_hash FROM api_keys WHERE key_hash = :key_hash AND revoked_at IS NULL")


def find_key(session: Session, raw: str) -> ApiKey | None:
    """Return the live key matching ``raw``. The lookup is by hash; the final compare is constant-time."""
    digest = hash_key(raw)
    row = session.connection().execute(_FIND_KEY, {"key_hash": digest}).first()
    if row is None or not secrets.compare_digest(row.key_hash, digest):
        return None
    return ApiKey(id=row.id, name=row.name, role=row.role, key_hash=row.key_hash)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, name: str) -> bool:
    result = session.execute(update(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))
    session.commit()
    return result.rowcount == 1


# --- the review desk ----------------------------------------------------------------------


def count_matching(session: Session, where: QueueFilter) -> dict[str, int]:
    """Comments matching the filter (whatever its status), counted per status."""
    conditions = _matching(QueueFilter(**{**where.__dict__, "status": None}))
    rows = session.execute(select(Comment.status, func.count()).where(*conditions).group_by(Comment.status)).all()
    return {status: 0 for status in (PENDING, REJECTED, PUBLISHED)} | dict(rows)


def matching_ids(session: Session, where: QueueFilter, limit: int, *, sort: str = "risk") -> list[int]:
    """Ids of the comments matching the filter, in the order `queue` pages them: the target of a bulk action on a filter."""
    key = _score_key(where, sort)
    order = (key.desc(), Comment.id.desc()) if key is not None else (Comment.created_at.asc(), Comment.id.asc())
    return list(session.scalars(select(Comment.id).where(*_matching(where)).order_by(*order).limit(limit)))


def comments_by_author(session: Session, *, email: str | None = None, ip: str | None = None, limit: int = 50) -> tuple[dict[str, int], list[Comment]]:
    """An author's record (counts per status, discarded spam included) and latest comments, by email or IP address."""
    column, value = (Comment.author_email, email.lower()) if email else (Comment.author_ip, ip)
    counts = dict(session.execute(select(Comment.status, func.count()).where(column == value).group_by(Comment.status)).all())
    latest = list(session.scalars(select(Comment).where(column == value).order_by(Comment.id.desc()).limit(limit)))
    return {status: counts.get(status, 0) for status in (PUBLISHED, PENDING, REJECTED)}, latest


def last_decision(session: Session, comment_id: int) -> AuditEntry | None:
    """The latest decision on a comment (the model's or a person's; not an erasure): who decided it, and when."""
    return session.scalar(select(AuditEntry).where(AuditEntry.comment_id == comment_id, AuditEntry.action != "erase")
                          .order_by(AuditEntry.id.desc()).limit(1))


def audit_actors(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.actor).distinct().order_by(AuditEntry.actor)))


# --- imports ------------------------------------------------------------------------------


def imported_ids(session: Session, site: str, external_ids: set[str]) -> dict[str, int]:
    """Which of ``external_ids`` the site has already, with their comment ids (an import's idempotency check)."""
    wanted = [e for e in external_ids if e]
    if not wanted:
        return {}
    rows = session.execute(select(Comment.external_id, Comment.id).where(Comment.site == site, Comment.external_id.in_(wanted)))
    return dict(rows.all())


def import_comments(session: Session, rows: list[tuple[dict, dict]], parents: list[int | None], *, commit: bool = True) -> list[int]:
    """Store past comments, each with the audit entry of its past decision, in one transaction.

    ``rows``: (comment values, audit values without comment_id). ``parents[i]``: the index in
    ``rows`` of row i's parent when it is in the same batch (its id is known only after the
    insert). No webhook event is queued: this is history, not news. The unique (site,
    external_id) constraint raises IntegrityError if a concurrent import stored one first.
    ``commit`` False rolls the batch back (a dry run that still meets every constraint).
    """
    if not rows:
        return []
    connection = session.connection()
    comments = Comment.__table__
    statement = comments.insert().returning(comments.c.id, sort_by_parameter_order=True)
    ids = list(connection.execute(statement, [comment for comment, _ in rows]).scalars())
    replies = [{"child": ids[i], "parent": ids[p]} for i, p in enumerate(parents) if p is not None]
    if replies:
        connection.execute(update(comments).where(comments.c.id == bindparam("child")).values(parent_id=bindparam("parent")), replies)
    connection.execute(AuditEntry.__table__.insert(), [{**audit, "comment_id": i} for (_, audit), i in zip(rows, ids)])
    if commit:
        session.commit()
    else:
        session.rollback()
    return ids


# --- privacy ------------------------------------------------------------------------------
# Retention and erasure (moderation.privacy decides what and when; these are its queries).
# Every change is a conditional UPDATE or DELETE in batches of ids, so two hosts running the
# same purge at once cannot do anything twice: the second finds the rows already changed.

PRIVACY_BATCH = 1000


def _in_batches(session: Session, ids_query, change, *, dry_run: bool) -> int:
    """Apply ``change(ids)`` (an UPDATE or DELETE statement, or the count of rows a change made itself)
    to what ``ids_query`` selects, a batch at a time, committing each; with ``dry_run`` only count.
    Return how many rows changed."""
    if dry_run:
        return session.scalar(select(func.count()).select_from(ids_query.subquery()))
    total = 0
    while True:
        ids = list(session.scalars(ids_query.limit(PRIVACY_BATCH)))
        if not ids:
            return total
        changed = change(ids)
        total += changed if isinstance(changed, int) else session.execute(changed).rowcount
        session.commit()


def drop_addresses(session: Session, before: datetime, *, dry_run: bool = False) -> int:
    """Forget the IP address and user agent of comments created before ``before``."""
    kept = [Comment.created_at < before, or_(Comment.author_ip.is_not(None), Comment.author_user_agent.is_not(None))]
    return _in_batches(session, select(Comment.id).where(*kept).order_by(Comment.id),
                       lambda ids: update(Comment).where(Comment.id.in_(ids), *kept).values(author_ip=None, author_user_agent=None),
                       dry_run=dry_run)


def _rejected_as_spam():
    """The comment's latest audit entry rejected it as spam: a person's reason "spam", or the model's
    rejection with spam at least as likely as abuse (the rule the desk's "reject & ban" uses)."""
    latest = aliased(AuditEntry)
    latest_id = (select(func.max(latest.id)).where(latest.comment_id == Comment.id, latest.action != "erase")  # an erasure decides nothing
                 .correlate(Comment).scalar_subquery())  # two levels down
    spam = func.coalesce(Comment.scores["spam"].as_float(), 0.0)
    toxic = func.coalesce(Comment.scores["toxic"].as_float(), 0.0)
    return or_(Comment.discarded.is_(True), exists().where(
        AuditEntry.id == latest_id, or_(AuditEntry.reason == "spam", and_(AuditEntry.actor == "model", spam >= toxic))))


def purge_spam(session: Session, before: datetime, *, dry_run: bool = False) -> int:
    """Blank the text and author of spam rejected (and unchanged) since before ``before``; mark it purged.

    The row stays: the append-only audit log refers to it.
    """
    purgeable = [Comment.status == REJECTED, Comment.purged_at.is_(None), Comment.updated_at < before, _rejected_as_spam()]
    blank = {"text": "", "text_hash": "", "terms": [], "author_name": None, "author_email": None, "author_url": None,
             "author_ip": None, "author_user_agent": None, "purged_at": utcnow()}
    return _in_batches(session, select(Comment.id).where(*purgeable).order_by(Comment.id),
                       lambda ids: update(Comment).where(Comment.id.in_(ids), *purgeable[:3]).values(**blank), dry_run=dry_run)


def delete_expired_sessions(session: Session, now: datetime, *, dry_run: bool = False) -> int:
    expired = DeskSession.expires_at < now
    return _in_batches(session, select(DeskSession.id).where(expired), lambda ids: delete(DeskSession).where(DeskSession.id.in_(ids)),
                       dry_run=dry_run)


def delete_old_ip_bans(session: Session, before: datetime, *, dry_run: bool = False) -> int:
    """Lift IP bans older than ``before``; the ban history records each lift, by "retention"."""
    old = [Ban.kind == "ip", Ban.created_at < before]
    return _in_batches(session, select(Ban.id).where(*old).order_by(Ban.id),
                       lambda ids: bans.remove(session, Ban.id.in_(ids), by="retention", reason="IP bans are kept RETAIN_IP_DAYS days"),
                       dry_run=dry_run)


def comments_of_reader(session: Session, address: str) -> list[Comment]:
    """Comments whose author email (any case), name or URL is ``address`` or contains it."""
    address = address.lower()
    return list(session.scalars(select(Comment).where(or_(
        func.lower(Comment.author_email) == address,
        Comment.author_name.icontains(address, autoescape=True),
        Comment.author_url.icontains(address, autoescape=True),
    )).order_by(Comment.id)))


def comments_mentioning(session: Session, address: str) -> list[Comment]:
    """Comments whose text mentions ``address`` (any case), whoever wrote them."""
    return list(session.scalars(select(Comment).where(Comment.text.icontains(address, autoescape=True)).order_by(Comment.id)))


def erase_author(session: Session, ids: list[int]) -> int:
    """Remove name, email, URL, IP address and user agent from these comments (no commit)."""
    if not ids:
        return 0
    return session.execute(update(Comment).where(Comment.id.in_(ids)).values(
        author_name=None, author_email=None, author_url=None, author_ip=None, author_user_agent=None)).rowcount


def replace_text(session: Session, comment_id: int, text_value: str, digest: str, terms: list) -> None:
    """Store a comment's redacted text, its new hash and its terms (no commit)."""
    session.execute(update(Comment).where(Comment.id == comment_id).values(text=text_value, text_hash=digest, terms=terms))


def delete_bans_of(session: Session, address: str, ips: set[str], *, by: str) -> int:
    """Lift the bans on ``address``, on these IP addresses, and any whose reason mentions ``address``,
    recording each lift in the ban history as ``by``'s erasure (no commit)."""
    conditions = [and_(Ban.kind == "email", func.lower(Ban.value) == address.lower()), Ban.reason.icontains(address, autoescape=True)]
    if ips:
        conditions.append(and_(Ban.kind == "ip", Ban.value.in_(sorted(ips))))
    return bans.remove(session, or_(*conditions), by=by, reason="a reader's personal data erased")


def audit_notes_mentioning(session: Session, address: str) -> int:
    """Audit entries whose note mentions ``address``: they cannot be changed (append-only), only counted."""
    return session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.note.icontains(address, autoescape=True)))


def add_audit_note(session: Session, comment: Comment, *, actor: str, action: str, note: str) -> None:
    """An audit entry that records something other than a status change (no commit)."""
    session.add(AuditEntry(comment_id=comment.id, actor=actor, action=action, reason=None, note=mask_emails(note), previous_status=comment.status,
                           new_status=comment.status, scores=comment.scores, model_version=comment.model_version, created_at=utcnow()))
