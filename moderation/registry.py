"""The model registry: every bundle kept under its version, and which one is live.

Bundles live in MODELS_DIR (default INSTANCE_DIR/models), one folder per version; the
database lists them and keeps an append-only history of promotions, whose newest row
names the live version. Before the first promotion the live model is the bundle in
MODEL_DIR (the default one `moderation train` writes). A version is verified (sha256
before unpickling, library versions) before it is registered and again before it is
promoted, so a tampered bundle never goes live.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from moderation import bundle
from moderation.schema import ModelVersion, Promotion, utcnow


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
        shutil.copytree(source, staging)
        try:
            staging.rename(target)  # atomic: a reader sees the whole bundle or none
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not target.exists():
                raise
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


def promote(session: Session, config: dict, version: str, *, actor: str, reason: str | None = None, action: str = "promote") -> None:
    """Make ``version`` live after verifying its bundle again; workers pick it up within MODEL_CHECK_SECONDS."""
    if session.get(ModelVersion, version) is None:
        raise RegistryError(f"no registered version {version!r}: see `moderation models list`")
    try:
        bundle.load(bundle_dir(config, version))
    except bundle.BundleError as error:
        raise RegistryError(f"version {version} cannot go live: {error}") from None
    session.add(Promotion(version=version, action=action, actor=actor, reason=reason, created_at=utcnow()))
    session.commit()


def _live_stack(session: Session) -> list[str]:
    """Replay the history: a promotion pushes its version, a rollback pops back to the one before."""
    stack: list[str] = []
    for action, version in session.execute(select(Promotion.action, Promotion.version).order_by(Promotion.id)):
        if action == "rollback" and len(stack) > 1:
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
    promote(session, config, earlier, actor=actor, reason=f"rollback from {current}", action="rollback")
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
