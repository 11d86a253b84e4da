"""Save and load model bundles: a joblib file plus a manifest that vouches for it.

joblib is pickle, and unpickling runs code. So `load` checks the file's sha256 against
the manifest *before* unpickling, and refuses a bundle built with another scikit-learn
minor version, whose pickles are "entirely unsupported" by scikit-learn itself. Only load
bundles that this project's own training wrote.

Beside it, ``weights.npz`` holds what scoring reads (`moderation.weights`) as plain
arrays, also vouched for by the manifest. `load_for_scoring` reads only those: no
unpickling and no scikit-learn import (about a second of `score --input`'s start-up).
scikit-learn, joblib and NumPy are imported by the functions that need them, for that
reason and so that importing this module (the command line does) costs nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moderation.model import ModerationModel
    from moderation.weights import ScoringModel

MODEL_FILE = "model.joblib"
WEIGHTS_FILE = "weights.npz"
# The feature blocks this version can compute. A bundle lists the ones its weights cover, so a
# process that does not know one refuses the bundle instead of scoring without it.
FEATURE_BLOCKS = ("words", "chars", "pieces")
MANIFEST_FILE = "manifest.json"


class BundleError(Exception):
    """A bundle is missing, damaged, tampered with or incompatible; the message says what to do."""


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    import joblib
    import numpy
    import scipy
    import sklearn
    import tokenizers

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "tokenizers": tokenizers.__version__,  # cuts text into the piece-vector table's pieces
    }


def save(model: ModerationModel, out_dir: Path, manifest: dict) -> dict:
    """Write ``model`` and its manifest into ``out_dir`` (replaced whole, never half-written).

    :return: the manifest as written, with version, hashes and library versions filled in.
    """
    import joblib
    import numpy

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir.parent))
    try:
        joblib.dump(model.pipeline, staging / MODEL_FILE)  # uncompressed: loads faster, still ~10 MB
        numpy.savez(staging / WEIGHTS_FILE, **model.weights.to_arrays())
        digest = sha256_of(staging / MODEL_FILE)
        created = datetime.now(timezone.utc)
        manifest = {
            "version": manifest.get("version") or f"{created:%Y%m%d-%H%M%S}-{digest[:8]}",
            "created": created.isoformat(timespec="seconds"),
            "labels": model.labels,
            "thresholds": model.thresholds,
            **{k: v for k, v in manifest.items() if k != "version"},
            "libraries": library_versions(),
            "feature_blocks": ["words", "chars", *(["pieces"] if model.weights.pieces is not None else [])],
            "model_file": MODEL_FILE,
            "sha256": digest,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": sha256_of(staging / WEIGHTS_FILE),
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model.version = manifest["version"]
    return manifest


def read_manifest(bundle_dir: Path) -> dict:
    """Read a bundle's manifest, or raise `BundleError` saying why it cannot be read."""
    path = Path(bundle_dir) / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"no model bundle at {bundle_dir} (missing {MANIFEST_FILE}); run `moderation train` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BundleError(f"unreadable manifest {path}: {error}") from error
    for key in ("version", "sha256", "labels", "libraries"):
        if key not in manifest:
            raise BundleError(f"manifest {path} lacks {key!r}; retrain with `moderation train`")
    unknown = [block for block in manifest.get("feature_blocks", ["words", "chars"]) if block not in FEATURE_BLOCKS]
    if unknown:
        raise BundleError(
            f"bundle {manifest['version']} reads features this version cannot compute ({', '.join(unknown)}): "
            "it was built by a newer comment-moderation; upgrade, or serve a model trained by this version"
        )
    return manifest


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _verified(bundle_dir: Path, name: str, digest: str | None) -> Path:
    """Return the path of a bundle file whose sha256 is the manifest's, else raise `BundleError`."""
    path = bundle_dir / name
    if not path.is_file():
        raise BundleError(f"model file {path} is missing; retrain with `moderation train`")
    if sha256_of(path) != digest:
        raise BundleError(
            f"{path} does not match the sha256 in its manifest: the bundle was altered or damaged. "
            "Refusing to load it; restore it from the registry or retrain."
        )
    return path


def load(bundle_dir: Path) -> ModerationModel:
    """Verify and load a bundle; raise `BundleError` with advice when it cannot be trusted."""
    import joblib
    import sklearn

    from moderation.model import ModerationModel

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    model_path = _verified(bundle_dir, manifest.get("model_file", MODEL_FILE), manifest["sha256"])
    built_with = manifest["libraries"].get("scikit-learn", "?")
    if _minor(built_with) != _minor(sklearn.__version__):
        raise BundleError(
            f"bundle {manifest['version']} was built with scikit-learn {built_with}, this process has "
            f"{sklearn.__version__}: retrain it (`moderation train`) or install scikit-learn~={built_with}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", sklearn.exceptions.InconsistentVersionWarning)
        try:
            pipeline = joblib.load(model_path)
        except Exception as error:  # a verified file that still fails to load: report, never crash
            raise BundleError(f"could not load {model_path}: {error}") from error
    return ModerationModel(pipeline=pipeline, thresholds=manifest.get("thresholds", {}), version=manifest["version"])


def load_for_scoring(bundle_dir: Path) -> ScoringModel | ModerationModel:
    """Verify and load what scoring needs: the bundle's plain arrays, else (bundles from
    before ``weights.npz``) the whole model through `load`.

    The arrays are read with ``allow_pickle=False`` and do not depend on the scikit-learn
    version. The model file is verified too, never unpickled: a bundle altered anywhere
    is refused. Raise `BundleError` as `load` does.
    """
    import numpy

    from moderation.weights import ScoringModel, ScoringWeights

    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    if "weights_file" not in manifest:
        return load(bundle_dir)
    _verified(bundle_dir, manifest.get("model_file", MODEL_FILE), manifest["sha256"])
    path = _verified(bundle_dir, manifest["weights_file"], manifest.get("weights_sha256"))
    try:
        with numpy.load(path, allow_pickle=False) as arrays:
            weights = ScoringWeights.from_arrays(arrays)
    except Exception as error:  # a verified file that still fails to load: report, never crash
        raise BundleError(f"could not load {path}: {error}") from error
    return ScoringModel(weights=weights, thresholds=manifest.get("thresholds", {}), version=manifest["version"])
