"""A user's data files never silently gain or lose rows (issue 24): random CSV/TSV/JSONL files written with
the csv and json modules (quotes, delimiters, line breaks in fields, BOM, CRLF, blank lines, Unicode) read
back as the rows written, or fail with one MkdError; a stray or missing quote either fails, keeps the row
count, or is said in one line. The issue's own TSV (and its CSV twin) ends `mkd run` with exit 2 naming
line 5, writing nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mkd.config import TaskConfig
from mkd.data.transfer import read_unlabelled
from mkd.errors import MkdError
from mkd.tasks import load_task
from mkd.tasks.files import _rows
from tests.tinyfix import PAIR, run_cli

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

# text biased to what breaks CSV: quotes, both delimiters, every line end, BOMs, spaces, any Unicode
SPECIAL = ['"', "'", ",", "\t", "\n", "\r", "\r\n", " ", "\ufeff", "\u2028", "é", "文字", "😀", '""', "a"]
cells = st.lists(st.one_of(st.sampled_from(SPECIAL), st.text(st.characters(exclude_categories=["Cs"],
                                                                           exclude_characters="\x00"), max_size=4)),
                 max_size=5).map("".join)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One folder for every example (each overwrites the file before reading it)."""
    return tmp_path_factory.mktemp("roundtrip")


def _write_table(path: Path, header: list[str], rows: list[list[str]], bom: bool, crlf: bool,
                 blanks: list[int]) -> None:
    end = "\r\n" if crlf else "\n"
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",", lineterminator=end)
        writer.writerow(header)
        for i, row in enumerate(rows):
            f.write(end * blanks.count(i))
            writer.writerow(row)


@st.composite
def tables(draw) -> tuple[list[str], list[list[str]]]:
    width = draw(st.integers(1, 3))
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=6))
    return [f"c{i}" for i in range(width)], rows


def _read(path: Path) -> tuple[list[dict], list[str]]:
    """The rows mkd reads and the lines it says about them."""
    with mock.patch("mkd.tasks.files._say") as say:
        rows = [row for _, row in _rows(path)]
    return rows, [c.args[0] for c in say.call_args_list]


@FAST
@given(table=tables(), tsv=st.booleans(), bom=st.booleans(), crlf=st.booleans(),
       blanks=st.lists(st.integers(0, 6), max_size=2))
def test_csv_and_tsv_read_back_the_rows_written(folder, table, tsv, bom, crlf, blanks):
    header, rows = table
    if not crlf:  # Python 3.11's csv writer leaves "a\r" unquoted: "a\r\n" is then a CRLF line end for any reader
        rows = [[*row[:-1], row[-1] + "." if row[-1].endswith("\r") else row[-1]] for row in rows]
    path = folder / ("data.tsv" if tsv else "data.csv")
    _write_table(path, header, rows, bom, crlf, blanks)
    breaks = any("\n" in c for row in rows for c in row)  # a lone \r is text, not a line end
    if tsv and breaks:  # a TSV record is one line: a field with a line break is refused, naming its line
        with pytest.raises(MkdError, match="a TSV record is one line"):
            _read(path)
        return
    got, said = _read(path)
    assert got == [dict(zip(header, row, strict=True)) for row in rows]
    assert bool(said) == breaks, said  # records over several lines are counted in one line, only then


@FAST
@given(table=tables(), tsv=st.booleans(), data=st.data())
def test_a_stray_or_missing_quote_fails_or_keeps_the_row_count_or_says_so(folder, table, tsv, data):
    header, rows = table
    # the file is valid before its quote breaks: a TSV record is one line (one with a break is refused)
    assume(not (tsv and any("\n" in c for row in rows for c in row)))
    path = folder / ("data.tsv" if tsv else "data.csv")
    _write_table(path, header, rows, False, False, [])
    text = path.read_bytes().decode("utf-8")  # bytes: text mode would turn a lone \r into a line end
    body = len(text.split("\n", 1)[0]) + 1  # after the header line
    quotes = [i for i, c in enumerate(text) if c == '"' and i >= body]
    if quotes and data.draw(st.booleans()):
        at = data.draw(st.sampled_from(quotes))
        text = text[:at] + text[at + 1:]
    else:
        at = data.draw(st.integers(body, len(text)))
        text = text[:at] + '"' + text[at:]
    path.write_bytes(text.encode("utf-8"))
    try:
        got, said = _read(path)
    except MkdError as e:
        assert "line" in str(e)
        return
    assert len(got) == len(rows) or said, (text, got)
    assert not tsv or not said


@FAST
@given(rows=st.lists(st.fixed_dictionaries({"text": cells, "n": st.integers() | st.none()}), max_size=6),
       ascii_only=st.booleans(), bom=st.booleans(), crlf=st.booleans(), blank=st.integers(0, 6))
def test_jsonl_reads_back_the_rows_written(folder, rows, ascii_only, bom, crlf, blank):
    path = folder / "data.jsonl"
    lines = [json.dumps(row, ensure_ascii=ascii_only) for row in rows]
    lines.insert(min(blank, len(lines)), "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + ("\r\n" if crlf else "\n").join(lines).encode())
    assert _read(path) == (rows, [])


line_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\t\n\r"), max_size=8)


@FAST
@given(pairs=st.lists(st.tuples(line_texts, line_texts), max_size=6), header=st.booleans(), crlf=st.booleans())
def test_unlabelled_tsv_reads_one_pair_a_line(folder, pairs, header, crlf):
    path = folder / "more.tsv"
    lines = (["a\tb"] if header else []) + [f"{a}\t{b}" for a, b in pairs]
    path.write_text(("\r\n" if crlf else "\n").join(lines), encoding="utf-8", newline="")
    want = [p for p in pairs if p[0].strip() and p[1].strip()]
    if not header and pairs and tuple(c.strip() for c in pairs[0]) == ("a", "b"):
        want = want[1:]  # a first line naming the columns is a header
    assert [e.texts for e in read_unlabelled(PAIR, str(path))] == want


@FAST
@given(texts=st.lists(cells, max_size=6))
def test_unlabelled_csv_keeps_line_breaks_inside_quoted_texts(folder, texts):
    path = folder / "more.csv"
    _write_table(path, ["text", "b"], [[t, "x"] for t in texts], False, False, [])
    spec = PAIR.__class__("one", ("text",), "classification", ("neg", "pos"), ("accuracy",), "accuracy")
    with mock.patch("mkd.tasks.files._say"):
        got = [e.texts[0] for e in read_unlabelled(spec, str(path))]
    assert got == [t for t in texts if t.strip()]


# --------------------------------------------------------------------------- the issue's own file

TOPICS = ("sport", "business", "tech")


def _news(path: Path, opening_quote: bool = True) -> None:
    """300 rows; the title on line 5 opens with an unbalanced quote, line 193 quotes a word."""
    titles = [f"headline number {i} about things" for i in range(300)]
    titles[3] = ('"' if opening_quote else "") + "Crisis deepens at Leeds United"
    titles[191] = 'Umaga ready for "fearsome" Lions'
    sep = "\t" if path.suffix == ".tsv" else ","
    lines = [f"title{sep}topic"] + [f"{t}{sep}{TOPICS[i % 3]}" for i, t in enumerate(titles)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_the_unbalanced_quote_of_the_issue_fails_the_run_naming_line_5(suffix, tmp_path, monkeypatch, capsys):
    _news(tmp_path / f"news{suffix}")
    (tmp_path / "r.yaml").write_text(
        f"name: r\noutput_dir: runs\ntasks:\n  - {{name: news, source: files, train: news{suffix}, "
        "text_fields: [title], label_field: topic, type: classification, labels: [sport, business, tech]}\n",
        encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "run", "-c", "r.yaml")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"news{suffix} line 5: a quoted field opened on line 5 runs to line 193" in err, err
    assert not (tmp_path / "runs").exists(), "nothing may be written"
    _news(tmp_path / f"news{suffix}", opening_quote=False)
    cfg = TaskConfig(name="news", source="files", train=str(tmp_path / f"news{suffix}"), text_fields=["title"],
                     label_field="topic", type="classification", labels=list(TOPICS))
    assert sum(load_task(cfg).sizes().values()) == 300


def test_quoted_line_breaks_in_a_csv_are_counted_in_one_line(tmp_path, capsys):
    path = tmp_path / "ml.csv"
    path.write_text('title,topic\n"two\nlines",sport\nplain,tech\n\n"three\nl\nines",tech\n', encoding="utf-8")
    assert [r["title"] for _, r in _rows(path)] == ["two\nlines", "plain", "three\nl\nines"]
    assert capsys.readouterr().err.strip() == (
        "ml.csv: 3 rows on 7 lines after the header (1 blank): 2 record(s) hold quoted line breaks (lines 2-3, 6-8)")


def test_a_column_named_twice_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("text,text,label\na,b,c\n", encoding="utf-8")
    with pytest.raises(MkdError, match="names column 'text' twice"):
        list(_rows(path))


def test_a_quote_inside_an_unquoted_csv_field_is_kept_and_said(folder):
    path = folder / "titles.csv"
    path.write_text('text,label\nUmaga ready for "fearsome" Lions,sport\n"quoted, fine",world\n', encoding="utf-8")
    got, said = _read(path)
    assert [r["text"] for r in got] == ['Umaga ready for "fearsome" Lions', "quoted, fine"]
    assert len(said) == 1 and "1 row(s) hold a quote inside an unquoted field" in said[0] and "lines 2" in said[0]


def test_inside_read_once_a_task_is_read_once_and_each_load_gets_its_own_lists(tmp_path):
    from mkd.tasks import files, read_once

    _news(tmp_path / "news.tsv", opening_quote=False)
    cfg = TaskConfig(name="news", source="files", train=str(tmp_path / "news.tsv"), text_fields=["title"],
                     label_field="topic", type="classification", labels=list(TOPICS))
    with mock.patch.object(files, "_rows", wraps=files._rows) as reads:
        load_task(cfg), load_task(cfg)
        outside = reads.call_count
        reads.reset_mock()
        with read_once():
            first = load_task(cfg)
            first.split("train").clear()
            second = load_task(cfg)
        assert reads.call_count == outside // 2 > 0  # one load's reads, not two
        assert first.sizes() != second.sizes() and sum(second.sizes().values()) == 300
        load_task(cfg)
        assert reads.call_count == outside  # after it, the files are read again
