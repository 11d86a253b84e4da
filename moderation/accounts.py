"""Moderator accounts for the review desk: passwords, lock-out, and sign-in sessions.

Passwords are hashed with argon2 (argon2-cffi). A session is a random token in the
browser's cookie; the database keeps only its sha256, so signing out (or disabling the
account) ends it everywhere at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from moderation.schema import DeskSession, User, utcnow

ROLES = ("moderator", "admin")
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")  # verified against for unknown names: same timing


class AccountError(ValueError):
    """A user-management request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: a user, or why not (``locked_until`` when locked)."""

    user: User | None
    locked_until: datetime | None = None


def _aware(moment: datetime | None) -> datetime | None:
    from moderation.store import aware

    return aware(moment) if moment else None


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def add_user(session: Session, name: str, role: str, password: str) -> User:
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("the name must have 1 to 100 characters")
    if role not in ROLES:
        raise AccountError(f"the role must be one of {', '.join(ROLES)}")
    check_password_rules(password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise AccountError(f"a user named {name!r} already exists")
    user = User(name=name, role=role, password_hash=_hasher.hash(password), failed_logins=0)
    session.add(user)
    session.commit()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def set_password(session: Session, name: str, password: str) -> None:
    check_password_rules(password)
    _update(session, name, password_hash=_hasher.hash(password))
    end_sessions(session, name)


def disable_user(session: Session, name: str) -> None:
    """Disable the account and end its sessions; its past decisions stay in the audit log."""
    _update(session, name, disabled_at=utcnow())
    end_sessions(session, name)


def enable_user(session: Session, name: str) -> None:
    _update(session, name, disabled_at=None, failed_logins=0, locked_until=None)


def unlock_user(session: Session, name: str) -> None:
    _update(session, name, failed_logins=0, locked_until=None)


def _update(session: Session, name: str, **values) -> None:
    result = session.execute(update(User).where(User.name == name).values(**values))
    session.commit()
    if result.rowcount != 1:
        raise AccountError(f"no user named {name!r}")


def authenticate(session: Session, name: str, password: str, *, max_failures: int, lockout: timedelta) -> SignIn:
    """Check a name and password, counting consecutive failures and locking the account after ``max_failures``.

    While locked, even the right password is refused, so guessing gains nothing.
    """
    user = find_user(session, name.strip())
    now = utcnow()
    if user is None or user.disabled_at is not None:
        _verify(_DUMMY_HASH, password)
        return SignIn(None)
    locked_until = _aware(user.locked_until)
    if locked_until and locked_until > now:
        return SignIn(None, locked_until)
    if _verify(user.password_hash, password):
        values = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(user.password_hash):
            values["password_hash"] = _hasher.hash(password)
        session.execute(update(User).where(User.id == user.id).values(**values))
        session.commit()
        return SignIn(user)
    failures = (user.failed_logins or 0) + 1
    lock = now + lockout if failures >= max_failures else None
    # Counted in the database, so the count holds across workers and hosts.
    session.execute(update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1, locked_until=lock))
    session.commit()
    return SignIn(None, lock)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# --- sessions ------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: User, lifetime: timedelta) -> str:
    """Create a session for ``user`` and return its token (for the cookie only)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.execute(delete(DeskSession).where(DeskSession.expires_at < now))  # tidy up expired ones
    session.add(DeskSession(token_hash=_token_hash(token), user_id=user.id, created_at=now, expires_at=now + lifetime))
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """Return the live, enabled user a session token belongs to, or None."""
    row = session.execute(
        select(User, DeskSession.expires_at).join(DeskSession, DeskSession.user_id == User.id)
        .where(DeskSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    user, expires_at = row
    if user.disabled_at is not None or _aware(expires_at) <= utcnow():
        return None
    return user


def end_session(session: Session, token: str) -> None:
    session.execute(delete(DeskSession).where(DeskSession.token_hash == _token_hash(token)))
    session.commit()


def end_sessions(session: Session, name: str) -> None:
    user_id = session.scalar(select(User.id).where(User.name == name))
    if user_id is not None:
        session.execute(delete(DeskSession).where(DeskSession.user_id == user_id))
        session.commit()
