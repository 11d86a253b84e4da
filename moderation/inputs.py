"""Read comments from CSV or JSON Lines files for the command line, with errors a person can act on."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass


class InputError(Exception):
    """The input cannot be read as comments; the message names the file, line and problem."""


@dataclass
class Row:
    line: int
    text: str
    fields: dict


def _open_text(path: str) -> tuple[str, str]:
    """Return (name, content) of a UTF-8 file or ``-`` for stdin."""
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as handle:
                raw = handle.read()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except OSError as error:
        raise InputError(f"{name}: {error.strerror}") from None
    try:
        return name, raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise InputError(f"{name}: line {line} is not valid UTF-8") from None


def _looks_like_json_lines(name: str, content: str) -> bool:
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return True
    if name.endswith(".csv"):
        return False
    return content.lstrip().startswith("{")


def _json_rows(name: str, content: str, text_field: str) -> list[Row]:
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            raise InputError(f"{name}: line {number} is empty")
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(f"{name}: line {number} is not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise InputError(f"{name}: line {number} has no string field {text_field!r}")
        rows.append(Row(number, record[text_field], record))
    return rows


def _csv_rows(name: str, content: str, text_field: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    if not reader.fieldnames or text_field not in reader.fieldnames:
        raise InputError(f"{name}: no {text_field!r} column (columns: {', '.join(reader.fieldnames or []) or 'none'})")
    rows = []
    for record in reader:
        line = reader.line_num
        if record.get(text_field) is None:
            raise InputError(f"{name}: line {line} has too few columns")
        rows.append(Row(line, record[text_field], record))
    return rows


def read_rows(path: str, text_field: str = "text") -> list[Row]:
    """Read a CSV (with a ``text`` column) or JSON Lines (with a ``"text"`` field) file, or ``-``."""
    name, content = _open_text(path)
    rows = (_json_rows if _looks_like_json_lines(name, content) else _csv_rows)(name, content, text_field)
    for row in rows:
        if not row.text.strip():
            raise InputError(f"{name}: line {row.line} has empty text")
    if not rows:
        raise InputError(f"{name}: no comments found")
    return rows
