"""A user's own task from CSV, TSV or JSON-lines files (source: files).

The format follows the extension: .csv (comma) and .tsv (tab) with a header row and standard
quoting, .jsonl/.ndjson (one JSON object per line), .json (JSON lines, or one array of objects).
Quotes are read strictly, so that an unbalanced quote never silently merges rows: a TSV record is one
line (a quoted field that runs on is an error naming where it opens and how far it runs); a CSV field
may hold quoted line breaks, and a file with such records says so in one line.
Texts come from the task's text_fields, the gold label from label_field ("label" by default); a
classification label may be a label name or its index. Files are UTF-8 (a BOM is allowed);
relative paths are read from the current directory.

train is required. A missing test split is a seeded carve of test_fraction of train, a missing
dev split one of dev_fraction of train (sizes relative to the train file), so that a user with
one file still gets honest held-out data. With group_field (a column), rows sharing its value
are carved together (no group in two splits). Example ids are f"{task}:{split}:{row}" with the split
of the file the row was read from and its data-row index there (carved rows keep their train id).

Every problem a user can cause (missing file or column, wrong encoding, binary data, a bad JSON
line, a row of the wrong width) is one MkdError naming the file (and line) and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mkd.config import TaskConfig
from mkd.errors import MkdError
from mkd.tasks.sources import SOURCES, label_index
from mkd.tasks.split import carve
from mkd.tasks.task import Example, TaskSpec

FORMATS = {".csv": ",", ".tsv": "\t", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
COLUMN_FIX = "set the task's text_fields:/label_field: to your column names"

Row = tuple[str, dict[str, Any]]  # (where, e.g. "data.csv line 3"; the row's columns)


def _resolve(raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def _read_text(path: Path) -> str:
    """The file as text; a clear error for a missing, binary or non-UTF-8 file."""
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise MkdError(f"data file {path} {what}",
                       "check the path (a relative path is read from the current directory)")
    data = path.read_bytes()
    recode = f"re-encode it as UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name} > utf8-{path.name})"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MkdError(f"data file {path} is UTF-16, not UTF-8 text", recode)
    if b"\x00" in data[:8192]:
        raise MkdError(f"data file {path} is a binary file, not CSV, TSV or JSON-lines text",
                       "give a text file exported as CSV, TSV or JSONL")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise MkdError(f"data file {path} is not UTF-8 text (byte 0x{data[e.start]:02x} on line "
                       f"{line})", recode) from None


def _table_rows(path: Path, text: str, delimiter: str) -> Iterator[Row]:
    """Rows of a CSV/TSV text, strict about quotes: a record that swallows lines is never silent. A TSV
    record is one line (an error otherwise); CSV records holding quoted line breaks are counted in one
    line, so that a row count that differs from the line count is always said."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    text, mark = _lone_returns(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    tsv = delimiter == "\t"
    spans: list[tuple[int, int]] = []  # (first, last line) of each CSV record read over several lines
    bare: list[int] = []  # first lines of CSV records with a quote inside an unquoted field
    lines = text.split("\n")
    start = 1  # the line where the record being read starts (a quoted field may span lines)
    rows = blank = 0
    try:
        header = [h.strip() for h in next(reader, [])]
        _check_header(path, header, reader.line_num, tsv)
        start = reader.line_num + 1
        for row in reader:
            first, start = start, reader.line_num + 1
            if not row:
                blank += 1
                continue
            if reader.line_num > first:
                if tsv:
                    raise _swallowed(path, first, reader.line_num, tsv)
                spans.append((first, reader.line_num))
            if len(row) != len(header):
                raise MkdError(f"data file {path} line {first} has {len(row)} columns, the header has "
                               f"{len(header)}" + _spanned(first, reader.line_num),
                               "quote fields that contain the delimiter, or fix the row")
            rows += 1
            if not tsv and any('"' in c for c in row) and _bare_quote("\n".join(lines[first - 1:reader.line_num])):
                bare.append(first)
            cells = [c.replace(mark, "\r") for c in row] if mark else row
            yield f"{path.name} line {first}", dict(zip(header, cells, strict=True))
    except csv.Error as e:
        if reader.line_num > start:
            raise _swallowed(path, start, reader.line_num, tsv, str(e) == "unexpected end of data") from None
        raise MkdError(f"data file {path} line {start}: {_quote_problem(e)}",
                       'fix the quoting there (a quote inside a quoted field is written "")') from None
    if spans:
        shown = ", ".join(f"{a}-{b}" for a, b in spans[:3]) + (", ..." if len(spans) > 3 else "")
        _say(f"{path.name}: {rows} rows on {reader.line_num - 1} lines after the header"
             + (f" ({blank} blank)" if blank else "")
             + f": {len(spans)} record(s) hold quoted line breaks (lines {shown})")
    if bare:
        shown = ", ".join(map(str, bare[:3])) + (", ..." if len(bare) > 3 else "")
        _say(f"{path.name}: {len(bare)} row(s) hold a quote inside an unquoted field, kept as written "
             f"(lines {shown}); if a row count looks wrong, check the quoting there")


def _bare_quote(raw: str) -> bool:
    """Whether a CSV record's text has a quote inside a field that does not open with one: the csv module
    keeps it as text, but in a user's file it is mostly a broken quote that may have split or merged rows.
    (Text after a closing quote is already an error: the reader is strict.)"""
    quoted, start, i = False, True, 0
    while i < len(raw):
        c = raw[i]
        if quoted:
            if c == '"':
                if raw.startswith('"', i + 1):
                    i += 1
                else:
                    quoted = False
        elif start and c == '"':
            quoted = True
        elif c == '"':
            return True
        start = not quoted and c in ",\n"
        i += 1
    return False


def _lone_returns(text: str) -> tuple[str, str]:
    """Lines end at \\n or \\r\\n, as editors and wc count them. A lone \\r is text (Python's csv
    writer and pandas leave it unquoted), which the csv module would take for a line end and so split a
    row in two: it travels as `mark` (a character the text lacks; "" when none), restored in the
    fields. A file without any \\n has old Mac line ends."""
    if "\r" not in text:
        return text, ""
    if "\n" not in text:
        return text.replace("\r", "\n"), ""
    if not re.search("\r(?!\n)", text):
        return text, ""
    mark = next(chr(c) for c in range(0xE000, 0x10FFFF) if chr(c) not in text)
    return re.sub("\r(?!\n)", mark, text), mark


def _check_header(path: Path, header: list[str], last: int, tsv: bool) -> None:
    """One header line, each column named once (a second 'text' would silently replace the first)."""
    if last > 1:
        raise _swallowed(path, 1, last, tsv)
    seen = {h for h in header if header.count(h) > 1}
    if seen:
        raise MkdError(f"data file {path}: the header names column '{sorted(seen)[0]}' twice",
                       "give every column its own name")


def _swallowed(path: Path, first: int, last: int, tsv: bool, unclosed: bool = False) -> MkdError:
    """A record read over several lines where the format does not allow it, or a quote never closed."""
    runs = f"is never closed (it runs to the end, line {last})" if unclosed else f"runs to line {last}"
    where = "a TSV record is one line: " if tsv else ""
    fix = (f"close or remove the quote on line {first}" +
           (" (a text with line breaks needs a .csv or .jsonl file)" if tsv else ""))
    return MkdError(f"data file {path} line {first}: a quoted field opened on line {first} {runs} "
                    f"({where}an unbalanced quote?)", fix)


def _quote_problem(e: csv.Error) -> str:
    """The csv module's message in words (it would print a tab as a raw tab)."""
    text = str(e)
    if "expected after" in text:
        return "text follows the quote that closes a quoted field"
    if text == "unexpected end of data":
        return "a quoted field is never closed"
    return f"malformed ({text})"


def _say(line: str) -> None:
    from mkd import dist
    from mkd.progress import console

    if dist.is_main():
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _spanned(first: int, last: int) -> str:
    """A record read over several lines is, in a user's file, mostly an unbalanced quote."""
    if last <= first:
        return ""
    return f" (a quoted field opened on line {first} runs to line {last}: an unbalanced quote?)"


def _json_rows(path: Path, text: str, array_ok: bool) -> Iterator[Row]:
    if array_ok and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise MkdError(f"data file {path} is not valid JSON ({e.msg} at line {e.lineno})",
                           "fix it, or write one JSON object per line (.jsonl)") from None
        for k, item in enumerate(items):
            where = f"{path.name} item {k}"
            if not isinstance(item, dict):
                raise MkdError(f"{where} is not a JSON object", "make every item an object")
            yield where, item
        return
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            raise MkdError(f"data file {path} line {n} is not valid JSON",
                           "write one JSON object per line (JSON lines)") from None
        if not isinstance(item, dict):
            raise MkdError(f"data file {path} line {n} is not a JSON object",
                           'write one object per line, e.g. {"text": "...", "label": "..."}')
        yield f"{path.name} line {n}", item


def _rows(path: Path) -> Iterator[Row]:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise MkdError(f"data file {path}: unknown format '{path.suffix}'",
                       "use a .csv, .tsv or .jsonl file")
    text = _read_text(path)
    if kind in ("jsonl", "json"):
        return _json_rows(path, text, array_ok=kind == "json")
    return _table_rows(path, text, kind)


def read_examples(
    spec: TaskSpec, raw_path: str, split: str, groups: dict[str, str] | None = None
) -> list[Example]:
    """The labelled examples of one file (and, into `groups`, each example's group_field value)."""
    path = _resolve(raw_path)
    group = spec.group_field if groups is not None else None
    columns = (*spec.text_fields, spec.label_field, *([group] if group else []))
    out: list[Example] = []
    for i, (where, row) in enumerate(_rows(path)):
        for c in columns:
            if c not in row:
                raise MkdError(f"{where}: no column '{c}' (columns: {', '.join(map(str, row))})",
                               COLUMN_FIX)
        texts = tuple("" if row[c] is None else str(row[c]) for c in spec.text_fields)
        label = label_index(spec, row[spec.label_field], where)
        out.append(Example(f"{spec.name}:{split}:{i}", texts, label))
        if group and groups is not None:
            groups[out[-1].id] = str(row[group])
    if not out:
        raise MkdError(f"data file {path} has no rows",
                       "give a header line and at least one row (JSONL: one object per line)")
    return out


@SOURCES.register("files")
def load_files(
    spec: TaskSpec, cfg: TaskConfig, seed: int, fetch_missing: bool
) -> dict[str, list[Example]]:
    """train/dev/test from the task's files; missing dev/test carved from train with the seed."""
    if "train" not in spec.files:
        raise MkdError(f"task {spec.name}: source files needs a train file",
                       "set train: to a CSV, TSV or JSONL file")
    groups: dict[str, str] = {}
    train = read_examples(spec, spec.files["train"], "train", groups)
    by = (lambda ex: groups[ex.id]) if spec.group_field else None
    n = len(train)
    test = read_examples(spec, spec.files["test"], "test") if "test" in spec.files else None
    dev = read_examples(spec, spec.files["dev"], "dev") if "dev" in spec.files else None
    if test is None:
        train, test = carve(train, max(1, round(n * cfg.test_fraction)), seed, by)
    if dev is None:
        train, dev = carve(train, max(1, round(n * cfg.dev_fraction)), seed + 1, by)
    return {"train": train, "dev": dev, "test": test}
