"""The `moderation` command: train, evaluate and score from the shell.

Commands that train import `training` lazily, so serving never loads it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from pathlib import Path

import click

from moderation import bundle
from moderation.config import ConfigError, load_config
from moderation.inputs import InputError, has_lone_surrogate, is_blank, read_rows


def _fail(message: str) -> None:
    raise click.ClickException(message)


# Every command that uses the live model takes the same --model option.
_model_option = click.option(
    "--model", "model_dir", type=click.Path(file_okay=False),
    help="Bundle folder (default: the live model: the registry's live version, else MODEL_DIR).",
)


def _load_assessor(model_dir: str | None, *, scoring_only: bool = False):
    """Load the bundle (``scoring_only``: just its scoring arrays, no scikit-learn) and an assessor for it."""
    from moderation.assessor import Assessor

    config = load_config()
    load = bundle.load_for_scoring if scoring_only else bundle.load
    try:
        model = load(Path(model_dir) if model_dir else _live_model_dir(config))
    except bundle.BundleError as error:
        _fail(str(error))
    return Assessor.from_config(model, config)


def _live_model_dir(config: dict) -> Path:
    """The registry's live version when the database says so, else the configured MODEL_DIR."""
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from moderation import registry
    from moderation.db import make_engine

    engine = make_engine(config["DATABASE_URL"], config["DATABASE_SCHEMA"])
    try:
        with Session(engine) as session:
            return registry.live_bundle_dir(session, config)
    except SQLAlchemyError:  # no database yet (or no registry table): the default bundle
        return Path(config["MODEL_DIR"])
    finally:
        engine.dispose()


def _pieces_dir(config: dict, given: str | None, switched_off: bool) -> Path | None:
    """The piece-vector table to train with: ``--embeddings``, else EMBEDDINGS_DIR when it has been built."""
    from moderation.pieces import SOURCE_FILE, default_pieces_dir

    if switched_off:
        return None
    if given:
        if not (Path(given) / SOURCE_FILE).is_file():
            _fail(f"--embeddings {given}: no piece-vector table there; build one with scripts/build-embeddings {given}")
        return Path(given)
    return default_pieces_dir(config)


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
@click.option("--compare", is_flag=True, help="Also train the other kinds and the baselines, and leave each source out of training in turn "
              "(spam, toxic); write both comparisons into the report. Many times slower.")
@click.option("--backend", type=click.Choice(["memory", "streaming"]), default=None,
              help="memory: TF-IDF over all rows at once (--kind applies); streaming: hashed features and SGD chunk by chunk, "
                   "for millions of comments. Default: the TRAINING_BACKEND setting.")
@click.option("--embeddings", "embeddings_dir", type=click.Path(file_okay=False), default=None,
              help="Piece-vector table to add beside the n-grams (default: the EMBEDDINGS_DIR setting, when built).")
@click.option("--no-embeddings", is_flag=True, help="Train on word and character n-grams only.")
def train(data_dir, out_dir, datasets, open_licenses_only, kind, compare, backend, embeddings_dir, no_embeddings) -> None:
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
        bundle.check_replaceable(out)
    except (ValueError, bundle.BundleError) as error:
        _fail(str(error))
    # disable=None: a bar on a terminal, silence in logs and pipes.
    with tqdm(total=6 if compare else 4, desc="train", unit="stage", file=sys.stderr, disable=None) as bar:
        def progress(stage: str) -> None:
            bar.set_postfix_str(stage)
            bar.update(1)

        pieces_dir = _pieces_dir(config, embeddings_dir, no_embeddings)
        if pieces_dir and (backend or config["TRAINING_BACKEND"]) == "streaming":
            click.echo(f"note: the streaming backend trains on hashed n-grams only; the piece-vector table {pieces_dir} is not used", err=True)
        try:
            manifest, rows = run_training(
                data, out,
                names=names, open_only=open_licenses_only, config=TrainingConfig(kind=kind), compare=compare,
                backend=backend or config["TRAINING_BACKEND"], pieces_dir=pieces_dir, progress=progress,
            )
        except (ValueError, bundle.BundleError) as error:
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
@_model_option
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
@_model_option
@click.option("--terms/--no-terms", default=True, show_default=True, help="Explain each score (--no-terms is about twice as fast on big files).")
def score(text, input_path, model_dir, terms) -> None:
    """Score one comment (TEXT) or every comment of a file."""
    if (text is None) == (input_path is None):
        _fail("give either a TEXT argument or --input FILE")
    if text is not None and has_lone_surrogate(text):
        _fail("the comment text is not valid Unicode (a lone surrogate)")
    if text is not None and is_blank(text):
        _fail("the comment text is empty")
    with _collector_paused():
        _score(text, input_path, model_dir, terms)


@contextlib.contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while a command runs.

    Loading a model and scoring a file make millions of short-lived containers and no
    reference cycles; the collector's passes over them cost ~12 % of `score --input`.
    Afterwards what is still alive joins the oldest generation unexamined (freeze, then
    unfreeze): re-enabled, the collector would first scan all of it (~0.2 s).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()


def _score(text, input_path, model_dir, terms) -> None:
    assessor = _load_assessor(model_dir, scoring_only=True)
    if text is not None:
        result = assessor.assess(text)
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    try:
        rows = read_rows(input_path)
    except InputError as error:
        _fail(str(error))
    # One encoder for all rows (json.dumps would build one per row); results hold no cycles to check for.
    encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    lines = []
    for result in assessor.assess_batch([r.text for r in rows], explain=terms):
        lines.append(encode({k: result[k] for k in ("scores", "decision", "reasons", "terms")}))
        if len(lines) == 1000:
            click.echo("\n".join(lines))
            lines.clear()
    if lines:
        click.echo("\n".join(lines))


def main() -> None:
    """The console entry point.

    When the command is over the process ends: what is left is frozen, so the collector's
    pass over everything at interpreter exit is skipped (~0.2 s after `score --input`).
    """
    try:
        cli()
    except ConfigError as error:  # a setting in the TOML file or the environment: one line, never a traceback
        click.echo(f"Error: {error}", err=True)
        sys.exit(1)
    finally:
        gc.freeze()


# --- the service ------------------------------------------------------------------------


def _engine(check: bool = True):
    """An engine for this command, disposed (connections closed) when the command ends.

    ``check``: refuse, in one line, a database whose schema is behind the code.
    """
    from moderation.db import SchemaOutOfDate, check_schema, make_engine

    config = load_config()
    engine = make_engine(config["DATABASE_URL"], config["DATABASE_SCHEMA"])
    click.get_current_context().call_on_close(engine.dispose)
    if check:
        try:
            check_schema(engine)
        except SchemaOutOfDate as error:
            _fail(str(error))
    return engine


@cli.group("db")
def db_group() -> None:
    """Database schema management."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    from moderation.db import current_revision, head_revision, upgrade

    engine = _engine(check=False)
    upgrade(engine)
    click.echo(f"database at revision {current_revision(engine)} (latest: {head_revision()})")


@cli.group("keys")
def keys_group() -> None:
    """API keys for sites (post comments) and moderators (decide)."""


@keys_group.command("create")
@click.option("--name", required=True, help="A unique name, e.g. the site's host name or the moderator.")
@click.option("--role", type=click.Choice(["site", "moderator", "admin"]), default="site", show_default=True,
              help="site: posts comments; moderator: decides; admin: erases readers' personal data (POST /api/v1/erasures).")
def keys_create(name: str, role: str) -> None:
    """Create a key and print it, alone on one line (it is never shown again)."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(_engine()) as session:
        try:
            raw = store.create_key(session, name, role)
        except IntegrityError:
            _fail(f"a key named {name!r} exists already (a new secret for it: moderation keys rotate {name})")
    click.echo(raw)


@keys_group.command("rotate")
@click.argument("name")
def keys_rotate(name: str) -> None:
    """Give a key a new secret and print it, alone on one line; the old secret stops working.

    The name, and so the site's comments, retries by external_id and polling, carry over.
    A revoked key comes back to life this way.
    """
    from sqlalchemy.orm import Session

    from moderation import store

    with Session(_engine()) as session:
        raw = store.rotate_key(session, name)
    if raw is None:
        _fail(f"no key named {name!r}")
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


@cli.group("users")
def users_group() -> None:
    """Accounts for the review desk (/moderate): moderators and admins."""


def _read_password() -> str:
    """Ask twice at a terminal; otherwise read the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line.strip():
        _fail("no password on stdin: pipe one in, or run this at a terminal to be asked")
    return line.rstrip("\r\n")


def _accounts(action, *args) -> None:
    from sqlalchemy.orm import Session

    from moderation.accounts import AccountError

    with Session(_engine()) as session:
        try:
            action(session, *args)
        except AccountError as error:
            _fail(str(error))


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["moderator", "admin"]), default="moderator", show_default=True,
              help="Admins also manage users.")
def users_add(name: str, role: str) -> None:
    """Add a desk user; the password is asked at a prompt, or read from stdin when it is not a terminal."""
    from moderation import accounts

    _accounts(accounts.add_user, name, role, _read_password())
    click.echo(f"added {role} {name}")


@users_group.command("list")
def users_list() -> None:
    """List desk users with their role and state."""
    from sqlalchemy.orm import Session

    from moderation import accounts

    with Session(_engine()) as session:
        for user in accounts.list_users(session):
            state = "disabled" if user.disabled_at else f"{user.failed_logins} failed sign-ins" if user.failed_logins else "active"
            click.echo(f"{user.name}\t{user.role}\tcreated {user.created_at:%Y-%m-%d}\t{state}")


@users_group.command("passwd")
@click.argument("name")
def users_passwd(name: str) -> None:
    """Set a new password (prompt or stdin); the user's open sessions end."""
    from moderation import accounts

    _accounts(accounts.set_password, name, _read_password())
    click.echo(f"password changed for {name}")


@users_group.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable an account and end its sessions (its decisions stay in the audit log)."""
    from moderation import accounts

    _accounts(accounts.disable_user, name)
    click.echo(f"disabled {name}")


@users_group.command("unlock")
@click.argument("name")
def users_unlock(name: str) -> None:
    """Unlock an account locked after repeated failed sign-ins."""
    from moderation import accounts

    _accounts(accounts.unlock_user, name)
    click.echo(f"unlocked {name}")


# --- privacy ------------------------------------------------------------------------------


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be purged; change nothing.")
def purge(dry_run: bool) -> None:
    """Apply the retention settings (RETAIN_IP_DAYS, PURGE_SPAM_DAYS); safe from cron on several hosts at once."""
    from sqlalchemy.orm import Session

    from moderation import privacy

    config = load_config()
    with Session(_engine()) as session:
        result = privacy.purge(session, config, dry_run=dry_run)
    click.echo(result.summary(config, dry_run=dry_run))


@cli.command()
@click.option("--email", required=True, help="The reader's email address (matched in any case).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(email: str, yes: bool) -> None:
    """Remove a reader's personal data (name, email, URL, IP address, user agent); texts and decisions stay."""
    from sqlalchemy.orm import Session

    from moderation import privacy

    try:
        address = privacy.checked_email(email)
    except ValueError as error:
        _fail(f"--email {error}")
    with Session(_engine()) as session:
        found = privacy.erase(session, address, actor=_actor(), dry_run=True)
        if not yes:
            click.confirm(f"erase the personal data of {found.comments} comments and mask the address in {found.texts_redacted} texts?",
                          abort=True, err=True)
        result = privacy.erase(session, address, actor=_actor())
    click.echo(f"erased: {result.comments} comments' author data, the address masked in {result.texts_redacted} texts, "
               f"{result.bans_removed} bans lifted")
    if result.audit_notes_mentioning:
        click.echo(f"warning: {result.audit_notes_mentioning} audit notes mention the address; the audit log is append-only, "
                   "so they are unchanged", err=True)


# --- the learning loop ------------------------------------------------------------------


def _since(value: str | None):
    from datetime import datetime, timezone

    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--since {value!r} is not a date (YYYY-MM-DD) or ISO time")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@cli.command("export-labels")
@click.option("--since", help="Only decisions made on or after this date (YYYY-MM-DD, UTC).")
@click.option("--out", "out_path", required=True, help="CSV file to write (- for stdout): text, spam, toxic, decided_at.")
def export_labels(since: str | None, out_path: str) -> None:
    """Write the moderators' decisions as training labels (no names, emails or addresses)."""
    from sqlalchemy.orm import Session

    from moderation import labels

    with Session(_engine()) as session:
        rows = labels.site_labels(session, _since(since))
    if out_path == "-":
        labels.write_csv(rows, sys.stdout)
        return
    with open(out_path, "w", newline="", encoding="utf-8") as handle:
        count = labels.write_csv(rows, handle)
    click.echo(f"{count} labelled comments written to {out_path}", err=True)


@cli.command()
@click.option("--data", "data_dir", type=click.Path(file_okay=False), envvar="MODERATION_DATA_DIR", help="Folder with the public datasets (default ../shared/data).")
@click.option("--datasets", help="Comma-separated public dataset names to use (default: all available).")
@click.option("--open-licenses-only", is_flag=True, help="Skip datasets without an open license.")
@click.option("--kind", type=click.Choice(["logreg", "nbsvm", "svm", "ensemble"]), default="ensemble", show_default=True)
@click.option("--backend", type=click.Choice(["memory", "streaming"]), default=None,
              help="memory: TF-IDF over all rows at once; streaming: hashed features chunk by chunk (default: TRAINING_BACKEND).")
@click.option("--force", is_flag=True, help="Promote the challenger even if it is not judged better.")
def retrain(data_dir, datasets, open_licenses_only, kind, backend, force) -> None:
    """Train a challenger on the public sets plus the site's decisions; promote it only if it is better."""
    import shutil
    import uuid

    from sqlalchemy.orm import Session

    from moderation import registry
    from training import streaming
    from training.datasets import default_data_dir
    from training.report import markdown_table
    from training.retrain import retrain as run_retrain
    from training.train import TrainingConfig

    config = load_config()
    data = Path(data_dir or config["DATA_DIR"] or default_data_dir())
    names = [n.strip() for n in datasets.split(",")] if datasets else None
    staging = registry.models_dir(config) / f".challenger-{uuid.uuid4().hex[:8]}"
    try:
        registry.models_dir(config).mkdir(parents=True, exist_ok=True)  # now: a registry it cannot write fails before hours of training
    except OSError as error:
        _fail(f"cannot write the model registry {registry.models_dir(config)}: {error}")
    engine = _engine()
    with Session(engine) as session:
        live_at_start = registry.live_version(session)  # the promotion below is refused if another goes live meanwhile
        champion_dir = registry.live_bundle_dir(session, config)
        try:
            champion = bundle.read_manifest(champion_dir)["version"]
        except bundle.BundleError as error:
            _fail(f"no live model to compare with: {error}")
        click.echo(f"champion {champion}", err=True)
        site = streaming.site_chunks(engine, holdout_share=config["SITE_HOLDOUT_SHARE"], size=streaming.SITE_CHUNK)  # read in chunks, each pass
        try:
            outcome = run_retrain(
                data, staging, champion_dir, site, names=names, open_only=open_licenses_only, config=TrainingConfig(kind=kind),
                site_weight=config["SITE_LABEL_WEIGHT"], tolerance=config["PROMOTION_TOLERANCE"],
                backend=backend or config["TRAINING_BACKEND"], pieces_dir=_pieces_dir(config, None, False),
                decision_labels=tuple(config["DECISION_LABELS"]), progress=lambda stage: click.echo(f"  {stage}", err=True),
            )
            verdict = outcome.verdict
            note = ("promoted" if verdict.promote else "kept the champion") + ": " + "; ".join(verdict.reasons)
            challenger = registry.register(session, config, staging, note=note)
        except (ValueError, OSError, bundle.BundleError) as error:
            _fail(str(error))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        click.echo(markdown_table(outcome.table, list(outcome.table[0]) if outcome.table else ["dataset"]))
        click.echo(f"\nsite decisions: {outcome.site_rows['train']} trained on, {outcome.site_rows['held_out']} held out (newest)")
        for reason in verdict.reasons:
            click.echo(f"- {reason}")
        if not (verdict.promote or force):
            click.echo(f"kept the champion {champion}; the challenger is registered as {challenger} (`moderation models promote {challenger}` to override)")
            return
        try:
            if live_at_start is None:  # first promotion: record the default model so rollback can return to it
                initial = registry.register(session, config, champion_dir, note="the model live before the registry")
                registry.promote(session, config, initial, actor=_actor(), reason="initial model", expected_live=None)
                live_at_start = initial
            registry.promote(session, config, challenger, actor=_actor(), reason="forced" if force and not verdict.promote else "better on held-out data",
                             expected_live=live_at_start)
        except (registry.RegistryError, bundle.BundleError) as error:
            _fail(f"not promoted: {error}. The challenger stays registered as {challenger}: run `moderation retrain` again to judge it "
                  f"against the live model, or `moderation models promote {challenger}`")
        click.echo(f"promoted {challenger} (was {champion}); servers switch within {config['MODEL_CHECK_SECONDS']:g} s")


def _model_and_rules(model_dir: str | None):
    """The assessor for ``--model`` (else the live model) and the rules at its thresholds, as the server builds them."""
    from moderation.intake import rules_from_config

    assessor = _load_assessor(model_dir, scoring_only=True)  # a missing or bad bundle: one line, exit 1
    return assessor, rules_from_config(load_config(), assessor.thresholds)


@cli.command()
@click.option("--status", type=click.Choice(["pending"]), default="pending", show_default=True, help="Which comments to re-score (the review queue).")
@click.option("--dry-run", is_flag=True, help="Only count what the live model would decide now; change nothing.")
@click.option("--limit", type=click.IntRange(min=1), help="Re-score at most this many (oldest first).")
@_model_option
def rescore(status: str, dry_run: bool, limit: int | None, model_dir: str | None) -> None:
    """Re-score the queue with the live model (or --model DIR); resolve what it is now confident about (audited)."""
    from sqlalchemy.orm import Session

    from moderation.rescore import rescore_pending

    assessor, rules = _model_and_rules(model_dir)
    with Session(_engine()) as session:
        result = rescore_pending(session, assessor, rules, dry_run=dry_run, limit=limit)
    outcome = result.outcomes
    verb = "would be" if dry_run else "were"
    click.echo(f"{result.seen} {status} comments re-scored with model {assessor.model.version}: "
               f"{outcome['accept']} {verb} published, {outcome['reject']} {verb} rejected, {outcome['review']} stay in the queue"
               + (f"; {result.skipped} were decided by a moderator meanwhile and left alone" if result.skipped else ""))


@cli.command()
@click.option("--days", default=7, show_default=True, type=click.IntRange(min=1), help="The recent window to judge.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), envvar="MODERATION_DATA_DIR", help="Public datasets, for the training-data reference (default ../shared/data).")
@click.option("--fail-on-alert", is_flag=True, help="Exit with status 1 when an alert fires (for cron and monitoring).")
@_model_option
def drift(days: int, data_dir: str | None, fail_on_alert: bool, model_dir: str | None) -> None:
    """Score drift of the last DAYS against the training data and the days before; moderator agreement per label."""
    from datetime import timedelta

    from sqlalchemy.orm import Session

    from moderation import drift as drift_report
    from moderation import stats
    from moderation.schema import utcnow
    from training.datasets import default_data_dir, load_dataset, select_datasets
    from training.report import markdown_table

    config = load_config()
    assessor, rules = _model_and_rules(model_dir)
    labels = list(assessor.model.labels)
    data = Path(data_dir or config["DATA_DIR"] or default_data_dir())
    reference_texts = []
    for name in select_datasets(data):
        dev = [e.text for e in load_dataset(name, data) if e.split == "dev"]
        reference_texts += dev[:: max(1, len(dev) // 2000)]  # an even sample of at most ~2,000 per set
    training = {}
    if reference_texts:
        scored = assessor.scorer.score_batch(reference_texts)
        training = {label: scored[:, i].tolist() for i, label in enumerate(assessor.scorer.labels)}
    now = utcnow()
    since, before = now - timedelta(days=days), now - timedelta(days=2 * days)
    with Session(_engine()) as session:
        recent = drift_report.site_scores(session, since)
        earlier = drift_report.site_scores(session, before, since)
        overturns, *_ = stats.overturns(session, since, rules.thresholds)
    rows, alerts = drift_report.report(labels, recent, earlier, training, overturns,
                                       alert_rate=config["DRIFT_ALERT_OVERTURN"], min_decisions=config["DRIFT_MIN_DECISIONS"])
    table = [{
        "label": r.label, "comments": r.recent, "mean score": r.recent_mean, "training mean": r.training_mean,
        "PSI vs training": r.psi_training, "vs training": drift_report.shift(r.psi_training),
        f"PSI vs {days} d before": r.psi_before, f"vs {days} d before": drift_report.shift(r.psi_before),
        "flags decided": r.flagged_decided, "overturned": "-" if r.overturn_rate is None else f"{r.overturn_rate:.0%}",
    } for r in rows]
    click.echo(f"model {assessor.model.version}; last {days} days; training reference: "
               + (f"{len(reference_texts)} public dev comments" if reference_texts else f"none (no datasets in {data})"))
    click.echo(markdown_table(table, list(table[0])))
    for line in alerts or ["no alerts"]:
        click.echo(line)
    if alerts and fail_on_alert:
        sys.exit(1)


@cli.group("models")
def models_group() -> None:
    """The model registry: list, inspect, promote and roll back versions."""


def _registry_call(action, *args, **kwargs):
    from sqlalchemy.orm import Session

    from moderation import registry

    with Session(_engine()) as session:
        try:
            return action(session, load_config(), *args, **kwargs)
        except registry.RegistryError as error:
            _fail(str(error))


@models_group.command("list")
def models_list() -> None:
    """Every registered version, the live one marked with *."""
    from sqlalchemy.orm import Session

    from moderation import registry

    with Session(_engine()) as session:
        entries = registry.entries(session)
    if not entries:
        click.echo(f"no registered versions; the live model is the bundle in {load_config()['MODEL_DIR']}")
    for entry in entries:
        click.echo(f"{'*' if entry.live else ' '} {entry.version}\tcreated {entry.created_at:%Y-%m-%d %H:%M}\t{entry.note or ''}")


@models_group.command("show")
@click.argument("version")
def models_show(version: str) -> None:
    """A version's manifest (datasets, thresholds, dev metrics) as JSON."""
    from moderation import registry

    try:
        manifest = bundle.read_manifest(registry.bundle_dir(load_config(), version))
    except bundle.BundleError as error:
        _fail(str(error))
    click.echo(json.dumps(manifest, indent=2))


@models_group.command("add")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.option("--note", help="Why this version exists, shown by `models list`.")
def models_add(bundle_dir: str, note: str | None) -> None:
    """Register a bundle (e.g. from `moderation train --out DIR`) without making it live."""
    from moderation import registry

    def add(session, config):
        try:
            return registry.register(session, config, Path(bundle_dir), note=note)
        except bundle.BundleError as error:
            raise registry.RegistryError(str(error)) from None

    click.echo(f"registered {_registry_call(add)}")


@models_group.command("promote")
@click.argument("version")
def models_promote(version: str) -> None:
    """Make a registered version live (verified first)."""
    from moderation import registry

    if _registry_call(registry.promote, version, actor=_actor(), reason="promoted by hand"):
        click.echo(f"promoted {version}")
    else:
        click.echo(f"{version} is live already; nothing changed")


@models_group.command("rollback")
def models_rollback() -> None:
    """Make the previously live version live again."""
    from moderation import registry

    click.echo(f"rolled back to {_registry_call(registry.rollback, actor=_actor())}")


@cli.command()
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--api", "api_url", default="http://127.0.0.1:8000", show_default=True, help="Where `moderation serve` answers.")
@click.option("--key", envvar="MODERATION_DEMO_KEY", help="A site key (default: a new one named demo-site-<time> is created).")
@click.option("--article", type=click.Path(dir_okay=False, exists=True), help="Article text: title on the first line (default ../shared/demo/article.txt).")
def demo(port: int, api_url: str, key: str | None, article: str | None) -> None:
    """Serve a sample news article with a comment form that is moderated through the API (the integration pattern)."""
    from datetime import datetime

    from sqlalchemy.orm import Session

    from moderation import store
    from moderation.demo import DEFAULT_ARTICLE, create_demo_app

    path = Path(article) if article else DEFAULT_ARTICLE
    if not path.is_file():
        _fail(f"no article at {path}: pass --article FILE")
    if not key:
        with Session(_engine()) as session:
            key = store.create_key(session, f"demo-site-{datetime.now():%Y%m%d%H%M%S}", "site")
    click.echo(f"demo site on http://127.0.0.1:{port}/ posting comments to {api_url}", err=True)
    create_demo_app(api_url, key, path).run(host="127.0.0.1", port=port, threaded=True)


@cli.group("webhooks")
def webhooks_group() -> None:
    """Signed webhooks: tell a site when its comments are published, held, approved or rejected."""


def _webhooks_call(action, *args):
    from sqlalchemy.orm import Session

    from moderation.webhooks import WebhookError

    with Session(_engine()) as session:
        try:
            return action(session, *args)
        except WebhookError as error:
            _fail(str(error))


@webhooks_group.command("add")
@click.argument("url")
@click.option("--site", required=True, help="The site key's name whose comments the endpoint hears about.")
@click.option("--events", help="Comma-separated: comment.published, comment.held, comment.approved, comment.rejected (default: all).")
def webhooks_add(url: str, site: str, events: str | None) -> None:
    """Register an endpoint; prints its id and signing secret (shown once)."""
    from moderation import webhooks

    chosen = [e.strip() for e in events.split(",")] if events else None
    endpoint, secret = _webhooks_call(webhooks.add_endpoint, site, url, chosen)
    click.echo(f"endpoint {endpoint.id} for {site}: {endpoint.events}", err=True)
    click.echo(secret)


@webhooks_group.command("list")
def webhooks_list() -> None:
    """Every endpoint with its state (never the secrets)."""
    from moderation import webhooks

    for endpoint in _webhooks_call(webhooks.endpoints):
        state = f"disabled: {endpoint.disabled_reason}" if endpoint.disabled_at else f"active ({endpoint.failures} failures in a row)"
        click.echo(f"{endpoint.id}\t{endpoint.site}\t{endpoint.url}\t{endpoint.events}\t{state}")


@webhooks_group.command("remove")
@click.argument("endpoint_id", type=int)
def webhooks_remove(endpoint_id: int) -> None:
    """Stop sending to an endpoint (its delivery log stays)."""
    from moderation import webhooks

    if not _webhooks_call(webhooks.remove_endpoint, endpoint_id):
        _fail(f"no endpoint {endpoint_id}")
    click.echo(f"removed endpoint {endpoint_id}")


@webhooks_group.command("enable")
@click.argument("endpoint_id", type=int)
def webhooks_enable(endpoint_id: int) -> None:
    """Re-enable an endpoint disabled after failures (its pending events resume)."""
    from moderation import webhooks

    if not _webhooks_call(webhooks.enable_endpoint, endpoint_id):
        _fail(f"no endpoint {endpoint_id}")
    click.echo(f"enabled endpoint {endpoint_id}")


@webhooks_group.command("deliveries")
@click.argument("endpoint_id", type=int)
@click.option("--limit", default=50, show_default=True)
def webhooks_deliveries(endpoint_id: int, limit: int) -> None:
    """The endpoint's delivery log, newest first."""
    from moderation import webhooks

    for attempt in _webhooks_call(webhooks.deliveries, endpoint_id, limit):
        outcome = "ok" if attempt.error is None else attempt.error
        click.echo(f"{attempt.attempted_at:%Y-%m-%d %H:%M:%S}\tevent {attempt.outbox_id}\t{attempt.status_code or '-'}\t{attempt.duration_ms:.0f} ms\t{outcome}")


@webhooks_group.command("run")
@click.option("--once", is_flag=True, help="Deliver what is due now and exit (for cron); default: keep running.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks at the outbox when it is empty.")
def webhooks_run(once: bool, interval: float) -> None:
    """Deliver due events, at least once, with back-off; run it beside `moderation serve`."""
    import os
    import time

    from sqlalchemy.orm import Session

    from moderation import webhooks

    policy = webhooks.Policy.from_config(load_config())
    engine = _engine()
    if proxies := sorted(name for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy") if os.environ.get(name)):
        click.echo(f"warning: {', '.join(proxies)} set, but webhooks connect directly (their address checks need the connection)", err=True)
    with webhooks.client(policy) as client:
        while True:
            with Session(engine) as session:
                sent = webhooks.deliver_due(session, client, policy)
            if once and not sent:
                return
            if not sent:
                time.sleep(interval)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="Bundle to serve while the registry has no live version (default: MODEL_DIR).")
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
        bundle.load_for_scoring(_live_model_dir(config))  # what every worker will load
        check_schema(_engine())
    except (bundle.BundleError, SchemaOutOfDate) as error:
        _fail(str(error))
    if dev:
        from moderation import create_app

        create_app().run(host=host, port=port, debug=True)
        return
    if workers > 1 and config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        click.echo(f"warning: with {workers} workers and RATELIMIT_STORAGE_URI=memory:// each worker counts on its own, so an "
                   f"author may post up to {workers} x RATE_LIMIT; set MODERATION_RATELIMIT_STORAGE_URI=redis://HOST:6379 to share "
                   "the counters", err=True)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="moderation-metrics-")
    # JSON logs: gunicorn's own lines as JSON too; the app writes the access lines (request id, key name).
    logging_args = (["--logger-class", "moderation.logs.GunicornLogger"] if config["LOG_FORMAT"] == "json"
                    else ["--access-logfile", "-"] if config["LOG_FORMAT"] == "text" else [])
    args = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}", "--config", "python:moderation.gunicorn_hooks",
            *logging_args, "--graceful-timeout", "20", "moderation:create_app()"]
    os.execv(sys.executable, args)


# --- backups ---------------------------------------------------------------------------------


@cli.command()
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the copy (default: beside the database, with a timestamp).")
def backup(out: str | None) -> None:
    """Copy the SQLite database consistently while the server runs; for PostgreSQL, print the pg_dump command."""
    from moderation import backup as backups

    config = load_config()
    source = backups.sqlite_path(config["DATABASE_URL"])
    if source is None:
        click.echo(backups.postgres_commands(config["DATABASE_URL"], config["DATABASE_SCHEMA"], out))
        sys.exit(1)
    target = Path(out) if out else backups.default_name(source)
    try:
        result = backups.backup_sqlite(source, target)
    except backups.BackupError as error:
        _fail(str(error))
    counts = ", ".join(f"{count} {table}" for table, count in result["counts"].items())
    click.echo(f"backed up {source} to {target} (integrity ok, schema {result['revision']}; {counts})")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Replace the database without asking.")
def restore(file: str, yes: bool) -> None:
    """Replace the SQLite database with a backup, after checking its integrity and schema version."""
    from moderation import backup as backups
    from moderation.db import head_revision

    config = load_config()
    target = backups.sqlite_path(config["DATABASE_URL"])
    if target is None:
        click.echo(backups.postgres_commands(config["DATABASE_URL"], config["DATABASE_SCHEMA"], file))
        sys.exit(1)
    try:
        result = backups.check(Path(file))
        if result["integrity"] != "ok":
            _fail(f"{file} failed its integrity check: {result['integrity']}")
        if result["revision"] != head_revision():
            _fail(f"{file} has schema revision {result['revision']}, this code needs {head_revision()}: restore it with the "
                  "version of the code that made it (then upgrade that way)")
        counts = ", ".join(f"{count} {table}" for table, count in result["counts"].items())
        undone = backups.erasures_since(Path(file), target)
        if undone:  # the audit log says an erasure happened, never whose: only the person who ran it can repeat it
            click.echo(f"warning: {undone} erasures were made after this backup was taken; restoring it brings those readers' "
                       "data back: run each `moderation erase --email ...` again afterwards", err=True)
        if not yes and not click.confirm(f"replace {target} with {file} ({counts})?", default=False):
            _fail("nothing was changed")
        backups.restore_sqlite(Path(file), target, head_revision())
    except backups.BackupError as error:
        _fail(str(error))
    click.echo(f"restored {target} from {file} ({counts})" + (f"; {undone} erasures to run again, then `moderation purge`" if undone else ""))


# --- importing a site's history -------------------------------------------------------------


@cli.group("import")
def import_group() -> None:
    """Bring a site's past moderated comments in as labels (no scoring, no webhooks)."""


def _run_import(source: str, path: str, site: str, queue_pending: bool, dry_run: bool) -> None:
    """Stream ``path`` through the source's reader into the database, with a progress bar and a summary."""
    import io
    import os
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException
    from sqlalchemy.orm import Session
    from tqdm import tqdm

    from moderation import imports, store
    from moderation.imports import csvfile, wordpress

    config = load_config()
    report = imports.Report()
    failure = None
    with Session(_engine()) as session, open(path, "rb") as raw, \
            tqdm(total=os.path.getsize(path), desc=f"import {source}", unit="B", unit_scale=True, file=sys.stderr, disable=None) as bar:
        if not any(key.name == site and key.role == "site" and not key.revoked_at for key in store.list_keys(session)):
            click.echo(f"note: no active site key named {site!r}; the comments are stored under that name anyway", err=True)
        stream = io.BufferedReader(imports.Counted(raw, bar.update))
        records = wordpress.read(stream) if source == "wordpress" else csvfile.read(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        try:
            imports.run(records, session, site=site, source=source, max_text_chars=config["MAX_TEXT_CHARS"],
                        queue_pending=queue_pending, dry_run=dry_run, report=report)
        except (ParseError, DefusedXmlException, csvfile.CsvError, UnicodeDecodeError) as error:
            failure = f"{path}: {error}"
    click.echo("\n".join(report.lines(dry_run)))
    if dry_run:
        click.echo("dry run: nothing was written")
    if failure:
        _fail(f"{failure}\nstopped there: the batches above were stored; after fixing the file, run again (what is stored is skipped)")


_IMPORT_OPTIONS = [
    click.argument("path", type=click.Path(exists=True, dir_okay=False)),
    click.option("--site", required=True, help="The site key's name the comments belong to (the name its live comments arrive under)."),
    click.option("--queue-pending", is_flag=True, help="Store never-decided comments as pending, for the review queue (default: skip them)."),
    click.option("--dry-run", is_flag=True, help="Check everything, write nothing."),
]


def _import_options(command):
    for option in reversed(_IMPORT_OPTIONS):
        command = option(command)
    return command


@import_group.command("wordpress")
@_import_options
def import_wordpress(path: str, site: str, queue_pending: bool, dry_run: bool) -> None:
    """Import a WordPress export (WXR, Tools > Export): approved, spam and trashed comments become decisions."""
    _run_import("wordpress", path, site, queue_pending, dry_run)


@import_group.command("csv")
@_import_options
def import_csv(path: str, site: str, queue_pending: bool, dry_run: bool) -> None:
    """Import a CSV: a text column and a status column (approved, spam, abuse, rejected, trash, pending...)
    or spam/toxic 0/1 columns as export-labels writes."""
    _run_import("csv", path, site, queue_pending, dry_run)
