"""The whole training run: data directory in, verified bundle and report out.

`run_training` strings the stages together; each stage lives in its own module
(datasets, train, evaluate, report) and can be called alone.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from moderation import bundle
from moderation.pieces import load_pieces, table_facts
from training.datasets import REGISTRY, Example, dataset_files, select_datasets
from training.evaluate import per_dataset, reliability
from training.report import markdown_table, write_report
from training.train import TrainingConfig, label_rows, load_examples, split, source_weights, train_model

if TYPE_CHECKING:
    from moderation.model import ModerationModel
    from training.streaming import Chunks, StreamingConfig

STREAM_CHUNK = 10_000  # rows per chunk when the streaming backend trains on rows read into memory


def truth_arrays(examples: list[Example], labels: list[str]) -> dict[str, np.ndarray]:
    """Per label, 0/1 where an example carries the label and -1 where it does not."""
    return {label: np.array([e.labels.get(label, -1) for e in examples]) for label in labels}


def held_out_batches(dev: list[Example], chunks: "Chunks | None" = None, size: int = STREAM_CHUNK) -> Iterator[list[Example]]:
    """The dev rows in batches: ``dev`` (in memory), then the dev rows of each chunk of a stream."""
    for start in range(0, len(dev), size):
        yield dev[start : start + size]
    for chunk in chunks() if chunks else ():
        yield [e for e in chunk if e.split == "dev"]


def score_held_out(models: "list[ModerationModel]", batches: Iterable[list[Example]]) -> tuple[list[np.ndarray], list[Example]]:
    """Every model's probabilities on the same held-out rows, one batch of texts in memory at a time.

    :return: one (rows x labels) array per model, and the rows without their texts (metrics need
        only labels and sources), so held-out sets larger than memory can still be judged.
    """
    scores: list[list[np.ndarray]] = [[] for _ in models]
    rows: list[Example] = []
    for batch in batches:
        if not batch:
            continue
        texts = [e.text for e in batch]
        for column, model in enumerate(models):
            scores[column].append(model.predict_proba(texts))
        rows += [replace(e, text="") for e in batch]
    return [np.vstack(parts) if parts else np.zeros((0, len(model.labels))) for parts, model in zip(scores, models)], rows


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


def features_section(backend_facts: dict, label_facts: dict) -> str:
    """What the model reads: n-grams, and the piece-vector table with each label's blend when it has one."""
    pieces = backend_facts.get("pieces")
    if backend_facts.get("backend") == "streaming":
        return "Hashed word (1-2) and character (2-5) n-grams, TF-IDF weighted; no piece vectors (the streaming backend)."
    if not pieces:
        return ("Word (1-2) and character (2-5) n-grams, TF-IDF weighted. No piece-vector table was found: "
                "`scripts/build-embeddings`, then retrain, adds one.")
    blends = [{"label": label, "ngrams": f["stacking"]["ngrams"], "pieces": f["stacking"]["pieces"]}
              for label, f in label_facts.items() if "stacking" in f]
    return (
        f"Word (1-2) and character (2-5) n-grams, TF-IDF weighted, and piece vectors: {pieces.get('teacher', '?')} distilled by "
        f"{pieces.get('distiller', '?')}, table {' x '.join(map(str, pieces.get('shape', [])))}, sha256 `{pieces['sha256'][:16]}...`. "
        "Each label's n-gram and piece-vector log-odds were weighed on the calibration rows:\n\n" + markdown_table(blends, ["label", "ngrams", "pieces"])
    )


def comparison_section(rows: list[dict]) -> str:
    """Render `training.compare.compare_on_dev` rows as one Markdown table (ROC AUC / AP per candidate)."""
    candidates = list(dict.fromkeys(c for r in rows for c in r["scores"]))  # alt-profanity-check scores only toxicity rows
    table = [{"dataset": r["dataset"], "label": r["label"],
              **{c: f"{r['scores'][c]['roc_auc']:.3f} / {r['scores'][c]['average_precision']:.3f}" for c in candidates if c in r["scores"]}}
             for r in rows]
    return (
        "ROC AUC / average precision on the dev rows, every candidate trained on the same rows. "
        "`tfidf_logreg` is the classic TF-IDF + logistic regression baseline (no normaliser, no source weights); "
        "`profanity_check` is alt-profanity-check, which was itself trained on Davidson and Jigsaw data; "
        "a `+pieces` candidate has the piece-vector block beside its n-grams (the others have n-grams only). "
        "Out of source: the next section.\n\n" + markdown_table(table, ["dataset", "label", *candidates])
    )


OUT_OF_SOURCE_LABELS = ("spam", "toxic")  # the labels that decide; the finer ones come from one or two sets each


def out_of_source_section(results: dict[str, list[dict]]) -> str:
    """Render `training.compare.leave_one_source_out` results, one table per label."""
    parts = ["Each group (a YouTube video for spam, a whole dataset otherwise) was left out of training and all its rows "
             "were scored: how the model does on comments from a source it never saw. ROC AUC / average precision; "
             "our own examples are never held out. `benchmarks/quality.py` measures the same and writes JSON."]
    for label, rows in results.items():
        if not rows:
            parts.append(f"**{label}**: fewer than one other source to train on; nothing to hold out.")
            continue
        candidates = list(dict.fromkeys(c for r in rows for c in r["scores"]))
        table = [{"held out": r["held_out"], "rows": r["rows"], "positives": r["positives"],
                  **{c: f"{r['scores'][c]['roc_auc']:.3f} / {r['scores'][c]['average_precision']:.3f}" for c in candidates if c in r["scores"]}}
                 for r in rows]
        parts.append(f"**{label}**\n\n" + markdown_table(table, ["held out", "rows", "positives", *candidates]))
    return "\n\n".join(parts)


def _out_of_source(examples, config: TrainingConfig, labels, pieces, profanity: bool) -> dict[str, list[dict]]:
    from training.compare import TOXICITY_LABELS, leave_one_source_out

    return {label: leave_one_source_out(examples, label, kind=config.kind, config=config, pieces=pieces,
                                        profanity=profanity and label in TOXICITY_LABELS)
            for label in OUT_OF_SOURCE_LABELS if label in labels}


def _has_profanity_check() -> bool:
    try:
        import profanity_check  # noqa: F401  (optional: the "bench" extra)
    except ImportError:
        return False
    return True


def _compare(fitting, calibration, dev, chosen_kind: str, model, with_pieces: bool) -> str:
    from training.compare import PIECES_SUFFIX, compare_on_dev, train_kinds
    from training.fit import KINDS

    profanity = _has_profanity_check()
    others = train_kinds(fitting, calibration, [k for k in KINDS if with_pieces or k != chosen_kind])  # n-grams alone, every kind
    rows = compare_on_dev(fitting, calibration, dev, models={chosen_kind + (PIECES_SUFFIX if with_pieces else ""): model, **others}, profanity=profanity)
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
    extra_chunks: "Chunks | None" = None,
    backend: str = "memory",
    streaming: "StreamingConfig | None" = None,
    pieces_dir: Path | None = None,
    progress: Callable[[str], None] = lambda stage: None,
) -> tuple[dict, list[dict]]:
    """Train, evaluate on the dev splits, and write the bundle with its report.

    ``compare`` also trains the other model kinds and the baselines, and writes the
    comparison table into the report, with a leave-one-source-out table per deciding
    label (many times slower). ``extra`` examples (the
    site's own decisions) join the registered sets, described by ``extra_facts``;
    ``extra_chunks`` is the same as a stream (e.g. `training.streaming.site_chunks`), read
    chunk by chunk and never held whole (streaming backend only). ``backend`` "streaming"
    fits hashed features chunk by chunk (`training.streaming`, shaped by ``streaming``)
    instead of TF-IDF over all rows at once. ``pieces_dir``: a piece-vector table
    (`moderation.pieces`) the memory backend adds beside the n-grams; the streaming
    backend trains on hashed n-grams only and ignores it.

    :return: the manifest written and the per-dataset dev metric rows.
    :raises ValueError: no usable data, or named datasets missing or excluded (`select_datasets`).
    :raises moderation.bundle.BundleError: ``out_dir`` is neither empty nor a bundle (`bundle.check_replaceable`).
    """
    config = config or TrainingConfig()
    chosen = select_datasets(data_dir, names, open_only)
    bundle.check_replaceable(out_dir)  # before hours of training, not after
    if extra_chunks is not None and backend != "streaming":
        raise ValueError("a stream of extra rows needs the streaming backend; pass them as a list to train in memory")
    if not chosen and not extra and extra_chunks is None:
        raise ValueError(f"no usable dataset in {data_dir} (nor data/examples.csv); pass --data DIR")
    progress(f"reading {len(chosen)} datasets")
    examples = load_examples(data_dir, chosen) + list(extra or [])
    fitting, calibration, dev = split(examples)
    pieces = None
    if backend == "streaming":
        from training.streaming import StreamingConfig, in_chunks, interleave, train_streaming

        streaming = streaming or StreamingConfig()
        progress(f"training on {len(fitting):,} comments{' and a stream of site decisions' if extra_chunks else ''} (streaming, {streaming.epochs} epochs)")
        stream = in_chunks(fitting + calibration, STREAM_CHUNK, streaming.seed)
        model, facts = train_streaming(interleave(stream, extra_chunks) if extra_chunks else stream, config, streaming)
        backend_facts = {"backend": "streaming", "streaming": asdict(streaming)}
    elif backend == "memory":
        pieces = load_pieces(pieces_dir) if pieces_dir else None
        progress(f"training on {len(fitting):,} comments ({config.kind}{', with piece vectors' if pieces else ''})")
        model, facts = train_model(fitting, calibration, config, pieces=pieces)
        backend_facts = {"backend": "memory", "pieces": table_facts(pieces_dir, pieces) if pieces else None}
    else:
        raise ValueError(f"unknown training backend {backend!r}; choose memory or streaming")
    progress(f"evaluating on {len(dev):,} dev comments{' and the stream of held-out site decisions' if extra_chunks else ''}")
    (probabilities,), held_out = score_held_out([model], held_out_batches(dev, extra_chunks))
    rows = per_dataset(probabilities, model.labels, held_out, model.thresholds)
    manifest = bundle.save(model, out_dir, {
        "datasets": dataset_facts(chosen, data_dir, examples) + list(extra_facts or []),
        "training": {**backend_facts, **asdict(config), "label_facts": facts},
        "dev_metrics": rows,  # NaN (a label with one class) is written as null
    })
    sections = {"Features": features_section(backend_facts, facts),
                "Calibration": calibration_section(probabilities, model.labels, held_out, config)}
    extra = {}
    if compare:
        progress("comparing candidate models")
        sections["Candidates compared"] = _compare(fitting, calibration, dev, config.kind, model, with_pieces=bool(backend_facts.get("pieces")))
        progress("leaving one source out at a time")
        out_of_source = _out_of_source(examples, config, model.labels, pieces, _has_profanity_check())
        sections["Out of source"] = out_of_source_section(out_of_source)
        extra = {"out_of_source": out_of_source}
    progress("writing report")
    write_report(
        Path(out_dir) / "report",
        title=f"Model {manifest['version']}: dev evaluation",
        rows=rows,
        labels=model.labels,
        probabilities=probabilities,
        truth=truth_arrays(held_out, model.labels),
        thresholds=model.thresholds,
        sections=sections,
        extra=extra,
    )
    return manifest, rows
