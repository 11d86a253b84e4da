"""Retention and erasure: readers' personal data is kept only while it helps moderation, and removed on request.

`purge` runs from cron on any number of hosts at once: each step is a conditional UPDATE
or DELETE (moderation.store, "privacy"), so a run that comes second finds nothing left
to do. `erase` removes one reader's name, email, URL, IP address and user agent while
the comment texts and the moderators' decisions stay, so the training labels stay too.
README.md ("Privacy") lists what is stored and for how long.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from moderation import store
from moderation.schema import utcnow
from moderation.text import normalize

EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")  # what intake accepts as an author email (validation._EMAIL)
ERASE = "erase"  # the audit action of an erasure


@dataclass
class Purged:
    addresses: int = 0  # comments whose IP address and user agent were dropped
    spam: int = 0  # rejected spam comments blanked
    sessions: int = 0  # expired desk sessions deleted
    ip_bans: int = 0  # IP bans deleted

    def summary(self, config: dict, *, dry_run: bool) -> str:
        verb = "would be" if dry_run else "were"
        ip_days, spam_days = config["RETAIN_IP_DAYS"], config["PURGE_SPAM_DAYS"]
        ips = f"{self.addresses} comments older than {ip_days} days {verb} stripped of IP address and user agent" if ip_days else "IP addresses are kept (RETAIN_IP_DAYS is 0)"
        bans = f"{self.ip_bans} IP bans older than {ip_days} days {verb} lifted" if ip_days else "IP bans are kept"
        spam = f"{self.spam} spam comments rejected over {spam_days} days ago {verb} purged" if spam_days else "rejected spam is kept (PURGE_SPAM_DAYS is 0)"
        return f"{ips}; {spam}; {bans}; {self.sessions} expired desk sessions {verb} deleted"


def purge(session: Session, config: dict, *, dry_run: bool = False) -> Purged:
    """Apply the retention settings once. A setting of 0 days keeps that data forever."""
    now = utcnow()
    result = Purged()
    if config["RETAIN_IP_DAYS"]:
        before = now - timedelta(days=config["RETAIN_IP_DAYS"])
        result.addresses = store.drop_addresses(session, before, dry_run=dry_run)
        result.ip_bans = store.delete_old_ip_bans(session, before, dry_run=dry_run)
    if config["PURGE_SPAM_DAYS"]:
        result.spam = store.purge_spam(session, now - timedelta(days=config["PURGE_SPAM_DAYS"]), dry_run=dry_run)
    result.sessions = store.delete_expired_sessions(session, now, dry_run=dry_run)
    return result


@dataclass
class Erased:
    comments: int = 0  # comments whose author fields were removed
    texts_redacted: int = 0  # comments (anyone's) whose text mentioned the address, now masked
    bans_removed: int = 0
    audit_notes_mentioning: int = 0  # audit notes that mention the address: append-only, so left as they are

    def as_json(self) -> dict:
        return asdict(self)


def checked_email(raw) -> str:
    """The address to erase, trimmed; ValueError saying why when it is not one."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("must be an email address")
    address = raw.strip()
    if len(address) > 320 or not EMAIL.fullmatch(address):
        raise ValueError("is not an email address (name@domain, at most 320 characters)")
    return address


def mask(address: str, text: str) -> str:
    """``text`` with every mention of ``address`` (any case) replaced by a mask of the same length,
    so the character offsets of the comment's highlighted terms stay right."""
    width = len(address)
    cover = "[erased" + "*" * (width - 8) + "]" if width >= 8 else "*" * width
    return re.sub(re.escape(address), cover, text, flags=re.IGNORECASE)


def erase(session: Session, email: str, *, actor: str, dry_run: bool = False) -> Erased:
    """Remove one reader's personal data, in one transaction; idempotent (a second run finds nothing).

    Their comments lose name, email, URL, IP address and user agent; any comment text that
    mentions the address has it masked; bans on the address, on the IP addresses of their
    comments, and bans whose reason mentions it are lifted. Texts and decisions stay. One
    audit entry (action "erase", on their newest comment) records that it happened, with
    counts only. Audit notes cannot be changed; the answer counts those mentioning the address.
    """
    address = checked_email(email)
    own = store.comments_of_reader(session, address)
    mentioning = store.comments_mentioning(session, address)
    result = Erased(comments=len(own), texts_redacted=len(mentioning), audit_notes_mentioning=store.audit_notes_mentioning(session, address))
    if dry_run:
        session.rollback()
        return result
    ips = {c.author_ip for c in own if c.author_ip}  # read before the update clears them
    store.erase_author(session, [c.id for c in own])
    for comment in mentioning:
        terms = [{**term, "text": mask(address, term["text"])} if isinstance(term, dict) and isinstance(term.get("text"), str) else term
                 for term in comment.terms or []]
        redacted = mask(address, comment.text)
        store.replace_text(session, comment.id, redacted, store.text_hash(normalize(redacted)), terms)
    result.bans_removed = store.delete_bans_of(session, address, ips, by=actor)
    touched = own or mentioning
    if touched:
        newest = max(touched, key=lambda c: c.id)
        store.add_audit_note(session, newest, actor=actor, action=ERASE,
                             note=f"a reader's personal data erased: {result.comments} comments, {result.texts_redacted} texts masked, "
                                  f"{result.bans_removed} bans lifted")
    session.commit()
    return result
