"""Read the comments of a WordPress export (WXR) as import records, streaming.

An export can be gigabytes, so the file is never held whole: defusedxml's iterparse (no
entity expansion, no DTDs, no external resources: an export is not trusted input) reads
it element by element, and each comment, then each post, is dropped from the tree as
soon as it is read, so memory stays flat however long the file.

WordPress states (``wp:comment_approved``): ``1`` approved, ``spam``, ``trash``, ``0``
pending (never decided). Only comments are read: pingbacks, trackbacks and other types
are skipped, saying so. ``external_id`` is ``wp-<comment_id>``, as the site's own
integration would send it, so a later live comment and a re-import both find it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import BinaryIO, Iterator

from defusedxml.ElementTree import iterparse

from moderation.imports import Record

STATES = {"1": "approved", "spam": "spam", "trash": "trash", "0": "pending"}
NOTES = {"approved": "approved in WordPress", "spam": "marked spam in WordPress",
         "trash": "trashed in WordPress (trash says nothing about why: no label)", "pending": "pending in WordPress"}
NO_DATE = "0000-00-00 00:00:00"


def _local(tag: str) -> tuple[str, str]:
    """("wp", "comment_id") for "{http://wordpress.org/export/1.2/}comment_id"; any WXR version."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return ("wp" if namespace.startswith("http://wordpress.org/export/") else namespace), name
    return "", tag


def _date(value: str | None) -> datetime | None:
    if not value or value.strip() in ("", NO_DATE):
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _shown(value: str) -> str:
    """A value from the file as the summary prints it: as it is when short and printable, else quoted and cut,
    so a hostile export cannot send control sequences to the operator's terminal nor flood the summary."""
    return value if value.isprintable() and len(value) <= 40 else repr(value[:40])


def _record(fields: dict[str, str], article: dict) -> Record:
    comment_id = fields.get("comment_id", "").strip()
    record = Record(where=f"comment {_shown(comment_id) if comment_id else '?'}", external_id=f"wp-{comment_id}" if comment_id else None)
    kind = fields.get("comment_type", "").strip() or "comment"  # before WordPress 5.5 a comment's type was empty
    state = fields.get("comment_approved", "").strip()
    record.outcome = STATES.get(state)
    record.note = NOTES.get(record.outcome)
    if not comment_id:
        record.skip = "no wp:comment_id"
    elif kind != "comment":
        record.skip = f"not a comment ({_shown(kind)})"
    elif record.outcome is None:
        record.skip = f"unknown wp:comment_approved {state[:40]!r}"
    if record.skip:
        return record
    record.text = fields.get("comment_content", "")
    record.author = {"name": fields.get("comment_author", "").strip(), "email": fields.get("comment_author_email", "").strip(),
                     "url": fields.get("comment_author_url", "").strip(), "ip": fields.get("comment_author_IP", "").strip()}
    record.article = dict(article)
    parent = fields.get("comment_parent", "").strip()
    record.parent_external_id = f"wp-{parent}" if parent and parent != "0" else None
    record.created_at = _date(fields.get("comment_date_gmt")) or _date(fields.get("comment_date"))  # local time if GMT is missing
    if record.created_at is None:
        record.skip = "no valid wp:comment_date_gmt or wp:comment_date"
    return record


def read(handle: BinaryIO) -> Iterator[Record]:
    """Yield one record per ``wp:comment`` of the WXR file ``handle`` (opened in binary)."""
    stack: list = []  # the open elements, outermost first
    article: dict = {}
    for event, element in iterparse(handle, events=("start", "end")):
        if event == "start":
            if element.tag == "item":
                article = {}
            stack.append(element)
            continue
        stack.pop()
        if not stack:
            continue
        parent = stack[-1]
        if parent.tag == "item":
            space, name = _local(element.tag)
            if (space, name) == ("wp", "comment"):
                yield _record({_local(child.tag)[1]: child.text or "" for child in element if _local(child.tag)[0] == "wp"}, article)
            else:
                _article_field(article, space, name, element)
        if parent.tag in ("item", "channel"):
            parent.remove(element)  # read: drop it, so the tree (and memory) never grows with the file


def _article_field(article: dict, space: str, name: str, element) -> None:
    """Remember what the comments of a post need of it: id, title, link, first category."""
    value = (element.text or "").strip()
    if (space, name) == ("wp", "post_id"):
        article["id"] = value
    elif (space, name) == ("", "title"):
        article["title"] = value
    elif (space, name) == ("", "link"):
        article["url"] = value
    elif (space, name) == ("", "category") and element.get("domain") == "category" and "section" not in article:
        article["section"] = value
