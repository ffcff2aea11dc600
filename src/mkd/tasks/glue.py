"""GLUE, from a local download (source: glue) or from the Hugging Face hub (source: hub).

Split policy, the same for both sources. GLUE hides its test labels, so nothing can be scored
on the official test set; therefore:
- mkd `test` = the official dev set (MNLI: dev_matched; dev_mismatched becomes the extra split
  `test_mismatched`), so test scores compare with the GLUE dev scores papers report;
- mkd `dev` (model selection, early stopping) = a seeded carve of
  min(round(len(train) * dev_fraction), 5000) examples from the official train set, so the data
  that is scored never steers training; whole groups of the task's group_field (MNLI's premise,
  QQP's first question, ...) go to dev, so dev does not reward memorising train's texts;
- mkd `train` = the rest of the official train set.

Example ids are f"{task}:{split}:{row}", with the mkd split the row was read for and its data-row
index in that file (or hub split); a row carved from train into dev keeps its train id, so ids
do not move when dev_fraction or the seed changes.

Local files are read as GLUE writes them: tab-separated, no quoting (QUOTE_NONE), a header line
except in CoLA train/dev. A row with the wrong number of columns is an error naming the file and
line, except in QQP, whose train set is known to hold a few broken rows; those are skipped.
MNLI rows whose gold label is "-" (no annotator majority) are skipped, as everyone does.
"""

from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkd.config import TaskConfig
from mkd.errors import MkdError
from mkd.tasks.sources import SOURCES, label_index
from mkd.tasks.split import carve, text_group
from mkd.tasks.task import Example, TaskSpec

MAX_DEV = 5000
GLUE_FIX = ("point glue_dir at the folder of the standard GLUE download "
            "(it holds SST-2/train.tsv ...)")
_TRAIN_TEST = (("train", "train.tsv"), ("test", "dev.tsv"))


@dataclass(frozen=True)
class _Layout:
    """Where a GLUE task's files are and which columns hold its texts and label (a name from
    the header, or a position: CoLA has no header; STS-B and MNLI keep the label last)."""

    folder: str
    texts: tuple[str | int, ...]
    label: str | int
    header: bool = True
    width: int = 0  # columns of a header-less file
    files: tuple[tuple[str, str], ...] = _TRAIN_TEST
    lenient: bool = False  # skip malformed rows silently
    skip_labels: tuple[str, ...] = ()


_GLUE: dict[str, _Layout] = {
    "cola": _Layout("CoLA", (3,), 1, header=False, width=4),
    "sst2": _Layout("SST-2", ("sentence",), "label"),
    "mrpc": _Layout("MRPC", ("#1 String", "#2 String"), "Quality"),
    "qqp": _Layout("QQP", ("question1", "question2"), "is_duplicate", lenient=True),
    "stsb": _Layout("STS-B", ("sentence1", "sentence2"), -1),
    "mnli": _Layout(
        "MNLI", ("sentence1", "sentence2"), -1,
        files=(("train", "train.tsv"), ("test", "dev_matched.tsv"),
               ("test_mismatched", "dev_mismatched.tsv")),
        skip_labels=("-",),
    ),
    "qnli": _Layout("QNLI", ("question", "sentence"), "label"),
    "rte": _Layout("RTE", ("sentence1", "sentence2"), "label"),
    "wnli": _Layout("WNLI", ("sentence1", "sentence2"), "label"),
}

# Column names of the same tasks in the hub's `nyu-mll/glue` dataset (label column: "label").
_HUB_COLUMNS: dict[str, tuple[str, ...]] = {
    "cola": ("sentence",), "sst2": ("sentence",),
    "mrpc": ("sentence1", "sentence2"), "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"), "stsb": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"), "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"),
}
_HUB_GLUE = "nyu-mll/glue"


def glue_splits(
    train: list[Example], tests: dict[str, list[Example]], cfg: TaskConfig, seed: int,
    spec: TaskSpec | None = None,
) -> dict[str, list[Example]]:
    """train -> train + a seeded dev carve (by the task's group, e.g. MNLI's premise, when it has
    one); the official dev set(s) are the test split(s)."""
    n_dev = max(1, min(round(len(train) * cfg.dev_fraction), MAX_DEV))
    group = text_group(spec.text_fields, spec.group_field) if spec else None
    rest, dev = carve(train, n_dev, seed, group)
    return {"train": rest, "dev": dev, **tests}


# --------------------------------------------------------------------------- local download


def _glue_root(cfg: TaskConfig) -> Path:
    raw = cfg.glue_dir or os.environ.get("GLUE_DIR")
    if not raw:
        raise MkdError("the glue source needs glue_dir (or the GLUE_DIR environment variable)",
                       GLUE_FIX)
    root = Path(raw).expanduser()
    if not root.is_dir():
        raise MkdError(f"GLUE folder {root} not found", GLUE_FIX)
    return root


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, split on \\n only: GLUE texts hold stray \\r, which the csv module
    would otherwise take for line ends."""
    try:
        with open(path, encoding="utf-8-sig", newline="\n") as f:
            for line in f:
                yield line.rstrip("\n").rstrip("\r").replace("\r", " ")
    except UnicodeDecodeError as e:
        raise MkdError(f"GLUE file {path} is not UTF-8 text",
                       "download it again (the GLUE files are UTF-8)") from e


def _column(name: str | int, header: list[str], path: Path) -> int:
    if isinstance(name, int):
        return name if name >= 0 else len(header) + name
    if name not in header:
        raise MkdError(f"GLUE file {path} has no column '{name}' (columns: {', '.join(header)})",
                       GLUE_FIX)
    return header.index(name)


def _read_glue(path: Path, layout: _Layout, spec: TaskSpec, split: str) -> list[Example]:
    if not path.is_file():
        raise MkdError(f"GLUE file {path} not found", GLUE_FIX)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows = csv.reader(_lines(path), delimiter="\t", quoting=csv.QUOTE_NONE)
    header: list[str] = []
    width = layout.width
    if layout.header:
        header = [h.strip() for h in next(rows, [])]
        width = len(header)
        if width == 0:
            raise MkdError(f"GLUE file {path} is empty", GLUE_FIX)
    text_cols = [_column(c, header or [""] * width, path) for c in layout.texts]
    label_col = _column(layout.label, header or [""] * width, path)
    first = 2 if layout.header else 1  # line number of the first data row
    out: list[Example] = []
    for i, row in enumerate(rows):
        if not row:  # a blank line (e.g. at the end of the file)
            continue
        if len(row) != width:
            if layout.lenient:
                continue
            raise MkdError(f"GLUE file {path} line {i + first} has {len(row)} columns, "
                           f"expected {width}", "restore the file from the GLUE download")
        raw = row[label_col].strip()
        if raw in layout.skip_labels:
            continue
        label = label_index(spec, raw, f"GLUE file {path} line {i + first}")
        texts = tuple(row[c].strip() for c in text_cols)
        out.append(Example(f"{spec.name}:{split}:{i}", texts, label))
    return out


@SOURCES.register("glue")
def load_glue(
    spec: TaskSpec, cfg: TaskConfig, seed: int, fetch_missing: bool
) -> dict[str, list[Example]]:
    """A GLUE task from the standard download layout (see the module docstring for the splits)."""
    layout = _GLUE.get(spec.name)
    if layout is None:
        raise MkdError(f"task {spec.name} is not a GLUE task", f"GLUE tasks: {', '.join(_GLUE)}")
    folder = _glue_root(cfg) / layout.folder
    parts = {split: _read_glue(folder / name, layout, spec, split) for split, name in layout.files}
    train = parts.pop("train")
    return glue_splits(train, parts, cfg, seed, spec)


# --------------------------------------------------------------------------- Hugging Face hub


def _hub_name(spec: TaskSpec, cfg: TaskConfig) -> tuple[str, str | None]:
    """(dataset path, config): hub_name as "path:config", "owner/name/config" or "path";
    by default the GLUE dataset with the task's name as config."""
    name = cfg.hub_name
    if not name:
        if spec.name not in _HUB_COLUMNS:
            raise MkdError(f"task {spec.name} has no default hub dataset",
                           "set hub_name: to a dataset path (path:config for a config)")
        return _HUB_GLUE, spec.name
    if ":" in name:
        path, _, config = name.rpartition(":")
        return path, config or None
    parts = name.split("/")
    if len(parts) == 3 and all(parts) and not name.startswith((".", "~")):
        return "/".join(parts[:2]), parts[2]
    return name, None


def _load_hub(path: str, config: str | None) -> Mapping[str, Any]:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise MkdError("the hub source needs the 'datasets' package",
                       "pip install 'mkd[hub]'") from None
    try:
        return datasets.load_dataset(path, config)  # type: ignore[no-any-return]
    except Exception as e:  # any failure (network, name, config) is the user's to fix
        what = f"{path}" + (f" ({config})" if config else "")
        detail = (str(e).strip().splitlines() or [""])[0][:200]
        raise MkdError(f"could not load {what} from the Hugging Face hub: "
                       f"{type(e).__name__}: {detail}",
                       "check hub_name (path or path:config) and the network") from None


def _columns(rows: Any) -> list[str]:
    names = getattr(rows, "column_names", None)
    if names is not None:
        return list(names)
    for row in rows:
        return list(row)
    return []


def _hub_rows(
    rows: Iterable[Mapping[str, Any]], spec: TaskSpec, cols: tuple[str, ...], label_col: str,
    split: str, where: str,
) -> list[Example]:
    """Examples of one hub split; rows labelled -1 or None (hidden or no gold) are skipped."""
    available = _columns(rows)
    for c in (*cols, label_col):
        if available and c not in available:
            raise MkdError(f"{where} has no column '{c}' (columns: {', '.join(available)})",
                           "set text_fields:/label_field: to its columns")
    out: list[Example] = []
    for i, row in enumerate(rows):
        raw = row[label_col]
        if raw is None or (spec.type == "classification" and raw == -1):
            continue
        texts = tuple("" if row[c] is None else str(row[c]) for c in cols)
        out.append(Example(f"{spec.name}:{split}:{i}", texts,
                           label_index(spec, raw, f"{where} row {i}")))
    return out


def _labelled(rows: Iterable[Mapping[str, Any]], label_col: str) -> bool:
    """Whether a split has gold labels: hidden test labels are all -1 (or None); one row tells."""
    for row in rows:
        return row.get(label_col) not in (None, -1)
    return False


@SOURCES.register("hub")
def load_hub(
    spec: TaskSpec, cfg: TaskConfig, seed: int, fetch_missing: bool
) -> dict[str, list[Example]]:
    """A task from the Hugging Face hub. GLUE (no labelled test split): the glue source's split
    policy. A dataset with a labelled `test` split keeps its own train/validation/test."""
    path, config = _hub_name(spec, cfg)
    ds = _load_hub(path, config)
    cols = tuple(cfg.text_fields or _HUB_COLUMNS.get(spec.name, spec.text_fields))
    label_col = cfg.label_field or "label"
    where = f"hub dataset {path}" + (f" ({config})" if config else "")

    def read(hub_split: str, split: str) -> list[Example]:
        return _hub_rows(ds[hub_split], spec, cols, label_col, split, f"{where} split {hub_split}")

    names = list(ds.keys())
    if "train" not in names:
        raise MkdError(f"{where} has no train split (splits: {', '.join(names)})",
                       "choose a dataset with a train split")
    train = read("train", "train")
    test = read("test", "test") if "test" in names and _labelled(ds["test"], label_col) else []
    if test:  # labelled official test: use the official splits
        if "validation" in names:
            return {"train": train, "dev": read("validation", "dev"), "test": test}
        return glue_splits(train, {"test": test}, cfg, seed, spec)
    tests: dict[str, list[Example]] = {}
    for hub_split, split in (("validation", "test"), ("validation_matched", "test"),
                             ("validation_mismatched", "test_mismatched")):
        if hub_split in names:
            tests[split] = read(hub_split, split)
    if "test" not in tests:
        raise MkdError(f"{where} has no labelled test or validation split (splits: "
                       f"{', '.join(names)})", "choose a dataset with labelled evaluation data")
    return glue_splits(train, tests, cfg, seed, spec)
