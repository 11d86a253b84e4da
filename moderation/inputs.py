"""Read comments from CSV or JSON Lines files for the command line, with errors a person can act on."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import unicodedata
from dataclasses import dataclass

# JSON can carry "\ud800": a lone surrogate, which no UTF-8 output (nor database) can hold.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters that show nothing: control and format characters (NUL, U+200B zero-width space...) and lone surrogates.
_INVISIBLE_CATEGORIES = ("Cc", "Cf", "Cs")


class InputError(Exception):
    """The input cannot be read as comments; the message names the file, line and problem."""


def is_blank(text: str) -> bool:
    """True when ``text`` has nothing to read: only whitespace, control and invisible format characters."""
    return all(char.isspace() or unicodedata.category(char) in _INVISIBLE_CATEGORIES for char in text)


def has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


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
    for number, line in enumerate(content.rstrip().splitlines(), start=1):  # blank lines at the end are no records
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
    """Read CSV records as `csv.DictReader` would, except that a blank record between records is an
    error (as in JSON Lines): outputs must line up with input rows. Blank lines at the end are not records."""
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        fieldnames = next(reader, None) or []
        if text_field not in fieldnames:
            raise InputError(f"{name}: no {text_field!r} column (columns: {', '.join(fieldnames) or 'none'})")
        width = len(fieldnames)
        rows, blank = [], None
        for values in reader:
            line = reader.line_num
            if not values:
                blank = blank or line  # blank lines at the end of a file are no records
                continue
            if blank is not None:
                raise InputError(f"{name}: line {blank} is empty")
            record = dict(zip(fieldnames, values))
            if len(values) > width:
                record[None] = values[width:]  # DictReader's restkey
            else:
                record.update((key, None) for key in fieldnames[len(values):])  # DictReader's restval
            if record[text_field] is None:
                raise InputError(f"{name}: line {line} has too few columns")
            rows.append(Row(line, record[text_field], record))
    except csv.Error as error:  # e.g. a field longer than csv.field_size_limit()
        raise InputError(f"{name}: line {reader.line_num} is not valid CSV ({error})") from None
    return rows


def read_rows(path: str, text_field: str = "text") -> list[Row]:
    """Read a CSV (with a ``text`` column) or JSON Lines (with a ``"text"`` field) file, or ``-``."""
    name, content = _open_text(path)
    rows = (_json_rows if _looks_like_json_lines(name, content) else _csv_rows)(name, content, text_field)
    for row in rows:
        if has_lone_surrogate(row.text):
            raise InputError(f"{name}: line {row.line} has invalid Unicode in {text_field!r} (a lone surrogate)")
        if is_blank(row.text):
            raise InputError(f"{name}: line {row.line} has empty text")
    if not rows:
        raise InputError(f"{name}: no comments found")
    return rows
