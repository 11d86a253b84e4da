"""The `moderation` command: train, evaluate and score from the shell.

Commands that train import `training` lazily, so serving never loads it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from moderation import bundle
from moderation.config import load_config
from moderation.inputs import InputError, read_rows


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _load_assessor(model_dir: str | None):
    from moderation.assessor import Assessor

    config = load_config()
    try:
        model = bundle.load(Path(model_dir or config["MODEL_DIR"]))
    except bundle.BundleError as error:
        _fail(str(error))
    return Assessor.from_config(model, config)


@click.group()
@click.version_option(package_name="comment-moderation")
def cli() -> None:
    """Self-hosted comment moderation: score, explain and decide on reader comments."""


@cli.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), envvar="MODERATION_DATA_DIR", help="Folder with the public datasets (default ../shared/data).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Bundle folder to write (default: the configured MODEL_DIR).")
@click.option("--datasets", help="Comma-separated dataset names to use (default: all available).")
@click.option("--open-licenses-only", is_flag=True, help="Skip datasets without an open license (research-only sets).")
@click.option("--kind", type=click.Choice(["logreg", "nbsvm", "svm", "ensemble"]), default="ensemble", show_default=True, help="Linear model family.")
@click.option("--compare", is_flag=True, help="Also train the other kinds and the baselines; write the comparison into the report.")
def train(data_dir, out_dir, datasets, open_licenses_only, kind, compare) -> None:
    """Train a model bundle on the labelled datasets and write its report."""
    from tqdm import tqdm

    from training.datasets import default_data_dir, select_datasets
    from training.pipeline import run_training
    from training.report import markdown_table
    from training.train import TrainingConfig

    config = load_config()
    out = Path(out_dir or config["MODEL_DIR"])
    names = [n.strip() for n in datasets.split(",")] if datasets else None
    data = Path(data_dir or config["DATA_DIR"] or default_data_dir())
    try:
        select_datasets(data, names, open_licenses_only)
    except ValueError as error:
        _fail(str(error))
    # disable=None: a bar on a terminal, silence in logs and pipes.
    with tqdm(total=5 if compare else 4, desc="train", unit="stage", file=sys.stderr, disable=None) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        try:
            manifest, rows = run_training(
                data, out,
                names=names, open_only=open_licenses_only, config=TrainingConfig(kind=kind), compare=compare, progress=progress,
            )
        except ValueError as error:
            _fail(str(error))
    click.echo(markdown_table(rows, ["dataset", "label", "rows", "roc_auc", "average_precision", "f1_at_review", "accepted", "reviewed", "rejected", "missed_bad"]))
    click.echo(f"\nmodel {manifest['version']} written to {out} (report: {out / 'report' / 'report.md'})")


def _label_columns(specs: tuple[str, ...], labels: list[str]) -> dict[str, str]:
    """Parse ``--label-column`` values: ``toxic`` or ``toxic=Insult`` (model label = file column)."""
    mapping = {}
    for spec in specs:
        label, _, column = spec.partition("=")
        if label not in labels:
            _fail(f"--label-column {spec}: the model has no label {label!r} (it has {', '.join(labels)})")
        mapping[label] = column or label
    return mapping


def _truth(rows, label: str, column: str) -> list[int]:
    values = []
    for row in rows:
        raw = str(row.fields.get(column, "")).strip().lower()
        if column not in row.fields:
            _fail(f"line {row.line}: no {column!r} column or field")
        if raw in ("1", "true", "1.0"):
            values.append(1)
        elif raw in ("0", "false", "0.0"):
            values.append(0)
        elif raw == "":
            values.append(-1)
        else:
            _fail(f"line {row.line}: {column!r} must be 0 or 1, got {raw!r}")
    return values


@cli.command()
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Bundle folder (default: the configured MODEL_DIR).")
@click.option("--input", "input_path", required=True, help="CSV or JSON Lines file with a text column and label columns.")
@click.option("--label-column", "label_columns", multiple=True, help="LABEL or LABEL=COLUMN; repeat for several. Default: every model label present as a column.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default="report", show_default=True, help="Folder for report.md, metrics.json and plots.")
def evaluate(model_dir, input_path, label_columns, report_dir) -> None:
    """Evaluate a bundle on a labelled file and write a report with plots."""
    import numpy as np

    from training.datasets import Example
    from training.evaluate import per_dataset
    from training.report import markdown_table, write_report

    assessor = _load_assessor(model_dir)
    model = assessor.model
    try:
        rows = read_rows(input_path)
    except InputError as error:
        _fail(str(error))
    mapping = _label_columns(label_columns, model.labels) if label_columns else {l: l for l in model.labels if l in rows[0].fields}
    if not mapping:
        _fail(f"{input_path}: no label column found; name one with --label-column LABEL=COLUMN")
    truth = {label: np.array(_truth(rows, label, column)) for label, column in mapping.items()}
    source = Path(input_path).stem if input_path != "-" else "stdin"
    examples = [Example(r.text, {l: int(truth[l][i]) for l in mapping if truth[l][i] >= 0}, source, source, "dev") for i, r in enumerate(rows)]
    probabilities = model.predict_proba([r.text for r in rows])
    metrics = per_dataset(probabilities, model.labels, examples, assessor.thresholds)
    full_truth = {label: truth.get(label, np.full(len(rows), -1)) for label in model.labels}
    out = write_report(Path(report_dir), title=f"Model {model.version} on {source}", rows=metrics, labels=model.labels,
                       probabilities=probabilities, truth=full_truth, thresholds={l: assessor.thresholds[l] for l in mapping})
    click.echo(markdown_table(metrics, ["dataset", "label", "rows", "positives", "roc_auc", "average_precision", "f1_at_review", "f1_at_reject", "missed_bad", "wrongly_rejected"]))
    click.echo(f"\nreport written to {out / 'report.md'}")


@cli.command()
@click.argument("text", required=False)
@click.option("--input", "input_path", help="CSV (text column) or JSON Lines (\"text\" field) file; - for stdin. Writes JSON Lines.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Bundle folder (default: the configured MODEL_DIR).")
@click.option("--terms/--no-terms", default=True, show_default=True, help="Explain each score (--no-terms is about twice as fast on big files).")
def score(text, input_path, model_dir, terms) -> None:
    """Score one comment (TEXT) or every comment of a file."""
    if (text is None) == (input_path is None):
        _fail("give either a TEXT argument or --input FILE")
    if text is not None and not text.strip():
        _fail("the comment text is empty")
    assessor = _load_assessor(model_dir)
    if text is not None:
        result = assessor.assess(text)
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    try:
        rows = read_rows(input_path)
    except InputError as error:
        _fail(str(error))
    encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps would build an encoder per row
    lines = []
    for result in assessor.assess_batch([r.text for r in rows], explain=terms):
        lines.append(encode({k: result[k] for k in ("scores", "decision", "reasons", "terms")}))
        if len(lines) == 1000:
            click.echo("\n".join(lines))
            lines.clear()
    if lines:
        click.echo("\n".join(lines))


def main() -> None:
    cli()


# --- the service ------------------------------------------------------------------------


def _engine():
    from moderation.db import make_engine

    config = load_config()
    return make_engine(config["DATABASE_URL"], config["DATABASE_SCHEMA"])


@cli.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    from moderation.db import current_revision, head_revision, upgrade

    engine = _engine()
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)} (latest: {head_revision()})")


@cli.group("keys")
def keys_group() -> None:
    """API keys for sites (post comments) and moderators (decide)."""


@keys_group.command("create")
@click.option("--name", required=True, help="A unique name, e.g. the site's host name or the moderator.")
@click.option("--role", type=click.Choice(["site", "moderator"]), default="site", show_default=True)
def keys_create(name: str, role: str) -> None:
    """Create a key and print it, alone on one line (it is never shown again)."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(_engine()) as session:
        try:
            raw = store.create_key(session, name, role)
        except IntegrityError:
            _fail(f"a key named {name!r} exists already")
    click.echo(raw)


@keys_group.command("list")
def keys_list() -> None:
    """List keys (names, roles, dates; never the keys themselves)."""
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(_engine()) as session:
        for key in store.list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            click.echo(f"{key.name}\t{key.role}\tcreated {key.created_at:%Y-%m-%d %H:%M}\t{state}")


@keys_group.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke a key by name; requests with it get 401 from then on."""
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(_engine()) as session:
        if not store.revoke_key(session, name):
            _fail(f"no active key named {name!r}")
    click.echo(f"revoked {name}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Bundle folder (default: the configured MODEL_DIR).")
@click.option("--dev", is_flag=True, help="Run Flask's debug server instead of gunicorn.")
def serve(host: str, port: int, workers: int, model_dir: str | None, dev: bool) -> None:
    """Run the API server (gunicorn). Refuses to start without a valid model or an up-to-date schema."""
    import os
    import tempfile

    from moderation.db import SchemaOutOfDate, check_schema

    if model_dir:
        os.environ["MODERATION_MODEL_DIR"] = str(Path(model_dir).resolve())
    config = load_config()
    try:
        bundle.load(Path(config["MODEL_DIR"]))
        check_schema(_engine())
    except (bundle.BundleError, SchemaOutOfDate) as error:
        _fail(str(error))
    if dev:
        from moderation import create_app

        create_app().run(host=host, port=port, debug=True)
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="moderation-metrics-")
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}",
            "--access-logfile", "-", "--graceful-timeout", "20", "moderation:create_app()"]
    os.execv(sys.executable, args)
