"""Speed, size and training-time benchmark for the model (issue 2 targets).

    python benchmarks/speed.py [--model DIR] [--data DIR] [--train] [--out benchmarks/results/speed.json]

Targets on this machine (2 cores): one comment, all labels, in-process p50 <= 1 ms and
p99 <= 3 ms; batch >= 5,000 comments/s on one core; bundle load <= 2 s (what the server and
`moderation score` load: the verified scoring arrays); bundle <= 100 MB;
full training on all shared data <= 5 minutes; `moderation score --input` on 10,000 comments
in a few seconds. Prints a table and writes JSON.

Everything runs pinned to one CPU with BLAS/OpenMP threads at 1, so "one core" means one
core (child processes inherit both). Batch rates are measured on comments this process
has not scored before; the command-line runs start a fresh process, caches empty.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moderation import bundle  # noqa: E402
from moderation.assessor import Assessor  # noqa: E402
from moderation.config import load_config  # noqa: E402
from moderation.model import ModerationModel  # noqa: E402,F401  scikit-learn imported before the bundle load is timed, as always
from moderation.scorer import FastScorer  # noqa: E402
from training.datasets import default_data_dir, load_dataset, select_datasets  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def time_each(func, texts: list[str]) -> list[float]:
    samples = []
    for text in texts:
        start = time.perf_counter()
        func(text)
        samples.append(time.perf_counter() - start)
    return samples


def time_cli(model_dir: Path, texts: list[str], *extra: str) -> float:
    """Wall seconds of ``moderation score --input FILE`` in a fresh process, output checked for one line per row."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "comments.jsonl"
        source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        command = [sys.executable, "-m", "moderation", "score", "--model", str(model_dir), "--input", str(source), *extra]
        start = time.perf_counter()
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        seconds = time.perf_counter() - start
    if len(output.splitlines()) != len(texts):
        raise SystemExit(f"{' '.join(command)} wrote {len(output.splitlines())} lines for {len(texts)} comments")
    return seconds


def dev_texts(data_dir: Path) -> tuple[list[str], list[str]]:
    """Return (warm-up texts, measured texts): dev comments of every set, in a fixed shuffle."""
    texts = [e.text for name in select_datasets(data_dir) for e in load_dataset(name, data_dir) if e.split == "dev"]
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    half = len(texts) // 2
    return texts[:half], texts[half:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--train", action="store_true", help="also time a full training run on all shared data")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed.json")
    args = parser.parse_args()
    model_dir = args.model or Path(load_config()["MODEL_DIR"])
    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}

    if args.train:
        from moderation.pieces import default_pieces_dir
        from training.pipeline import run_training

        start = time.perf_counter()
        run_training(args.data, model_dir, pieces_dir=default_pieces_dir())  # what `moderation train` does
        results["training_seconds"] = time.perf_counter() - start

    start = time.perf_counter()
    model = bundle.load(model_dir)
    scorer = FastScorer(model)
    results["bundle_load_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    bundle.load_for_scoring(model_dir)  # what `moderation score` loads: the scoring arrays, when the bundle has them
    results["scoring_load_seconds"] = time.perf_counter() - start
    results["bundle_mb"] = sum(p.stat().st_size for p in model_dir.glob("*") if p.is_file()) / 1e6
    results["model_version"] = model.version
    results["piece_vectors"] = model.weights.pieces is not None

    warm, measured = dev_texts(args.data)
    measured = measured[:5000]
    for text in warm[:5000]:
        scorer.score(text)  # fill the per-word caches as a running server would
    results["median_comment_chars"] = float(np.median([len(t) for t in measured]))
    # First pass over comments this process has never seen: words new to the caches cost most.
    start = time.perf_counter()
    scorer.score_batch(measured)
    results["fast_batch_unseen_per_second"] = len(measured) / (time.perf_counter() - start)
    results["score_one"] = percentiles(time_each(scorer.score, measured))
    assessor = Assessor.from_config(model, load_config())
    results["score_explain_decide_one"] = percentiles(time_each(assessor.assess, measured))
    start = time.perf_counter()
    for text in measured:
        scorer.score(text)
    results["fast_loop_per_second"] = len(measured) / (time.perf_counter() - start)
    start = time.perf_counter()
    scorer.score_batch(measured)
    results["fast_batch_per_second"] = len(measured) / (time.perf_counter() - start)
    start = time.perf_counter()
    model.predict_proba(measured)
    results["pipeline_batch_per_second"] = len(measured) / (time.perf_counter() - start)
    start = time.perf_counter()
    model.pipeline.predict_proba(measured[:1])
    one = [measured[i : i + 1] for i in range(200)]
    results["pipeline_single_call_ms"] = percentiles(time_each(model.predict_proba, one))["p50_ms"]
    file_texts = [t for t in warm + measured if t.strip()][:10_000]
    results["cli_10k_seconds"] = time_cli(model_dir, file_texts)
    results["cli_10k_no_terms_seconds"] = time_cli(model_dir, file_texts, "--no-terms")

    targets = [
        ("one comment p50 (ms)", results["score_one"]["p50_ms"], "<= 1"),
        ("one comment p99 (ms)", results["score_one"]["p99_ms"], "<= 3"),
        ("score+explain+decide p50 (ms)", results["score_explain_decide_one"]["p50_ms"], "-"),
        ("score+explain+decide p99 (ms)", results["score_explain_decide_one"]["p99_ms"], "-"),
        ("one at a time, loop (comments/s, 1 core)", results["fast_loop_per_second"], "-"),
        ("batch, score_batch, unseen comments (comments/s)", results["fast_batch_unseen_per_second"], ">= 5000"),
        ("batch, score_batch, caches warm (comments/s)", results["fast_batch_per_second"], ">= 5000"),
        ("batch, sklearn pipeline (comments/s)", results["pipeline_batch_per_second"], "-"),
        ("plain pipeline call, one comment (ms)", results["pipeline_single_call_ms"], "-"),
        ("score --input, 10k comments, terms (s)", results["cli_10k_seconds"], "a few"),
        ("score --input, 10k comments, --no-terms (s)", results["cli_10k_no_terms_seconds"], "a few"),
        ("bundle load, whole pipeline: evaluate, retrain (s)", results["bundle_load_seconds"], "-"),
        ("bundle load, serving and score: arrays only (s)", results["scoring_load_seconds"], "<= 2"),
        ("bundle size (MB)", results["bundle_mb"], "<= 100"),
    ]
    if "training_seconds" in results:
        targets.append(("full training (s)", results["training_seconds"], "<= 300"))
    print(f"model {model.version} ({'with' if results['piece_vectors'] else 'without'} piece vectors); {len(measured)} dev comments, median {results['median_comment_chars']:.0f} chars")
    print(f"{'measure':50} {'value':>10}  target")
    for name, value, target in targets:
        print(f"{name:50} {value:10.2f}  {target}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
