"""The learning loop on a small scale, on SQLite and PostgreSQL: comments in, moderators decide through
the API, labels exported, a challenger retrained and judged, promoted (or refused), the live server
switching version without a restart, rollback, and tampered bundles refused; held-out rows that stay held
out while decisions arrive, challengers missing a deciding label or worse on one, promotions racing from
two hosts, repeated promotions, and a rollback during a worker's model load."""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from moderation import bundle, labels, registry
from moderation.cli import cli
from moderation.schema import Promotion, utcnow
from conftest import HOLD_EVERYTHING
from training.retrain import Verdict, judge

BRANDS = ["quickcoin", "doublr", "moonbag", "satoshix", "yieldfarm", "cryptobro", "hodlnow", "pumpit", "richbot", "coinrain"]
TOPICS = ["tram extension", "school budget", "harbour plan", "library hours", "bridge repairs", "flood defences",
          "bus timetable", "park renovation", "housing report", "council vote"]


def site_spam(n: int) -> str:
    brand = BRANDS[n % len(BRANDS)]
    return f"My {brand} bot doubled my coins in {n % 7 + 2} days, message me on telegram @{brand}{n} to join"


def site_clean(n: int) -> str:
    topic = TOPICS[n % len(TOPICS)]
    return f"I read the piece on the {topic} twice; point {n % 9 + 1} about costs deserves a follow-up from the council"


@pytest.fixture
def loop(make_api, tiny_bundle, tmp_path, monkeypatch, database):
    """The app (with the tiny model as the default bundle), the CLI pointed at the same database and folders."""
    model_dir = tmp_path / "default-model"
    shutil.copytree(tiny_bundle, model_dir)
    settings = {"INSTANCE_DIR": str(tmp_path), "MODEL_DIR": str(model_dir), "MODEL_CHECK_SECONDS": 0.05,
                "SITE_HOLDOUT_SHARE": 0.25, "DUPLICATE_WINDOW_SECONDS": 0}
    api = make_api(**settings)
    for name, value in {**settings, **database}.items():
        monkeypatch.setenv(f"MODERATION_{name}", str(value))
    monkeypatch.setenv("MODERATION_THRESHOLDS", json.dumps(HOLD_EVERYTHING))  # the CLI judges by the app's thresholds
    monkeypatch.delenv("MODERATION_CONFIG", raising=False)
    return api


def cli_run(*args, input=None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def moderate(api, count: int, *, flip_older_than: int | None = None) -> None:
    """Post spam and clean comments alternately; moderators decide each through the API.

    With ``flip_older_than``, the first decisions are deliberately wrong (spam approved,
    clean rejected as spam): the newest, held-out ones stay right.
    """
    for n in range(count):
        spam = n % 2 == 0
        text = site_spam(n) if spam else site_clean(n)
        created = api.post_comment(text, author={"email": f"reader{n}@example.org"})
        assert created.status_code == 201, created.json
        wrong = flip_older_than is not None and n < flip_older_than
        if spam != wrong:
            response = api.decide(created.json["id"], "reject", "spam")
        else:
            response = api.decide(created.json["id"], "approve")
        assert response.status_code == 200, response.json


def served_version(url: str, key: str) -> str:
    body = json.dumps({"text": "Checking which model answers.", "author": {"email": f"probe{time.monotonic_ns()}@example.org"}}).encode()
    request = urllib.request.Request(url + "/api/v1/comments", data=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.load(response)["model_version"]


def wait_for_version(url: str, key: str, version: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = served_version(url, key)
        if seen == version:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server still answers with {seen}, not {version}")


@pytest.fixture
def server(loop):
    http = make_server("127.0.0.1", 0, loop.app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    thread.join()


def test_decisions_export_as_labels_without_personal_data_and_the_latest_decision_wins(loop, tmp_path):
    spam = loop.post_comment("Visit www.pills.example for cheap pills", author={"email": "sam@example.org", "name": "Sam"}).json["id"]
    clean = loop.post_comment("Thanks for the report on the harbour.", author={"email": "ann@example.org"}).json["id"]
    abuse = loop.post_comment("You are a complete moron", author={"email": "tom@example.org"}).json["id"]
    other = loop.post_comment("This belongs under another article.", author={"email": "oli@example.org"}).json["id"]
    loop.decide(spam, "approve")
    loop.decide(spam, "reject", "spam", expected_status="published")  # overturned: the later decision counts
    loop.decide(clean, "approve")
    loop.decide(abuse, "reject", "abuse")
    loop.decide(other, "reject", "off_topic")
    out = tmp_path / "labels.csv"
    result = cli_run("export-labels", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = labels.read_csv(io.StringIO(out.read_text()))
    assert [(r.text, r.labels) for r in rows] == [
        ("Visit www.pills.example for cheap pills", {"spam": 1}),
        ("Thanks for the report on the harbour.", {"spam": 0, "toxic": 0}),
        ("You are a complete moron", {"toxic": 1}),
    ]
    exported = out.read_text()
    assert "sam@example.org" not in exported and "Sam" not in exported
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    assert cli_run("export-labels", "--since", tomorrow, "--out", "-").output.strip() == "text,spam,toxic,decided_at"


def test_the_same_text_from_many_authors_counts_once(loop):
    wave = "Join my crypto group for guaranteed profit"
    for n in range(5):
        comment = loop.post_comment(wave, author={"email": f"bot{n}@example.org", "ip": f"203.0.113.{n}"}).json["id"]
        loop.decide(comment, "reject", "spam")
    with Session(loop.app.extensions["moderation.engine"]) as session:
        rows = labels.site_labels(session)
    assert [(r.text, r.labels) for r in rows] == [(wave, {"spam": 1})]


def test_for_one_text_the_newest_decision_wins_even_when_an_older_one_is_imported_later(loop):
    from moderation import imports

    text = "Great offer, message me for cheap followers"
    fresh = loop.post_comment(text, author={"email": "new@example.org"}).json["id"]
    loop.decide(fresh, "reject", "spam")  # today's moderator
    archived = imports.Record(where="line 2", external_id="wp-1", text=text, outcome="approved", author={"email": "old@example.org"},
                              created_at=datetime(2019, 5, 1, tzinfo=timezone.utc), decided_at=datetime(2019, 5, 2, tzinfo=timezone.utc))
    with Session(loop.app.extensions["moderation.engine"]) as session:
        report = imports.run([archived], session, site="site-test", source="csv", max_text_chars=5000)
        assert sum(report.imported.values()) == 1  # inserted after today's decision, dated years before it
        rows = labels.site_labels(session)
    assert [(r.text, r.labels) for r in rows] == [(text, {"spam": 1})]


def _row(dataset, label, auc, ap, rows=100, positives=40):
    return {"dataset": dataset, "label": label, "roc_auc": auc, "average_precision": ap, "rows": rows, "positives": positives}


def test_judge_promotes_only_a_challenger_better_on_site_data_and_not_worse_on_public_sets():
    champion = [_row("site", "spam", 0.80, 0.60), _row("youtube_spam", "spam", 0.95, 0.90)]
    assert judge(champion, [_row("site", "spam", 0.90, 0.80), _row("youtube_spam", "spam", 0.945, 0.89)], tolerance=0.01).promote
    worse_public = judge(champion, [_row("site", "spam", 0.90, 0.80), _row("youtube_spam", "spam", 0.90, 0.80)], tolerance=0.01)
    assert not worse_public.promote and any("youtube_spam / spam" in r for r in worse_public.reasons)
    not_better = judge(champion, [_row("site", "spam", 0.80, 0.60), _row("youtube_spam", "spam", 0.99, 0.99)], tolerance=0.01)
    assert not not_better.promote and "not better" in not_better.reasons[0]
    no_site = judge(champion[1:], [_row("youtube_spam", "spam", 0.99, 0.99)], tolerance=0.01)
    assert no_site == Verdict(False, [no_site.reasons[0]]) and "no held-out site decisions" in no_site.reasons[0]


def test_the_whole_loop_promotes_a_better_model_the_server_switches_and_rollback_restores(loop, server):
    default = bundle.read_manifest(loop.app.config["MODEL_DIR"])["version"]
    assert served_version(server, loop.site_key) == default
    moderate(loop, 80)
    result = cli_run("retrain", "--datasets", "examples", "--kind", "logreg")
    assert result.exit_code == 0, result.output
    assert "promoted" in result.output and "better" in result.output
    assert "| site | spam |" in result.output  # the side-by-side table has the site's held-out row
    with Session(loop.app.extensions["moderation.engine"]) as session:
        live = registry.live_version(session)
    assert live != default
    wait_for_version(server, loop.site_key, live)  # no restart
    listed = cli_run("models", "list").output
    assert f"* {live}" in listed and default in listed
    assert json.loads(cli_run("models", "show", live).output)["version"] == live
    assert any(d["name"] == "site" for d in json.loads(cli_run("models", "show", live).output)["datasets"])
    rolled = cli_run("models", "rollback")
    assert rolled.exit_code == 0 and default in rolled.output
    wait_for_version(server, loop.site_key, default)
    assert cli_run("models", "rollback").exit_code != 0  # nothing older than the first model
    assert cli_run("models", "promote", live).exit_code == 0
    wait_for_version(server, loop.site_key, live)


def test_a_challenger_trained_on_flipped_labels_is_refused(loop):
    moderate(loop, 80, flip_older_than=60)  # the 60 oldest decisions are wrong; the 20 held out are right
    result = cli_run("retrain", "--datasets", "examples", "--kind", "logreg")
    assert result.exit_code == 0, result.output
    assert "kept the champion" in result.output and "not better" in result.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert registry.live_version(session) is None  # the default model stays live
        assert len(registry.entries(session)) == 1  # the refused challenger is kept for inspection


def test_a_tampered_bundle_is_never_promoted_nor_swapped_in(loop, server):
    config = loop.app.config
    default = bundle.read_manifest(config["MODEL_DIR"])["version"]
    candidate = registry.models_dir(config) / "candidate"
    shutil.copytree(config["MODEL_DIR"], candidate)
    manifest = json.loads((candidate / "manifest.json").read_text())
    manifest["version"] = "tampered-1"
    (candidate / "manifest.json").write_text(json.dumps(manifest))
    with Session(loop.app.extensions["moderation.engine"]) as session:
        registry.register(session, config, candidate)
    joblib_file = registry.bundle_dir(config, "tampered-1") / bundle.MODEL_FILE
    with open(joblib_file, "r+b") as handle:  # flip bytes in the middle of the pickle
        handle.seek(1000)
        handle.write(b"\x00\xff" * 8)
    refused = cli_run("models", "promote", "tampered-1")
    assert refused.exit_code != 0 and "cannot go live" in refused.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert registry.live_version(session) is None
        # Even if a promotion slipped past the check (a row written by hand), the servers refuse the bundle.
        session.add(Promotion(version="tampered-1", action="promote", actor="intruder", created_at=utcnow()))
        session.commit()
    time.sleep(0.5)
    for _ in range(10):
        assert served_version(server, loop.site_key) == default
        time.sleep(0.05)


def test_rescore_resolves_what_the_live_model_is_now_sure_of_and_audits_each(loop, monkeypatch):
    held = [loop.post_comment(site_spam(n) if n % 2 == 0 else site_clean(n), author={"email": f"r{n}@example.org"}).json["id"] for n in range(6)]
    assert cli_run("rescore", "--dry-run").output.startswith("6 pending comments re-scored")
    # Thresholds that decide (the tests' defaults hold everything): publish below 0.5 spam, reject from 0.9.
    monkeypatch.setenv("MODERATION_THRESHOLDS", json.dumps({"spam": {"review_at": 0.5, "reject_at": 0.9}, "toxic": {"review_at": 2.0, "reject_at": 2.0}}))
    result = cli_run("rescore", "--status", "pending")
    assert result.exit_code == 0, result.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        from moderation import store

        comments = [store.get_comment(session, i) for i in held]
        resolved = [c for c in comments if c.status != "pending"]
        assert resolved, "the stricter thresholds should resolve some comments"
        for comment in resolved:
            last = store.history_of(session, comment.id)[-1]
            assert (last.actor, last.reason, last.previous_status, last.new_status) == ("model", "rescore", "pending", comment.status)
        assert str(sum(c.status == "published" for c in comments)) + " were published" in result.output


def test_drift_reports_scores_per_label_and_alerts_when_moderators_overturn_too_many_flags(loop, tmp_path):
    quiet = cli_run("drift", "--days", "7", "--data", str(tmp_path / "no-public-data"))
    assert quiet.exit_code == 0 and "no alerts" in quiet.output
    for n in range(25):  # the test thresholds flag every comment as spam; people approve them all
        comment = loop.post_comment(site_clean(n), author={"email": f"d{n}@example.org"}).json["id"]
        loop.decide(comment, "approve")
    result = cli_run("drift", "--days", "7", "--data", str(tmp_path / "no-public-data"))
    assert result.exit_code == 0, result.output
    assert re.search(r"^\| spam \| 25 \| ", result.output, re.M)
    assert "ALERT spam: moderators overturned 25 of 25 flags (100%" in result.output
    assert cli_run("drift", "--fail-on-alert", "--data", str(tmp_path / "no-public-data")).exit_code == 1


def test_retrain_with_the_streaming_backend_reads_the_decisions_chunk_by_chunk(loop, monkeypatch):
    moderate(loop, 40)
    chunks = []

    def spy(session, since=None, chunk=labels.CHUNK):
        for rows in real_stream(session, since, chunk):
            chunks.append(len(rows))
            yield rows

    def whole(*args, **kwargs):
        raise AssertionError("the streaming backend must not gather every decision into one list")

    real_stream = labels.stream_site_labels
    monkeypatch.setattr(labels, "stream_site_labels", spy)
    monkeypatch.setattr(labels, "site_labels", whole)
    monkeypatch.setattr("training.streaming.SITE_CHUNK", 8)
    result = cli_run("retrain", "--datasets", "examples", "--backend", "streaming")
    assert result.exit_code == 0, result.output
    assert "| site | spam |" in result.output and "30 trained on, 10 held out" in result.output
    assert max(chunks) == 8 and len(chunks) >= 5 * 8  # passes: facts, hold-out cut, count, 5 epochs, calibrate, judge; 5 chunks each
    with Session(loop.app.extensions["moderation.engine"]) as session:
        challenger = next(e.version for e in registry.entries(session) if e.version != registry.live_version(session))
    manifest = json.loads(cli_run("models", "show", challenger).output)
    assert manifest["training"]["backend"] == "streaming"
    assert {d["name"]: (d["train_rows"], d["dev_rows"]) for d in manifest["datasets"]}["site"] == (30, 10)
    site_rows = {r["label"]: r["rows"] for r in manifest["dev_metrics"] if r["dataset"] == "site"}
    assert site_rows["spam"] == 10  # the challenger's own report includes the held-out site rows


# --- the audit: leakage, labels, races and rollback ------------------------------------------

from moderation import imports  # noqa: E402
from moderation.live_model import ModelWatcher  # noqa: E402


def _import_old_decisions(loop, count: int) -> None:
    """Decisions from an archive (dated years ago) arriving through `moderation import` while something else runs."""
    records = [imports.Record(where=f"line {n}", external_id=f"archive-{n}", outcome="spam" if n % 2 else "approved",
                              text=(f"Archived offer {n}: {BRANDS[n % 10]} pays out daily, join at {BRANDS[n % 10]}{n}.example" if n % 2
                                    else f"Archived remark {n} about the {TOPICS[n % 10]}, thanks to the reporters"),
                              created_at=datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(hours=n))
               for n in range(count)]
    with Session(loop.app.extensions["moderation.engine"]) as session:
        report = imports.run(records, session, site="site-test", source="csv", max_text_chars=10_000)
    assert sum(report.imported.values()) == count


@pytest.mark.parametrize("backend", ["memory", "streaming"])
def test_decisions_arriving_during_a_retrain_never_turn_trained_rows_into_held_out_ones(loop, monkeypatch, backend):
    """An import of old decisions (they sort first) moved the newest-share cut between training and judging:
    rows the challenger had learned were then judged as held out, flattering it."""
    import training.retrain as retrain_module

    moderate(loop, 80)
    trained, judged = set(), set()
    real_training, real_scoring = retrain_module.run_training, retrain_module.score_held_out

    def training_then_an_import(*args, extra=None, extra_chunks=None, **kwargs):
        result = real_training(*args, extra=extra, extra_chunks=extra_chunks, **kwargs)
        rows = extra if extra is not None else [e for chunk in extra_chunks() for e in chunk]
        trained.update(e.text for e in rows if e.split == "train")
        _import_old_decisions(loop, 30)
        return result

    def scoring(models, batches):
        seen = []
        for batch in batches:
            judged.update(e.text for e in batch if e.source == "site")
            seen.append(batch)
        return real_scoring(models, iter(seen))

    monkeypatch.setattr(retrain_module, "run_training", training_then_an_import)
    monkeypatch.setattr(retrain_module, "score_held_out", scoring)
    result = cli_run("retrain", "--datasets", "examples", "--kind", "logreg", "--backend", backend)
    assert result.exit_code == 0, result.output
    assert trained and judged
    assert not trained & judged, f"{len(trained & judged)} rows were trained on and then judged as held out"


def test_a_challenger_that_cannot_score_a_deciding_label_is_never_promoted(loop):
    """Trained on a spam-only public set and decisions that never rejected abuse, the challenger has no toxic label:
    live, it would publish every abusive comment. However good its spam scores, it must stay out."""
    from tests.conftest import public_data_or_skip

    public_data_or_skip()
    moderate(loop, 80)
    result = cli_run("retrain", "--datasets", "youtube_spam", "--backend", "streaming")
    assert result.exit_code == 0, result.output
    assert "cannot score toxic" in result.output and "kept the champion" in result.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert registry.live_version(session) is None


def test_judge_refuses_missing_labels_a_worse_site_label_and_too_few_held_out_decisions():
    champion = [_row("site", "spam", 0.80, 0.60), _row("site", "toxic", 0.90, 0.80), _row("youtube_spam", "spam", 0.95, 0.90)]
    better_spam_worse_toxic = [_row("site", "spam", 0.95, 0.95), _row("site", "toxic", 0.85, 0.70), _row("youtube_spam", "spam", 0.95, 0.90)]
    verdict = judge(champion, better_spam_worse_toxic, tolerance=0.01)  # the mean went up: 0.70 -> 0.825
    assert not verdict.promote and any("site / toxic" in r for r in verdict.reasons)
    no_toxic = judge(champion[::2], [_row("site", "spam", 0.95, 0.95), _row("youtube_spam", "spam", 0.95, 0.90)], tolerance=0.01,
                     required_labels=("spam", "toxic"), challenger_labels=("spam",))
    assert not no_toxic.promote and "cannot score toxic" in no_toxic.reasons[0]
    few = judge([_row("site", "spam", 0.5, 0.5, rows=6, positives=3)], [_row("site", "spam", 1.0, 1.0, rows=6, positives=3)], tolerance=0.01)
    assert not few.promote and "at least 5 of each outcome" in few.reasons[0]


def _two_versions(loop) -> tuple[str, str]:
    """Register two valid bundles (the tiny model under two versions)."""
    config = loop.app.config
    versions = []
    for name in ("version-a", "version-b"):
        folder = registry.models_dir(config).parent / f"src-{name}"
        shutil.copytree(config["MODEL_DIR"], folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["version"] = name
        (folder / "manifest.json").write_text(json.dumps(manifest))
        with Session(loop.app.extensions["moderation.engine"]) as session:
            versions.append(registry.register(session, config, folder))
    return versions[0], versions[1]


def test_a_repeated_promotion_is_no_step_and_rollback_really_goes_back(loop):
    a, b = _two_versions(loop)
    assert cli_run("models", "promote", a).exit_code == 0
    assert cli_run("models", "promote", b).exit_code == 0
    again = cli_run("models", "promote", b)  # a retry after a time-out, say
    assert again.exit_code == 0 and "live already" in again.output
    rolled = cli_run("models", "rollback")
    assert rolled.exit_code == 0 and f"rolled back to {a}" in rolled.output, rolled.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert registry.live_version(session) == a
        # Rows an earlier version wrote (a repeat, two hosts rolling back at once) replay to what is live.
        for version, action in ((b, "promote"), (b, "promote"), (a, "rollback"), (a, "rollback")):
            session.add(Promotion(version=version, action=action, actor="old", created_at=utcnow()))
        session.commit()
        assert registry._live_stack(session)[-1] == registry.live_version(session) == a


def test_a_promotion_judged_against_a_model_no_longer_live_is_refused(loop, monkeypatch):
    """Host B promotes while host A's retrain trains: A's challenger was never compared with B's model."""
    import training.retrain as retrain_module

    moderate(loop, 80)
    a, b = _two_versions(loop)
    real_training = retrain_module.run_training

    def training_while_another_host_promotes(*args, **kwargs):
        result = real_training(*args, **kwargs)
        with Session(loop.app.extensions["moderation.engine"]) as session:
            registry.promote(session, loop.app.config, b, actor="host-b")
        return result

    monkeypatch.setattr(retrain_module, "run_training", training_while_another_host_promotes)
    result = cli_run("retrain", "--datasets", "examples", "--kind", "logreg", "--force")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "went live while this ran" in result.output and "stays registered" in result.output
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert registry.live_version(session) == b


def test_two_hosts_promoting_against_the_same_live_version_cannot_both_succeed(loop):
    a, b = _two_versions(loop)
    barrier, outcomes = threading.Barrier(2), []

    def host(version):
        with Session(loop.app.extensions["moderation.engine"]) as session:
            barrier.wait()
            try:
                outcomes.append(registry.promote(session, loop.app.config, version, actor=f"host-{version}", expected_live=None))
            except registry.RegistryError as error:
                outcomes.append(str(error))

    threads = [threading.Thread(target=host, args=(v,)) for v in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, outcomes))[0] == "True" and "went live while this ran" in sorted(map(str, outcomes))[1], outcomes
    with Session(loop.app.extensions["moderation.engine"]) as session:
        assert len(registry.history(session)) == 1


def test_a_worker_does_not_swap_in_a_model_rolled_back_while_it_loaded(loop, monkeypatch):
    import moderation.app as app_module

    a, b = _two_versions(loop)
    engine, config = loop.app.extensions["moderation.engine"], loop.app.config
    with Session(engine) as session:
        registry.promote(session, config, a, actor="test")
        registry.promote(session, config, b, actor="test")
    loading, release = threading.Event(), threading.Event()
    real_load = app_module.load_service

    def slow_load(settings):
        loading.set()
        release.wait(10)
        return real_load(settings)

    monkeypatch.setattr(app_module, "load_service", slow_load)
    watcher = ModelWatcher(loop.app, 0.0)
    watcher.check()  # starts loading b in the background
    assert loading.wait(10)
    with Session(engine) as session:
        registry.rollback(session, config, actor="test")  # b misbehaves: back to a
    release.set()
    for thread in [t for t in threading.enumerate() if t.name.startswith("load-model-")]:
        thread.join(10)
    assert watcher.served_version() != b
    monkeypatch.setattr(app_module, "load_service", real_load)
    watcher.check()
    for thread in [t for t in threading.enumerate() if t.name.startswith("load-model-")]:
        thread.join(10)
    assert watcher.served_version() == a


def test_a_registry_folder_it_cannot_write_fails_in_one_line_before_any_training(loop, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MODERATION_MODELS_DIR", str(blocker / "models"))
    for args in (("retrain", "--datasets", "examples", "--kind", "logreg"), ("models", "add", loop.app.config["MODEL_DIR"])):
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 1 and not isinstance(result.exception, OSError), result.output
        assert result.output.startswith("Error: cannot ") and str(blocker) in result.output and "training on" not in result.output
