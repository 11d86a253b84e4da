"""requirements.lock pins every dependency at a version pyproject.toml allows, and the environment runs those pins.

CI audits the lock file for known vulnerabilities (`.ci/run`), so a lock that drifted from
pyproject.toml, or an environment not installed from it, would audit something other than what runs.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in names]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"requirements.lock must pin exact versions: {line}"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def test_the_lock_pins_every_declared_dependency_within_its_range():
    locked = _locked()
    for requirement in _declared():
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is in pyproject.toml but not in requirements.lock: re-run pip-compile (README, Dependencies)"
        assert requirement.specifier.contains(locked[name], prereleases=True), \
            f"requirements.lock pins {requirement.name}=={locked[name]}, outside pyproject.toml's {requirement.specifier}"


@pytest.mark.parametrize("name", ["scikit-learn", "flask", "sqlalchemy", "numpy", "pytest"])
def test_the_environment_runs_the_locked_versions(name):
    assert metadata.version(name) == _locked()[canonicalize_name(name)], "install with scripts/setup, which installs within requirements.lock"
