"""Reading comment files for the command line: every bad row is a one-line, line-numbered InputError."""

from __future__ import annotations

import json

import pytest

from moderation.inputs import InputError, is_blank, read_rows


def write(tmp_path, name: str, content: str):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def test_a_lone_surrogate_escape_in_json_lines_is_a_line_numbered_error(tmp_path):
    path = write(tmp_path, "c.jsonl", '{"text": "fine"}\n{"text": "hi\\ud800"}\n')
    with pytest.raises(InputError, match=r"line 2 has invalid Unicode in 'text' \(a lone surrogate\)"):
        read_rows(path)


def test_a_surrogate_pair_escape_is_a_real_character_and_fine(tmp_path):
    rows = read_rows(write(tmp_path, "c.jsonl", '{"text": "hi \\ud83d\\ude00"}\n'))
    assert rows[0].text == "hi \U0001F600"


def test_a_csv_field_longer_than_the_csv_limit_is_a_line_numbered_error(tmp_path):
    path = write(tmp_path, "c.csv", "id,text\n1,short\n2," + "x" * 200_000 + "\n3,after\n")
    with pytest.raises(InputError, match=r"c\.csv: line 3 is not valid CSV \(field larger than field limit"):
        read_rows(path)


def test_a_blank_csv_record_is_an_error_as_a_blank_json_line_is(tmp_path):
    with pytest.raises(InputError, match="line 3 is empty"):
        read_rows(write(tmp_path, "c.csv", "id,text\n1,a\n\n2,b\n"))
    with pytest.raises(InputError, match="line 2 is empty"):
        read_rows(write(tmp_path, "c.jsonl", '{"text": "a"}\n\n{"text": "b"}\n'))


def test_blank_lines_at_the_end_of_a_csv_are_no_records(tmp_path):
    assert [row.text for row in read_rows(write(tmp_path, "c.csv", "id,text\n1,a\n2,b\n\n\n"))] == ["a", "b"]
    assert [row.text for row in read_rows(write(tmp_path, "c.jsonl", '{"text": "a"}\n{"text": "b"}\n\n'))] == ["a", "b"]


@pytest.mark.parametrize("text", ["\u200b", "\x00", "\u200b \ufeff\t\u2060", "\u00a0\u200d"])
def test_text_of_only_invisible_characters_is_empty(tmp_path, text):
    assert is_blank(text)
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('id,text\n1,ok\n2,"' + text + '"\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 3 has empty text"):
        read_rows(str(csv_path))
    json_path = tmp_path / "c.jsonl"
    json_path.write_text('{"text": "ok"}\n' + json.dumps({"text": text}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2 has empty text"):
        read_rows(str(json_path))


@pytest.mark.parametrize("text", ["a", "\u200bhi", "👍", "Привет", " x\x00"])
def test_visible_text_is_not_blank(text):
    assert not is_blank(text)


def test_csv_rows_keep_their_columns_and_line_numbers(tmp_path):
    rows = read_rows(write(tmp_path, "c.csv", 'id,text,spam\n1,"two\nlines",1\n2,short\n3,long,0,extra\n'))
    assert [(r.line, r.text) for r in rows] == [(3, "two\nlines"), (4, "short"), (5, "long")]
    assert rows[0].fields == {"id": "1", "text": "two\nlines", "spam": "1"}
    assert rows[1].fields == {"id": "2", "text": "short", "spam": None}  # as csv.DictReader: missing cells are None
    assert rows[2].fields[None] == ["extra"]
    with pytest.raises(InputError, match="line 2 has too few columns"):
        read_rows(write(tmp_path, "d.csv", "id,text\n1\n"))
