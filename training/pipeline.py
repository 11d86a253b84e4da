"""The whole training run: data directory in, verified bundle and report out.

`run_training` strings the stages together; each stage lives in its own module
(datasets, train, evaluate, report) and can be called alone.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from moderation import bundle
from training.datasets import REGISTRY, Example, dataset_files, select_datasets
from training.evaluate import per_dataset, reliability
from training.report import markdown_table, write_report
from training.train import TrainingConfig, label_rows, load_examples, split, source_weights, train_model

if TYPE_CHECKING:
    from training.streaming import StreamingConfig

STREAM_CHUNK = 10_000  # rows per chunk when the streaming backend trains on rows read into memory


def truth_arrays(examples: list[Example], labels: list[str]) -> dict[str, np.ndarray]:
    """Per label, 0/1 where an example carries the label and -1 where it does not."""
    return {label: np.array([e.labels.get(label, -1) for e in examples]) for label in labels}


def dataset_facts(names: list[str], data_dir: Path, examples: list[Example]) -> list[dict]:
    """Describe each dataset used: rows per split, license and file hashes, for the manifest."""
    facts = []
    for name in names:
        rows = [e for e in examples if e.source == name]
        facts.append({
            "name": name,
            "license": REGISTRY[name].license,
            "open_license": REGISTRY[name].open_license,
            "labels": list(REGISTRY[name].labels),
            "train_rows": sum(e.split == "train" for e in rows),
            "dev_rows": sum(e.split == "dev" for e in rows),
            "files": {path.name: bundle.sha256_of(path) for path in dataset_files(name, data_dir)},
        })
    return facts


def calibration_section(probabilities: np.ndarray, labels: list[str], dev: list[Example], config: TrainingConfig) -> str:
    """Reliability of each label on dev rows reweighted to the deployment base rate."""
    parts = [
        "Dev rows (never used for fitting or calibration), each source reweighted so that bad comments make up "
        "the label's deployment base rate. A well calibrated score has `predicted` close to `observed` in every bin.",
        "",
    ]
    for column, label in enumerate(labels):
        index, y = label_rows(dev, label)
        if len(set(y.tolist())) < 2:
            continue
        weights = source_weights(dev, index, y, prior=config.prior(label))
        rows, ece = reliability(probabilities[index, column], y, weights)
        parts += [f"### {label} (base rate {config.prior(label):.0%}, expected calibration error {ece:.3f})", "",
                  markdown_table(rows, ["scores", "predicted", "observed", "share"]), ""]
    return "\n".join(parts)


def comparison_section(rows: list[dict]) -> str:
    """Render `training.compare.compare_on_dev` rows as one Markdown table (ROC AUC / AP per candidate)."""
    candidates = list(rows[0]["scores"]) if rows else []
    table = [{"dataset": r["dataset"], "label": r["label"],
              **{c: f"{r['scores'][c]['roc_auc']:.3f} / {r['scores'][c]['average_precision']:.3f}" for c in candidates if c in r["scores"]}}
             for r in rows]
    return (
        "ROC AUC / average precision on the dev rows, every candidate trained on the same rows. "
        "`tfidf_logreg` is the classic TF-IDF + logistic regression baseline (no normaliser, no source weights); "
        "`profanity_check` is alt-profanity-check, which was itself trained on Davidson and Jigsaw data. "
        "Leave-one-source-out results: `benchmarks/quality.py`.\n\n" + markdown_table(table, ["dataset", "label", *candidates])
    )


def _compare(fitting, calibration, dev, chosen_kind: str, model) -> str:
    from training.compare import compare_on_dev, train_kinds
    from training.fit import KINDS

    try:
        import profanity_check  # noqa: F401  (optional: the "bench" extra)
        profanity = True
    except ImportError:
        profanity = False
    others = train_kinds(fitting, calibration, [k for k in KINDS if k != chosen_kind])
    rows = compare_on_dev(fitting, calibration, dev, models={chosen_kind: model, **others}, profanity=profanity)
    return comparison_section(rows)


def run_training(
    data_dir: Path,
    out_dir: Path,
    *,
    names: list[str] | None = None,
    open_only: bool = False,
    config: TrainingConfig | None = None,
    compare: bool = False,
    extra: list[Example] | None = None,
    extra_facts: list[dict] | None = None,
    backend: str = "memory",
    streaming: "StreamingConfig | None" = None,
    progress: Callable[[str], None] = lambda stage: None,
) -> tuple[dict, list[dict]]:
    """Train, evaluate on the dev splits, and write the bundle with its report.

    ``compare`` also trains the other model kinds and the baselines, and writes the
    comparison table into the report (several times slower). ``extra`` examples (the
    site's own decisions) join the registered sets, described by ``extra_facts``.
    ``backend`` "streaming" fits hashed features chunk by chunk (`training.streaming`,
    shaped by ``streaming``) instead of TF-IDF over all rows at once.

    :return: the manifest written and the per-dataset dev metric rows.
    """
    config = config or TrainingConfig()
    chosen = select_datasets(data_dir, names, open_only)
    if not chosen and not extra:
        raise ValueError(f"no usable dataset in {data_dir} (nor data/examples.csv); pass --data DIR")
    progress(f"reading {len(chosen)} datasets")
    examples = load_examples(data_dir, chosen) + list(extra or [])
    fitting, calibration, dev = split(examples)
    if backend == "streaming":
        from training.streaming import StreamingConfig, in_chunks, train_streaming

        streaming = streaming or StreamingConfig()
        progress(f"training on {len(fitting):,} comments (streaming, {streaming.epochs} epochs)")
        model, facts = train_streaming(in_chunks(fitting + calibration, STREAM_CHUNK, streaming.seed), config, streaming)
        backend_facts = {"backend": "streaming", "streaming": asdict(streaming)}
    elif backend == "memory":
        progress(f"training on {len(fitting):,} comments ({config.kind})")
        model, facts = train_model(fitting, calibration, config)
        backend_facts = {"backend": "memory"}
    else:
        raise ValueError(f"unknown training backend {backend!r}; choose memory or streaming")
    progress(f"evaluating on {len(dev):,} dev comments")
    probabilities = model.predict_proba([e.text for e in dev])
    rows = per_dataset(probabilities, model.labels, dev, model.thresholds)
    manifest = bundle.save(model, out_dir, {
        "datasets": dataset_facts(chosen, data_dir, examples) + list(extra_facts or []),
        "training": {**backend_facts, **asdict(config), "label_facts": facts},
        "dev_metrics": rows,
    })
    sections = {"Calibration": calibration_section(probabilities, model.labels, dev, config)}
    if compare:
        progress("comparing candidate models")
        sections["Candidates compared"] = _compare(fitting, calibration, dev, config.kind, model)
    progress("writing report")
    write_report(
        Path(out_dir) / "report",
        title=f"Model {manifest['version']}: dev evaluation",
        rows=rows,
        labels=model.labels,
        probabilities=probabilities,
        truth=truth_arrays(dev, model.labels),
        thresholds=model.thresholds,
        sections=sections,
    )
    return manifest, rows
