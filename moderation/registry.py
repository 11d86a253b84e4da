"""The model registry: every bundle kept under its version, and which one is live.

Bundles live in MODELS_DIR (default INSTANCE_DIR/models), one folder per version; the
database lists them and keeps an append-only history of promotions, whose newest row
names the live version. Before the first promotion the live model is the bundle in
MODEL_DIR (the default one `moderation train` writes). A version is verified (sha256
before unpickling, library versions) before it is registered and again before it is
promoted, so a tampered bundle never goes live. Promotions are serialised across hosts,
and one that was judged against a particular live version (retrain, rollback) is refused
if another went live meanwhile, rather than silently replacing a model nobody compared it with.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, Text, func, insert, literal, select, text
from sqlalchemy.orm import Session

from moderation import bundle
from moderation.schema import ModelVersion, Promotion, utcnow


_PROMOTION_LOCK = 724_332  # pg_advisory_xact_lock key: one promotion at a time across hosts (db.py's migration lock is 724_331)
WHATEVER_IS_LIVE = object()  # `promote`'s default: replace whichever version is live


class RegistryError(ValueError):
    """A registry request that cannot be carried out; the message says why."""


@dataclass
class Entry:
    """A registered version as `moderation models list` shows it."""

    version: str
    created_at: datetime
    live: bool
    note: str | None
    promoted_at: datetime | None


def models_dir(config: dict) -> Path:
    return Path(config.get("MODELS_DIR") or Path(config["INSTANCE_DIR"]) / "models")


def bundle_dir(config: dict, version: str) -> Path:
    return models_dir(config) / version


def register(session: Session, config: dict, source: Path, note: str | None = None) -> str:
    """Copy a verified bundle into the registry under its version; registering twice is harmless."""
    bundle.load(source)  # raises BundleError on a tampered or incompatible bundle
    manifest = bundle.read_manifest(source)
    version = manifest["version"]
    target = bundle_dir(config, version)
    if not target.exists():
        staging = target.with_name(f".{version}.{uuid.uuid4().hex[:8]}")
        try:
            shutil.copytree(source, staging)
            staging.rename(target)  # atomic: a reader sees the whole bundle or none
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():  # else another process registered it first
                raise RegistryError(f"cannot copy bundle {version} into the registry {models_dir(config)}: {error}") from None
    if session.get(ModelVersion, version) is None:
        session.add(ModelVersion(version=version, path=version, sha256=manifest["sha256"], created_at=utcnow(), note=note))
        session.commit()
    return version


def live_version(session: Session) -> str | None:
    """The version the newest promotion names, or None before the first one."""
    return session.scalar(select(Promotion.version).order_by(Promotion.id.desc()).limit(1))


def live_bundle_dir(session: Session, config: dict) -> Path:
    """Where the live model's bundle is: the registry's live version, else MODEL_DIR."""
    version = live_version(session)
    return bundle_dir(config, version) if version else Path(config["MODEL_DIR"])


def _shown(version: str | None) -> str:
    return version or "the default model (MODEL_DIR)"


def promote(session: Session, config: dict, version: str, *, actor: str, reason: str | None = None, action: str = "promote",
            expected_live=WHATEVER_IS_LIVE) -> bool:
    """Make ``version`` live after verifying its bundle again; workers pick it up within MODEL_CHECK_SECONDS.

    ``expected_live``: the version (None: the default model) the caller judged against; if
    another is live by now (promoted or rolled back from elsewhere meanwhile), raise
    `RegistryError` and change nothing. The check and the new row are one statement, under a
    lock on PostgreSQL, so two hosts promoting at once cannot both pass it.

    :return: False when ``version`` was live already (nothing written: a repeat is no new step to roll back).
    """
    if session.get(ModelVersion, version) is None:
        raise RegistryError(f"no registered version {version!r}: see `moderation models list`")
    try:
        bundle.load(bundle_dir(config, version))
    except bundle.BundleError as error:
        raise RegistryError(f"version {version} cannot go live: {error}") from None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PROMOTION_LOCK})  # held until commit or rollback
    live = func.coalesce(select(Promotion.version).order_by(Promotion.id.desc()).limit(1).scalar_subquery(), "")
    conditions = [live != version]
    if expected_live is not WHATEVER_IS_LIVE:
        conditions.append(live == (expected_live or ""))
    row = select(literal(version), literal(action), literal(actor), literal(reason, Text()), literal(utcnow(), DateTime(timezone=True)))
    written = session.scalar(insert(Promotion).from_select(["version", "action", "actor", "reason", "created_at"], row.where(*conditions))
                             .returning(Promotion.id))  # not rowcount: psycopg reports -1 for INSERT ... SELECT
    now_live = live_version(session)
    session.commit()
    if written is not None:
        return True
    if now_live == version:
        return False
    raise RegistryError(f"{_shown(now_live)} went live while this ran, not {_shown(expected_live)} as expected: nothing was changed")


def _live_stack(session: Session) -> list[str]:
    """Replay the history: a promotion pushes its version, a rollback pops back to the one before.

    A row naming the version already on top changes nothing (a repeated promotion), and a rollback
    row that does not name the version below the top counts as a promotion of what it names, so
    the top is always the live version, whatever rows earlier versions or races wrote.
    """
    stack: list[str] = []
    for action, version in session.execute(select(Promotion.action, Promotion.version).order_by(Promotion.id)):
        if stack and stack[-1] == version:
            continue
        if action == "rollback" and len(stack) > 1 and stack[-2] == version:
            stack.pop()
        else:
            stack.append(version)
    return stack


def rollback(session: Session, config: dict, *, actor: str) -> str:
    """Make live again the version that was live before the current one; return it. Twice walks back twice."""
    stack = _live_stack(session)
    if len(stack) < 2:
        raise RegistryError("nothing to roll back to: " + (f"{stack[0]} is the only version ever live" if stack else "no version was ever promoted"))
    current, earlier = stack[-1], stack[-2]
    promote(session, config, earlier, actor=actor, reason=f"rollback from {current}", action="rollback", expected_live=current)
    return earlier


def entries(session: Session) -> list[Entry]:
    live = live_version(session)
    promoted = {}
    for version, moment in session.execute(select(Promotion.version, Promotion.created_at).order_by(Promotion.id)):
        promoted[version] = moment
    return [Entry(v.version, v.created_at, v.version == live, v.note, promoted.get(v.version))
            for v in session.scalars(select(ModelVersion).order_by(ModelVersion.created_at, ModelVersion.version))]


def history(session: Session) -> list[Promotion]:
    return list(session.scalars(select(Promotion).order_by(Promotion.id.desc())))
