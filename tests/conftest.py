"""Shared fixtures: a tiny model trained in seconds from data/examples.csv for the wiring,
and (in tests/model/) a model trained on the real public datasets for behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moderation import bundle
from training.datasets import default_data_dir, is_available
from training.pipeline import run_training
from training.train import TrainingConfig

PUBLIC_SETS = ("youtube_spam", "sms_spam", "impermium_insults", "davidson_hate_offensive", "olid_offenseval2019", "jigsaw_toxic_binary_sample")


def public_data_or_skip() -> Path:
    """Return the public data directory; skip (or fail in CI) when the sets are missing."""
    data_dir = default_data_dir()
    if all(is_available(name, data_dir) for name in PUBLIC_SETS):
        return data_dir
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs the public datasets in {data_dir}")
    pytest.skip(f"public datasets not found in {data_dir}")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    """A bundle trained on our own examples only: seconds, for wiring tests."""
    out = tmp_path_factory.mktemp("tiny") / "model"
    run_training(default_data_dir(), out, names=["examples"], config=TrainingConfig(kind="logreg"))
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_bundle):
    return bundle.load(tiny_bundle)


@pytest.fixture
def tiny_bundle_copy(tiny_bundle, tmp_path) -> Path:
    """A private copy of the tiny bundle that a test may damage."""
    import shutil

    target = tmp_path / "model"
    shutil.copytree(tiny_bundle, target)
    return target
