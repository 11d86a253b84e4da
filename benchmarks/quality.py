"""Quality benchmark: our model kinds against a TF-IDF baseline and alt-profanity-check.

    python benchmarks/quality.py [--data DIR] [--out benchmarks/results/quality.json]
                                 [--kinds logreg nbsvm svm ensemble] [--chosen ensemble]
                                 [--embeddings DIR | --no-embeddings]
                                 [--skip-loso] [--loso-caps WORDS CHARS]

Prints one table per metric (rows: dataset/label or held-out group; columns: candidates;
``*`` marks the best in each row) and whether the chosen model beats the baselines on
every toxicity and spam set, and writes all of it, with the wall time, as JSON.
With a piece-vector table (default: the EMBEDDINGS_DIR setting, when built) the chosen
model is the chosen kind with piece vectors (``ensemble+pieces``), what `moderation train`
ships; every kind is also shown on n-grams alone.
Slow (many minutes): it trains every kind once plus one model per held-out group.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sklearn  # noqa: E402

from moderation.pieces import default_pieces_dir, load_pieces, table_facts  # noqa: E402
from training.compare import (  # noqa: E402
    BASELINE, EXCLUDED_SOURCES, PIECES_SUFFIX, PROFANITY, PROFANITY_SEEN, SPAM_SOURCES, TOXIC_SOURCES,
    beats, compare_on_dev, leave_one_source_out, train_kinds,
)
from training.datasets import default_data_dir, select_datasets  # noqa: E402
from training.fit import KINDS  # noqa: E402
from training.train import TrainingConfig, load_examples, split  # noqa: E402

METRICS = (("roc_auc", "ROC AUC"), ("average_precision", "average precision"))
LOSO_LABELS = ("spam", "toxic")


def table(rows: list[dict], key: str, candidates: list[str], metric: str) -> str:
    """Render rows as a fixed-width table, best candidate per row marked with ``*``."""
    candidates = [c for c in candidates if any(c in row["scores"] for row in rows)]
    width = max(14, *(len(c) + 2 for c in candidates))
    lines = [f"{'':40} {'rows':>6} {'pos':>6} " + " ".join(f"{c:>{width}}" for c in candidates)]
    for row in rows:
        values = {c: row["scores"][c][metric] for c in candidates if c in row["scores"]}
        best = max((v for v in values.values() if not math.isnan(v)), default=math.nan)
        cells = []
        for c in candidates:
            v = values.get(c)
            cells.append("- ".rjust(width) if v is None else f"{v:.4f}{'*' if v == best else ' ':1}".rjust(width))
        lines.append(f"{row[key]:40} {row['rows']:>6} {row['positives']:>6} " + " ".join(cells))
    return "\n".join(lines)


def rivals_for(dataset: str) -> list[str]:
    """Toxicity sets must beat both baselines; spam sets (and YouTube videos) only the TF-IDF one."""
    return [BASELINE, PROFANITY] if dataset in TOXIC_SOURCES else [BASELINE]


def verdict(scores: dict, chosen: str, dataset: str) -> dict:
    """`beats`, plus a warning where alt-profanity-check was trained on this very set."""
    result = beats(scores, chosen, rivals_for(dataset))
    if dataset in PROFANITY_SEEN:
        result["note"] = f"{PROFANITY} was trained on this set: its score here is not out-of-sample"
    return result


def dev_verdicts(rows: list[dict], chosen: str) -> dict[str, dict]:
    """Per dataset, on its main label (toxic or spam): does the chosen kind beat the rivals?"""
    main = {**{s: "toxic" for s in TOXIC_SOURCES}, **{s: "spam" for s in SPAM_SOURCES}}
    return {r["dataset"]: verdict(r["scores"], chosen, r["dataset"]) for r in rows if main.get(r["dataset"]) == r["label"]}


def loso_verdicts(rows: list[dict], chosen: str) -> dict[str, dict]:
    """Per held-out group (a YouTube video or a whole source)."""
    return {r["held_out"]: verdict(r["scores"], chosen, r["held_out"]) for r in rows}


def print_verdicts(title: str, verdicts: dict[str, dict], chosen: str) -> None:
    print(f"\n{title}")
    for name, v in verdicts.items():
        versus = ", ".join(f"{'beats' if won else 'LOSES/ties to'} {rival}" for rival, won in v["versus"].items())
        note = f"  [{v['note']}]" if "note" in v else ""
        print(f"  {name:40} {'YES' if v['beats_all'] else 'NO ':3}  ({chosen} {versus}){note}")


def clean(value):
    """Make NaN JSON-safe (null) all the way down."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="data directory (default: training.datasets.default_data_dir())")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "quality.json")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--chosen", choices=KINDS, default="ensemble", help="the kind we ship (judged against the baselines)")
    parser.add_argument("--skip-loso", action="store_true")
    parser.add_argument("--loso-caps", nargs=2, type=int, metavar=("WORDS", "CHARS"), help="lower feature caps for LOSO runs")
    parser.add_argument("--embeddings", type=Path, default=None, help="piece-vector table (default: EMBEDDINGS_DIR when built)")
    parser.add_argument("--no-embeddings", action="store_true", help="n-grams only")
    args = parser.parse_args(argv)
    kinds = list(dict.fromkeys([*args.kinds, args.chosen]))
    pieces_dir = None if args.no_embeddings else args.embeddings or default_pieces_dir()
    pieces = load_pieces(pieces_dir) if pieces_dir else None
    chosen = args.chosen + PIECES_SUFFIX if pieces else args.chosen

    started = time.perf_counter()
    data_dir = args.data or default_data_dir()
    names = select_datasets(data_dir)
    examples = load_examples(data_dir, names)
    fitting, calibration, dev = split(examples)
    print(f"data: {data_dir}  datasets: {', '.join(names)}  (not evaluated: {', '.join(sorted(EXCLUDED_SOURCES))})")
    print(f"rows: fitting {len(fitting)}, calibration {len(calibration)}, dev {len(dev)}")
    print(f"piece vectors: {pieces_dir or 'none'}; judged: {chosen}")

    timings: dict[str, float] = {}
    t = time.perf_counter()
    models = train_kinds(fitting, calibration, kinds)
    if pieces:
        models.update(train_kinds(fitting, calibration, [args.chosen], pieces=pieces))
    timings["train_kinds"] = time.perf_counter() - t
    t = time.perf_counter()
    dev_rows = compare_on_dev(fitting, calibration, dev, models=models)
    timings["dev_compare"] = time.perf_counter() - t
    candidates = [*models, BASELINE, PROFANITY]
    for metric, title in METRICS:
        print(f"\n== dev rows, {title} ==\n" + table([{**r, "name": f"{r['dataset']} / {r['label']}"} for r in dev_rows], "name", candidates, metric))
    result = {
        "data_dir": str(data_dir),
        "datasets": names,
        "kinds": kinds,
        "chosen": chosen,
        "pieces": table_facts(pieces_dir, pieces) if pieces else None,
        "not_evaluated": sorted(EXCLUDED_SOURCES),
        "profanity_check_trained_on": sorted(PROFANITY_SEEN),
        "dev": dev_rows,
        "dev_verdicts": dev_verdicts(dev_rows, chosen),
    }
    print_verdicts(f"== dev: does {chosen} beat the baselines (ROC AUC and AP)? ==", result["dev_verdicts"], chosen)

    if not args.skip_loso:
        config = TrainingConfig()
        if args.loso_caps:
            config = TrainingConfig(max_word_features=args.loso_caps[0], max_char_features=args.loso_caps[1])
            print(f"\nNOTE: LOSO uses lowered feature caps: {args.loso_caps[0]} word, {args.loso_caps[1]} char")
        result["loso_feature_caps"] = {"max_word_features": config.max_word_features, "max_char_features": config.max_char_features}
        result["loso"], result["loso_verdicts"] = {}, {}
        for label in LOSO_LABELS:
            t = time.perf_counter()
            rows = leave_one_source_out(examples, label, args.chosen, config=config, pieces=pieces)
            timings[f"loso_{label}"] = time.perf_counter() - t
            result["loso"][label] = rows
            result["loso_verdicts"][label] = loso_verdicts(rows, chosen)
            for metric, title in METRICS:
                print(f"\n== leave one source out, {label}, {title} ==\n" + table(rows, "held_out", list(dict.fromkeys([args.chosen, chosen, BASELINE, PROFANITY])), metric))
            print_verdicts(f"== LOSO {label}: does {chosen} beat the baselines on the unseen group? ==", result["loso_verdicts"][label], chosen)

    timings["total"] = time.perf_counter() - started
    result["wall_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    result["environment"] = {"python": platform.python_version(), "sklearn": sklearn.__version__, "cpus": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(clean(result), indent=2) + "\n")
    print(f"\nwall time: {timings['total']:.0f} s  ({', '.join(f'{k} {v:.0f} s' for k, v in timings.items() if k != 'total')})")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
