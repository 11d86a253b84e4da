"""Every setting, declared once with its default and help text, applied in layers.

Order (later wins): the defaults below, a TOML file (``MODERATION_CONFIG`` or
``instance/moderation.toml``), ``MODERATION_<NAME>`` environment variables, then
explicit overrides (tests, command-line options). README.md lists every setting; a test
fails when one is missing there.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, NamedTuple


class Setting(NamedTuple):
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("INSTANCE_DIR", "instance", "Folder for this installation's files: models, SQLite database, config."),
    Setting("MODEL_DIR", None, "Model bundle to serve and score with. Default: INSTANCE_DIR/model."),
    Setting("DATA_DIR", None, "Folder holding the public labelled datasets. Default: ../shared/data beside the checkout."),
    Setting("DECISION_LABELS", ["spam", "toxic"], "Labels whose thresholds decide accept/review/reject; the others are informational."),
    Setting("THRESHOLDS", {}, 'Per-label threshold overrides, e.g. {"toxic": {"review_at": 0.3, "reject_at": 0.99}}.'),
    Setting("EXPLAIN_TOP", 5, "How many top terms per label to return with each score."),
)

DEFAULTS = {s.name: s.default for s in SETTINGS}
PREFIX = "MODERATION_"


def _parse_env(raw: str, default: Any) -> Any:
    """Read an environment string as the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, dict)):
        return json.loads(raw)
    return raw


def load_config(overrides: dict | None = None, environ: dict | None = None) -> dict[str, Any]:
    """Return the effective configuration: defaults, then TOML file, environment, overrides."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    toml_path = Path(environ.get(PREFIX + "CONFIG") or Path(config["INSTANCE_DIR"]) / "moderation.toml")
    if toml_path.is_file():
        with open(toml_path, "rb") as handle:
            config.update({key.upper(): value for key, value in tomllib.load(handle).items()})
    for setting in SETTINGS:
        raw = environ.get(PREFIX + setting.name)
        if raw is not None:
            config[setting.name] = _parse_env(raw, setting.default)
    config.update(overrides or {})
    if not config["MODEL_DIR"]:
        config["MODEL_DIR"] = str(Path(config["INSTANCE_DIR"]) / "model")
    return config
