"""Out-of-core training benchmark (issue 5): time, peak memory and quality of both backends.

    python benchmarks/out_of_core.py [--rows 1000000] [--memory-sizes 50000,100000,200000,400000]
                                     [--stream-sizes 100000,1000000] [--out benchmarks/results/out_of_core.json]

Writes deterministic synthetic labelled comments (templates and word lists, a large
made-up vocabulary, some label noise, two sources with different spam and abuse rates)
to a temporary CSV in chunks, then trains each configuration in its own child process and
reads the child's own peak RSS (``ru_maxrss``): the streaming backend reads the CSV chunk by
chunk on every pass, the in-memory backend reads its first N rows into a list. The
"database" runs put the first N rows into a fresh SQLite store as moderators' decisions
(a comment and its audit entry each, loaded before the child starts) and train the
streaming backend from `training.streaming.site_chunks`, as `moderation retrain` does. All are
scored by ROC AUC on the same held-out synthetic rows (another seed). The in-memory sizes
stop before a run that, at twice the previous run's time or memory, would pass
--max-seconds or --max-rss-mb. Timings on a shared 2-core
machine are noisy.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LABELS = ("spam", "toxic")
CHUNK = 10_000

CLEAN = ("the council plan for the new tram line looks expensive but the harbour area needs it . i read the report twice "
         "and the budget numbers do not add up . thanks for covering the school vote so clearly . my neighbours were at "
         "the meeting and the mayor answered every question . the library hours matter more than the stadium . "
         "great article , although the bus timetable section missed the night routes . traffic on the bridge is worse "
         "since the repairs started . i disagree with the editorial but it is well argued . who pays for the flood "
         "defences in the end ? the park renovation was late and over budget again").split()
SPAM = ("buy cheap pills online now best price discount casino bonus free spins crypto profit guaranteed earn cash fast "
        "work from home click here limited offer subscribe to my channel follow me win a prize loan approved instantly").split()
TOXIC = ("idiot moron stupid loser pathetic clown trash dumb fool liar scum worthless ignorant coward shut up disgusting").split()
BORDER = ("stupid policy idiotic plan free parking cheap tickets crazy decision dumb rule bonus payment offer made").split()  # clean rows use these too
TLDS = ("com", "net", "xyz", "biz", "info")


def _pseudo_words(rng: random.Random, n: int) -> list[str]:
    """A made-up vocabulary, so the number of distinct n-grams keeps growing with the data as real text does."""
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["th", "sh", "ng", "st", "er", "an"]
    return ["".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(n)]


class Generator:
    """Deterministic synthetic comments: ``rows(n)`` yields (text, source, spam, toxic)."""

    def __init__(self, seed: int, vocabulary: int = 50_000, noise: float = 0.03):
        self.rng = random.Random(seed)
        self.words = _pseudo_words(random.Random(12345), vocabulary)  # the same made-up language for every seed
        self.cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(vocabulary)))  # Zipf
        self.noise = noise

    def _filler(self, k: int) -> list[str]:
        rng = self.rng
        start = rng.randrange(len(CLEAN) - k)
        made_up = rng.choices(self.words, cum_weights=self.cum_weights, k=max(1, k // 3)) if rng.random() < 0.7 else []
        return CLEAN[start : start + k] + made_up

    def comment(self, source: str) -> tuple[str, int, int]:
        rng = self.rng
        spam_rate, toxic_rate = (0.25, 0.08) if source == "forum" else (0.06, 0.20)
        spam, toxic = int(rng.random() < spam_rate), int(rng.random() < toxic_rate)
        words = self._filler(rng.randint(6, 24))
        if spam:
            words += rng.sample(SPAM, rng.randint(1, 4))
            if rng.random() < 0.5:
                words.append(f"http://{rng.choice(self.words)}.{rng.choice(TLDS)}/{rng.choice(self.words)}")
        if toxic:
            words += rng.sample(TOXIC, rng.randint(1, 2)) + (["you"] if rng.random() < 0.6 else [])
        if rng.random() < 0.3:
            words += rng.sample(BORDER, 2)
        rng.shuffle(words)
        if rng.random() < self.noise:
            spam = 1 - spam
        if rng.random() < self.noise:
            toxic = 1 - toxic
        return " ".join(words), spam, toxic

    def rows(self, n: int) -> Iterator[tuple[str, str, int, int]]:
        for i in range(n):
            source = "forum" if self.rng.random() < 0.5 else "news"
            text, spam, toxic = self.comment(source)
            yield text, source, spam, toxic


def write_csv(path: Path, n: int, seed: int) -> None:
    """Write ``n`` rows in chunks: never more than one chunk of texts in memory."""
    generator = Generator(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "source", *LABELS])
        batch = []
        for row in generator.rows(n):
            batch.append(row)
            if len(batch) == CHUNK:
                writer.writerows(batch)
                batch = []
        writer.writerows(batch)


def read_chunks(path: Path, limit: int, size: int = CHUNK):
    """Stream the first ``limit`` rows of a benchmark CSV as lists of `Example`."""
    from training.datasets import Example

    def chunks():
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            batch = []
            for i, row in enumerate(reader):
                if i >= limit:
                    break
                batch.append(Example(row["text"], {label: int(row[label]) for label in LABELS}, row["source"], row["source"], "train"))
                if len(batch) == size:
                    yield batch
                    batch = []
            if batch:
                yield batch

    return chunks


def load_decisions(path: Path, rows: int, url: str) -> float:
    """Store the first ``rows`` CSV rows as decided comments (spam rejected as spam, abuse as abuse, the rest approved)."""
    import hashlib
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import insert

    from moderation.db import make_engine, upgrade
    from moderation.schema import AuditEntry, Comment

    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    next_id = 1
    for chunk in read_chunks(path, rows)():
        comments, audit = [], []
        for e in chunk:
            at = start + timedelta(seconds=next_id)
            action, reason = ("reject", "spam") if e.labels["spam"] else ("reject", "abuse") if e.labels["toxic"] else ("approve", None)
            comments.append({"id": next_id, "site": "bench", "text": e.text, "text_hash": hashlib.sha256(e.text.encode()).hexdigest(),
                             "status": "rejected" if reason else "published", "decision": "review", "risk": 0.5, "scores": {}, "reasons": [],
                             "terms": [], "created_at": at, "updated_at": at})
            audit.append({"comment_id": next_id, "actor": "mia", "action": action, "reason": reason, "new_status": comments[-1]["status"],
                          "scores": {}, "created_at": at})
            next_id += 1
        with engine.begin() as connection:
            connection.execute(insert(Comment), comments)
            connection.execute(insert(AuditEntry), audit)
    engine.dispose()
    return time.perf_counter() - started


def child(backend: str, train_csv: Path, test_csv: Path, rows: int, epochs: int, database: str | None = None) -> dict:
    """Train one configuration in this (child) process; return time, own peak RSS and held-out AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from moderation import bundle
    from training.streaming import StreamingConfig, train_streaming
    from training.train import TrainingConfig, split, train_model

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    if backend == "database":
        from moderation.db import make_engine
        from training.streaming import site_chunks

        engine = make_engine(database)
        model, facts = train_streaming(site_chunks(engine, size=CHUNK), TrainingConfig(), StreamingConfig(epochs=epochs))
        engine.dispose()
    elif backend == "streaming":
        model, facts = train_streaming(read_chunks(train_csv, rows), TrainingConfig(), StreamingConfig(epochs=epochs))
    else:
        examples = [e for chunk in read_chunks(train_csv, rows)() for e in chunk]
        fitting, calibration, _ = split(examples)
        model, facts = train_model(fitting, calibration, TrainingConfig())
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    test = [e for chunk in read_chunks(test_csv, 10**9)() for e in chunk]
    probabilities = model.predict_proba([e.text for e in test])
    auc = {label: round(float(roc_auc_score([e.labels[label] for e in test], probabilities[:, model.labels.index(label)])), 4) for label in LABELS}
    with tempfile.TemporaryDirectory() as tmp:
        bundle.save(model, Path(tmp) / "model", {"training": {"backend": backend}})
        size_mb = sum(p.stat().st_size for p in (Path(tmp) / "model").iterdir() if p.is_file()) / 2**20
        reloaded = bundle.load(Path(tmp) / "model")
        assert np.allclose(reloaded.predict_proba([e.text for e in test[:200]]), probabilities[:200])
    return {"backend": backend, "rows": rows, "train_seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb), "rss_after_imports_mb": round(baseline_mb),
            "roc_auc": auc, "bundle_mb": round(size_mb, 1), "fitting_rows": facts["spam"]["rows"]}


def run_child(args: argparse.Namespace, backend: str, rows: int, train_csv: Path, test_csv: Path, database: str | None = None) -> dict:
    command = [sys.executable, __file__, "--child", backend, "--rows", str(rows), "--train-csv", str(train_csv), "--test-csv", str(test_csv), "--epochs", str(args.epochs)]
    command += ["--database", database] if database else []
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"backend": backend, "rows": rows, "error": done.stderr.strip().splitlines()[-1:], "wall_seconds": round(time.perf_counter() - started, 1)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    lines = [f"{'backend':<10} {'rows':>9} {'train s':>8} {'peak RSS MB':>12} {'AUC spam':>9} {'AUC toxic':>10} {'bundle MB':>10}"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['backend']:<10} {r['rows']:>9,} failed: {r['error']}")
            continue
        lines.append(f"{r['backend']:<10} {r['rows']:>9,} {r['train_seconds']:>8.1f} {r['peak_rss_mb']:>12,} {r['roc_auc']['spam']:>9.4f} {r['roc_auc']['toxic']:>10.4f} {r['bundle_mb']:>10.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows generated (the largest streaming run)")
    parser.add_argument("--memory-sizes", default="50000,100000,200000,400000")
    parser.add_argument("--stream-sizes", default="100000,1000000")
    parser.add_argument("--database-sizes", default="100000,300000", help="streaming runs that read moderators' decisions from SQLite")
    parser.add_argument("--test-rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-seconds", type=float, default=600, help="no larger in-memory run once the next (twice the rows) would take longer")
    parser.add_argument("--max-rss-mb", type=float, default=8192, help="no larger in-memory run once the next would use more")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "out_of_core.json")
    parser.add_argument("--child", choices=["memory", "streaming", "database"], help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--train-csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--test-csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.train_csv, args.test_csv, args.rows, args.epochs, args.database)))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="out-of-core-") as tmp:
        train_csv, test_csv = Path(tmp) / "train.csv", Path(tmp) / "test.csv"
        started = time.perf_counter()
        write_csv(train_csv, args.rows, args.seed)
        write_csv(test_csv, args.test_rows, args.seed + 1)
        generate_seconds = time.perf_counter() - started
        print(f"generated {args.rows:,} + {args.test_rows:,} rows in {generate_seconds:.0f} s ({train_csv.stat().st_size / 2**20:.0f} MB CSV)", flush=True)
        for rows in (int(s) for s in args.memory_sizes.split(",") if s):
            result = run_child(args, "memory", min(rows, args.rows), train_csv, test_csv)
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
            # Stop before a run that would pass the limits: time and memory grow at least linearly with rows.
            if "error" in result or result["train_seconds"] * 2 > args.max_seconds or result["peak_rss_mb"] * 2 > args.max_rss_mb:
                break
        for rows in (int(s) for s in args.stream_sizes.split(",") if s):
            result = run_child(args, "streaming", min(rows, args.rows), train_csv, test_csv)
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
        for rows in (min(int(s), args.rows) for s in args.database_sizes.split(",") if s):
            url = f"sqlite:///{tmp}/decisions-{rows}.db"
            load_seconds = load_decisions(train_csv, rows, url)
            result = {**run_child(args, "database", rows, train_csv, test_csv, url), "load_seconds": round(load_seconds, 1)}
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
            Path(url.removeprefix("sqlite:///")).unlink()
    print("\n" + table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": 2, "python": platform.python_version(), "note": "shared 2-core machine: timings are noisy"},
        "settings": {"rows": args.rows, "test_rows": args.test_rows, "epochs": args.epochs, "chunk": CHUNK, "seed": args.seed, "label_noise": 0.03},
        "generate_seconds": round(generate_seconds, 1),
        "results": results,
    }, indent=2) + "\n")
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
