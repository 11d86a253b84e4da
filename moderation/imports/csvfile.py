"""Read past moderated comments from a CSV file as import records, streaming.

Columns: ``text`` (required) and the outcome, either as a ``status`` column or as the
``spam``/``toxic`` 0/1 columns that ``moderation export-labels`` writes (so its files
import back); ``status`` wins when both are present. Optional: ``external_id``,
``created_at``, ``decided_at`` (ISO 8601, UTC unless a zone is given), ``author_name``,
``author_email``, ``author_url``, ``author_ip``, ``article_id``, ``article_url``,
``article_title``, ``article_section``. Without ``external_id`` a row's id is a hash of
its text, outcome and dates, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
from datetime import datetime, timezone
from typing import Iterator, TextIO

from moderation.imports import Record

STATUSES = {
    "approved": "approved", "approve": "approved", "published": "approved", "accept": "approved", "1": "approved",
    "spam": "spam", "abuse": "abuse", "toxic": "abuse", "off_topic": "off_topic",
    "rejected": "rejected", "reject": "rejected", "other": "rejected", "trash": "trash",
    "pending": "pending", "review": "pending", "0": "pending",
}
AUTHOR = ("name", "email", "url", "ip")
ARTICLE = ("id", "url", "title", "section")


class CsvError(Exception):
    """The file cannot be read as a CSV of comments at all (not one bad row)."""


def _outcome(row: dict, has_status: bool) -> tuple[str | None, str]:
    """(outcome, or None; the reason when None)."""
    if has_status:
        raw = (row.get("status") or "").strip().lower()
        return STATUSES.get(raw), f"unknown status {raw[:40]!r}" if raw else "no status"
    spam, toxic = ((row.get(label) or "").strip() for label in ("spam", "toxic"))
    if "1" in (spam, toxic):  # one decision carries one label: spam wins if both are set
        return ("spam" if spam == "1" else "abuse"), ""
    if (spam, toxic) == ("0", "0"):
        return "approved", ""
    if spam or toxic:
        return None, f"labels spam={spam!r} toxic={toxic!r} are neither a rejection nor an approval (which needs both 0)"
    return None, "no label"


def _cell(value: str | None) -> str:
    """A label cell as the audit note keeps it: 0, 1 or empty as they are, anything else quoted and cut
    (the cell that does not decide may hold anything, a NUL byte too, which PostgreSQL cannot store)."""
    value = (value or "").strip()
    return value if value in ("", "0", "1") else repr(value[:40])


def _moment(value: str | None) -> datetime | None:
    """Parse an ISO 8601 time; raise ValueError if it is not one."""
    if not value or not value.strip():
        return None
    moment = datetime.fromisoformat(value.strip())
    # In UTC: SQLite's DateTime column keeps the wall time and drops the zone, so 12:00+02:00 would read back as 12:00 UTC.
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def read(handle: TextIO) -> Iterator[Record]:
    """Yield one record per row of the CSV ``handle`` (opened with ``newline=""``)."""
    reader = csv.DictReader(handle)
    columns = reader.fieldnames or []
    if "text" not in columns:
        raise CsvError(f"no 'text' column (columns: {', '.join(columns) or 'none'})")
    has_status = "status" in columns
    if not has_status and not {"spam", "toxic"} & set(columns):
        raise CsvError("no outcome: give a 'status' column or 'spam'/'toxic' 0/1 columns")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise CsvError(f"line {reader.line_num}: {error}") from None
        yield _record(row, reader.line_num, has_status)


def _record(row: dict, line: int, has_status: bool) -> Record:
    record = Record(where=f"line {line}", text=row.get("text"))
    if None in row:
        record.skip = "more cells than columns"
        return record
    record.outcome, why = _outcome(row, has_status)
    if record.outcome is None:
        record.skip = why
        return record
    try:
        record.created_at, record.decided_at = _moment(row.get("created_at")), _moment(row.get("decided_at"))
    except ValueError:
        record.skip = "created_at or decided_at is not an ISO 8601 time"
        return record
    record.created_at = record.created_at or record.decided_at
    record.note = f"status {row['status'].strip()}" if has_status else f"labels spam={_cell(row.get('spam'))} toxic={_cell(row.get('toxic'))}"
    record.author = {key: (row.get(f"author_{key}") or "").strip() for key in AUTHOR}
    record.article = {key: (row.get(f"article_{key}") or "").strip() for key in ARTICLE}
    given = (row.get("external_id") or "").strip()
    digest = hashlib.sha256("\0".join([record.text or "", record.outcome, row.get("created_at") or "", row.get("decided_at") or ""]).encode()).hexdigest()
    record.external_id = given or f"csv-{digest[:40]}"
    return record
