"""The command line: happy paths and every bad-input path gives one line and a non-zero exit."""

import json

import pytest
from click.testing import CliRunner

from moderation import bundle
from moderation.cli import cli


@pytest.fixture
def run():
    def invoke(*args, input=None):
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def assert_one_line_error(result, fragment):
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert fragment in lines[0]


def test_score_one_comment(run, tiny_bundle):
    result = run("score", "--model", str(tiny_bundle), "Free money!!! visit bit.ly/cash now")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert set(body) >= {"scores", "decision", "reasons", "terms", "model_version"}
    assert body["decision"] in ("accept", "review", "reject")
    assert body["scores"]["spam"] > body["scores"]["hate"]


@pytest.mark.parametrize("suffix,content", [
    (".csv", "id,text\n1,hello world\n2,\"you idiot, buy pills at bit.ly/x\"\n3,third one\n"),
    (".jsonl", '{"text": "hello world"}\n{"text": "you idiot, buy pills at bit.ly/x"}\n{"text": "third one"}\n'),
])
def test_score_file_writes_json_lines_in_input_order(run, tiny_bundle, tmp_path, suffix, content):
    path = tmp_path / f"comments{suffix}"
    path.write_text(content)
    result = run("score", "--model", str(tiny_bundle), "--input", str(path))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 3
    assert all(set(line) == {"scores", "decision", "reasons", "terms"} for line in lines)
    assert lines[1]["scores"]["spam"] > lines[0]["scores"]["spam"]


def test_score_reads_stdin(run, tiny_bundle):
    result = run("score", "--model", str(tiny_bundle), "--input", "-", input='{"text": "hello"}\n')
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize("name,content,fragment", [
    ("missing.csv", None, "no such file"),
    ("notext.csv", "id,body\n1,hello\n", "no 'text' column"),
    ("empty.jsonl", '{"text": "a"}\n\n{"text": "b"}\n', "line 2 is empty"),
    ("blank.csv", "text\nhello\n\"  \"\n", "empty text"),
    ("latin1.csv", b"text\ncaf\xe9\n", "not valid UTF-8"),
    ("broken.jsonl", '{"text": "a"}\n{oops\n', "line 2 is not valid JSON"),
    ("nofield.jsonl", '{"body": "a"}\n', "no string field 'text'"),
    ("surrogate.jsonl", '{"text": "fine"}\n{"text": "hi\\ud800"}\n', "line 2 has invalid Unicode in 'text' (a lone surrogate)"),
    ("huge.csv", "id,text\n1,fine\n2," + "x" * 140_000 + "\n", "line 3 is not valid CSV (field larger than field limit"),
    ("gap.csv", "id,text\n1,a\n\n2,b\n", "line 3 is empty"),
    ("zwsp.csv", "id,text\n1,a\n2,\u200b\n", "line 3 has empty text"),
    ("nul.jsonl", '{"text": "a"}\n{"text": "\\u0000\\u200b "}\n', "line 2 has empty text"),
])
def test_bad_input_files_get_one_line_errors(run, tiny_bundle, tmp_path, name, content, fragment):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    result = run("score", "--model", str(tiny_bundle), "--input", str(path))
    assert_one_line_error(result, fragment)


def test_tampered_bundle_is_a_one_line_error(run, tiny_bundle_copy):
    (tiny_bundle_copy / bundle.MODEL_FILE).write_bytes(b"not the model")
    assert_one_line_error(run("score", "--model", str(tiny_bundle_copy), "hi"), "sha256")


def test_missing_model_says_how_to_get_one(run, tmp_path):
    assert_one_line_error(run("score", "--model", str(tmp_path / "none"), "hi"), "moderation train")


def test_score_needs_text_or_input(run, tiny_bundle):
    assert_one_line_error(run("score", "--model", str(tiny_bundle)), "either a TEXT")
    assert_one_line_error(run("score", "--model", str(tiny_bundle), "   "), "empty")
    assert_one_line_error(run("score", "--model", str(tiny_bundle), "\u200b\x00"), "empty")
    assert_one_line_error(run("score", "--model", str(tiny_bundle), "hi\udcff"), "lone surrogate")  # undecodable argv bytes


def test_evaluate_writes_report_metrics_and_plots(run, tiny_bundle, tmp_path):
    path = tmp_path / "labelled.csv"
    rows = ["text,spam,abusive"] + [f"nice piece number {i},0,0" for i in range(10)]
    rows += [f"buy pills {i} at bit.ly/x{i},1,0" for i in range(5)] + [f"you idiot number {i},0,1" for i in range(5)]
    path.write_text("\n".join(rows) + "\n")
    report = tmp_path / "report"
    result = run("evaluate", "--model", str(tiny_bundle), "--input", str(path), "--label-column", "spam", "--label-column", "toxic=abusive", "--report", str(report))
    assert result.exit_code == 0, result.output
    metrics = json.loads((report / "metrics.json").read_text())
    assert {(r["label"], r["rows"]) for r in metrics["per_dataset"]} == {("spam", 20), ("toxic", 20)}
    assert (report / "report.md").read_text().startswith("# Model")
    assert (report / "spam.png").stat().st_size > 1000 and (report / "toxic.png").stat().st_size > 1000


def test_evaluate_rejects_unknown_label_and_bad_values(run, tiny_bundle, tmp_path):
    path = tmp_path / "labelled.csv"
    path.write_text("text,spam\nhello,maybe\n")
    assert_one_line_error(run("evaluate", "--model", str(tiny_bundle), "--input", str(path), "--label-column", "nonsense"), "no label 'nonsense'")
    assert_one_line_error(run("evaluate", "--model", str(tiny_bundle), "--input", str(path)), "must be 0 or 1")


def test_train_writes_a_loadable_bundle_and_prints_a_summary(run, tmp_path):
    out = tmp_path / "model"
    result = run("train", "--datasets", "examples", "--out", str(out), "--kind", "logreg")
    assert result.exit_code == 0, result.output
    assert "| examples | spam |" in result.output
    model = bundle.load(out)
    assert model.labels == ["spam", "toxic", "insult", "offensive", "hate"]
    assert (out / "report" / "report.md").exists()


def test_train_rejects_unknown_dataset(run, tmp_path):
    assert_one_line_error(run("train", "--datasets", "nope", "--out", str(tmp_path / "m")), "unknown dataset")


def test_train_refuses_to_replace_a_folder_that_is_not_a_bundle(run, tmp_path):
    out = tmp_path / "documents"
    out.mkdir()
    (out / "notes.txt").write_text("do not lose me")
    result = run("train", "--datasets", "examples", "--out", str(out), "--kind", "logreg")
    assert_one_line_error(result, f"refusing to replace {out}")
    assert (out / "notes.txt").read_text() == "do not lose me"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_train_replaces_an_earlier_bundle(run, tiny_bundle_copy):
    before = bundle.read_manifest(tiny_bundle_copy)["version"]
    result = run("train", "--datasets", "examples", "--out", str(tiny_bundle_copy), "--kind", "logreg")
    assert result.exit_code == 0, result.output
    assert bundle.load(tiny_bundle_copy).version != before
    assert [p.name for p in tiny_bundle_copy.parent.iterdir()] == [tiny_bundle_copy.name]  # nothing left beside it


def test_train_fails_when_named_datasets_are_missing_or_excluded(run, tmp_path):
    missing = tmp_path / "nonexistent"
    result = run("train", "--data", str(missing), "--datasets", "youtube_spam,examples", "--out", str(tmp_path / "m"))
    assert_one_line_error(result, f"youtube_spam not found in {missing}")
    assert not (tmp_path / "m").exists()
    data = tmp_path / "data"
    (data / "impermium_insults").mkdir(parents=True)
    (data / "impermium_insults" / "train.csv").write_text("text,Insult\nyou idiot,1\n")
    result = run("train", "--data", str(data), "--datasets", "examples,impermium_insults", "--open-licenses-only", "--out", str(tmp_path / "m"))
    assert_one_line_error(result, "impermium_insults excluded by the open-licenses-only option")
    assert not (tmp_path / "m").exists()


@pytest.fixture
def service_env(tmp_path, monkeypatch):
    """A fresh SQLite database in an instance folder without a model of its own."""
    monkeypatch.setenv("MODERATION_INSTANCE_DIR", str(tmp_path / "instance"))
    for name in ("DATABASE_URL", "DATABASE_SCHEMA", "MODEL_DIR", "MODELS_DIR", "CONFIG"):
        monkeypatch.delenv(f"MODERATION_{name}", raising=False)
    assert CliRunner().invoke(cli, ["db", "upgrade"], catch_exceptions=False).exit_code == 0
    return tmp_path


def test_rescore_and_drift_take_a_model_folder(run, service_env, tiny_bundle):
    version = bundle.read_manifest(tiny_bundle)["version"]
    rescored = run("rescore", "--dry-run", "--model", str(tiny_bundle))
    assert rescored.exit_code == 0, rescored.output
    assert f"re-scored with model {version}" in rescored.output
    drifted = run("drift", "--model", str(tiny_bundle), "--data", str(service_env / "no-public-data"))
    assert drifted.exit_code == 0, drifted.output
    assert drifted.output.startswith(f"model {version};")
    for command in ("rescore", "drift"):
        assert_one_line_error(run(command, "--model", str(service_env / "none")), "moderation train")
        assert "--model DIR" in run(command, "--help").output


def test_train_compare_writes_the_comparison_table(run, tmp_path):
    out = tmp_path / "model"
    result = run("train", "--datasets", "examples", "--out", str(out), "--kind", "logreg", "--compare")
    assert result.exit_code == 0, result.output
    report = (out / "report" / "report.md").read_text()
    assert "## Candidates compared" in report
    header = next(line for line in report.splitlines() if line.startswith("| dataset | label | logreg"))
    for candidate in ("nbsvm", "svm", "ensemble", "tfidf_logreg"):
        assert candidate in header


def _write_csv(path, rows: list[dict]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_train_compare_leaves_each_source_out_in_turn(run, tmp_path):
    """Two 'videos' of spam and two toxicity 'sources', made of our own examples in the public sets' formats."""
    import csv
    import json

    from training.datasets import EXAMPLES_CSV

    with open(EXAMPLES_CSV, newline="", encoding="utf-8") as handle:
        examples = list(csv.DictReader(handle))
    data = tmp_path / "data"
    videos = [{"text": e["text"], "spam": e["spam"], "video": f"Video{i % 2}"} for i, e in enumerate(examples)]
    _write_csv(data / "youtube_spam" / "train.csv", videos[: len(videos) * 3 // 4])
    _write_csv(data / "youtube_spam" / "dev.csv", videos[len(videos) * 3 // 4 :])
    impermium = [{"text": e["text"], "Insult": e["insult"]} for e in examples[0::2]]
    _write_csv(data / "impermium_insults" / "train.csv", impermium)
    jigsaw = [{"text": e["text"], "toxic": e["toxic"]} for e in examples[1::2]]
    _write_csv(data / "jigsaw_toxic_binary_sample" / "train.csv", jigsaw[: len(jigsaw) * 3 // 4])
    _write_csv(data / "jigsaw_toxic_binary_sample" / "dev.csv", jigsaw[len(jigsaw) * 3 // 4 :])
    out = tmp_path / "model"
    result = run("train", "--data", str(data), "--datasets", "youtube_spam,impermium_insults,jigsaw_toxic_binary_sample",
                 "--out", str(out), "--kind", "logreg", "--no-embeddings", "--compare")
    assert result.exit_code == 0, result.output
    report = (out / "report" / "report.md").read_text()
    assert "## Out of source" in report
    out_of_source = json.loads((out / "report" / "metrics.json").read_text())["out_of_source"]
    assert [r["held_out"] for r in out_of_source["spam"]] == ["Video0", "Video1"]
    assert [r["held_out"] for r in out_of_source["toxic"]] == ["impermium_insults", "jigsaw_toxic_binary_sample"]
    assert out_of_source["toxic"][0]["rows"] == len(impermium)  # the whole source is scored
    for rows in out_of_source.values():
        for row in rows:
            assert {"logreg", "tfidf_logreg"} <= set(row["scores"])
            assert f"| {row['held_out']} | {row['rows']} | {row['positives']} |" in report


def test_score_without_terms_gives_the_same_scores_and_decisions(run, tiny_bundle, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("text\nhello world\n\"you idiot, buy pills at bit.ly/x\"\nWOW WHAT A GOAL\n")
    with_terms = [json.loads(l) for l in run("score", "--model", str(tiny_bundle), "--input", str(path)).output.splitlines()]
    without = [json.loads(l) for l in run("score", "--model", str(tiny_bundle), "--input", str(path), "--no-terms").output.splitlines()]
    assert [r["decision"] for r in with_terms] == [r["decision"] for r in without]
    for a, b in zip(with_terms, without):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
        assert b["terms"] == []


def test_comparison_table_keeps_candidates_that_score_only_some_labels():
    """alt-profanity-check scores toxicity rows only; the spam rows come first, and its column must still show."""
    from training.pipeline import comparison_section

    metric = {"roc_auc": 0.9, "average_precision": 0.8}
    rows = [{"dataset": "sms_spam", "label": "spam", "scores": {"ensemble": metric, "tfidf_logreg": metric}},
            {"dataset": "olid", "label": "toxic", "scores": {"ensemble": metric, "tfidf_logreg": metric, "profanity_check": metric}}]
    lines = comparison_section(rows).splitlines()
    header = next(line for line in lines if line.startswith("| dataset"))
    assert header == "| dataset | label | ensemble | tfidf_logreg | profanity_check |"
    assert next(line for line in lines if line.startswith("| sms_spam")).endswith("| 0.900 / 0.800 | 0.900 / 0.800 |  |")
