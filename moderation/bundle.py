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
import math
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


def json_ready(value):
    """``value`` with NaN and infinities as None and NumPy scalars and arrays as plain Python, for strict JSON."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, (str, bytes, int)) and callable(getattr(value, "tolist", None)):  # NumPy
        return json_ready(value.tolist())
    return value


def _is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds a manifest written by `save` (a JSON object with a version, labels and a sha256)."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and all(key in manifest for key in ("version", "labels", "sha256"))


def check_replaceable(out_dir: Path) -> None:
    """Raise `BundleError` unless ``out_dir`` may be (re)placed by a bundle: absent, empty, or a bundle already.

    Anything else (a folder of notes, a home directory, a file) is never deleted.
    """
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink():
        raise BundleError(f"refusing to replace {out_dir}: it is a symbolic link; give the folder it points to")
    if not out_dir.is_dir():
        raise BundleError(f"refusing to write a model bundle to {out_dir}: it is not a folder")
    if _is_bundle(out_dir) or not any(out_dir.iterdir()):
        return
    raise BundleError(
        f"refusing to replace {out_dir}: it is neither empty nor a model bundle (no {MANIFEST_FILE}); choose an empty or new folder"
    )


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

    ``out_dir`` must be absent, empty or a bundle already (`check_replaceable`). The new bundle
    is written beside it and swapped in; the old one is deleted only once the new one is in place.
    NaN metrics (a label with one class) are written as null, so the manifest is strict JSON.

    :return: the manifest as written, with version, hashes and library versions filled in.
    """
    import joblib
    import numpy

    out_dir = Path(out_dir)
    check_replaceable(out_dir)
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
        manifest = json_ready(manifest)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=False, allow_nan=False) + "\n")
        check_replaceable(out_dir)  # again: the folder may have changed while the model was written
        _swap_in(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    model.version = manifest["version"]
    return manifest


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put the finished ``staging`` folder at ``out_dir``; an old bundle there is moved aside first and
    deleted only after the new one is in place (put back if that fails)."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    retired = Path(tempfile.mkdtemp(prefix=".bundle-old-", dir=out_dir.parent))
    os.replace(out_dir, retired)  # a directory may replace an empty one
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(retired, out_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)


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
