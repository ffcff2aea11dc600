"""A file of logits (or declared probabilities) from any system as a teacher: CSV, TSV, JSONL or Parquet.

Rows are found by example id (`key: id`, column `id`) or by the example's text(s) (`key: text`, the task's
text_fields columns), so a file made from `mkd transfer export` (or the user's own dump) fits. The values
are either one column per label, matched by name like any teacher's labels, or one list column named
`logits` (or `probabilities`) in the task's label order; a regression task takes one column (e.g. `score`).
An optional `task` column lets one file serve several tasks. Probabilities become log-probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mkd.errors import MkdError
from mkd.tasks.task import Example, TaskSpec
from mkd.teachers.base import FIX_TEACHERS, TEACHERS, Teacher, align_labels, digest, file_sha256

RESERVED = ("id", "task", "kind", "split", "source_id", "label")
FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
TINY = 1e-12


def read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) of every row: Parquet through pyarrow, text formats through the task-file reader."""
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as e:
            raise MkdError(f"logits file {path} is not a readable Parquet file ({str(e)[:80]})",
                           "write it again with pyarrow or pandas") from None
        return [(f"{path.name} row {i + 1}", row) for i, row in enumerate(table.to_pylist())]
    from mkd.tasks.files import _rows

    return list(_rows(path))


def _number(value: Any, where: str, column: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MkdError(f"{where}: '{column}' is {str(value)[:30]!r}, not a number", "write numbers only") from None
    if not np.isfinite(out):
        raise MkdError(f"{where}: '{column}' is {out}", "write finite numbers only")
    return out


def _vector(value: Any, where: str, column: str) -> list[float]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise MkdError(f"{where}: '{column}' is not a list of numbers", 'write it as "[0.3, -1.2]"') from None
    if not isinstance(value, (list, tuple)):
        value = [value]
    return [_number(v, where, column) for v in value]


@TEACHERS.register("logits")
class LogitsFileTeacher(Teacher):
    kind = "logits"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        raw = str(self.ref.path)
        path = Path(raw).expanduser()
        self.path = path if path.is_absolute() else Path.cwd() / path
        if not self.path.is_file():
            raise MkdError(f"logits file {self.path} not found", FIX_TEACHERS)
        if self.path.suffix.lower() not in FORMATS:
            raise MkdError(f"logits file {self.path}: unknown format '{self.path.suffix}'",
                           f"use one of {', '.join(FORMATS)}")
        rows = read_rows(self.path)
        self.tables = {t: self._index(s, rows) for t, s in self.specs.items()}

    def _index(self, spec: TaskSpec, rows: list[tuple[str, dict[str, Any]]]) -> dict[Any, np.ndarray]:
        """{key: values in the task's label order} of the task's rows (logits; probabilities logged)."""
        who = f"logits file {self.path.name}"
        if rows and "task" in rows[0][1]:
            rows = [(w, r) for w, r in rows if str(r.get("task")) == spec.name]
        if not rows:
            raise MkdError(f"{who} has no rows for task {spec.name}", "give its rows (a task column, if any, "
                           "must name it)")
        columns = list(rows[0][1])
        keys = ["id"] if self.ref.key == "id" else list(spec.text_fields)
        absent = [k for k in keys if k not in columns]
        if absent:
            raise MkdError(f"{who} has no column '{absent[0]}' to find rows by {self.ref.key} (columns: "
                           f"{', '.join(columns)})", "add it, or set key: id or key: text in its entry")
        listed = self.ref.values if self.ref.values in columns else None
        values = [c for c in columns if c not in RESERVED and c not in spec.text_fields]
        width = spec.num_outputs
        order = list(range(width)) if listed else align_labels(values, spec, self.ref.label_map, who)
        table: dict[Any, np.ndarray] = {}
        for where, row in rows:
            key = str(row["id"]) if self.ref.key == "id" else tuple("" if row[k] is None else str(row[k])
                                                                     for k in keys)
            vec = _vector(row[listed], where, listed) if listed else [_number(row[c], where, c) for c in values]
            if len(vec) != width:
                raise MkdError(f"{where}: {len(vec)} values for task {spec.name}, which has {width} outputs",
                               "write one value per label, in the task's label order")
            out = np.asarray(vec, dtype=np.float64)[order]
            if self.ref.values == "probabilities":
                out = self._log(out, where, spec)
            if key in table and not np.allclose(table[key], out, atol=1e-6):
                raise MkdError(f"{where}: {self.ref.key} {key!r} appears twice with different values",
                               "keep one row per example")
            table[key] = out.astype(np.float32)
        return table

    def _log(self, p: np.ndarray, where: str, spec: TaskSpec) -> np.ndarray:
        if spec.type == "regression":
            raise MkdError(f"logits file {self.path.name}: task {spec.name} is a regression task, so it has no "
                           "probabilities", "set values: logits (the scores as they are)")
        if p.min() < 0 or p.max() > 1 or abs(p.sum() - 1) > 1e-3:
            raise MkdError(f"{where}: the probabilities ({', '.join(f'{v:g}' for v in p)}) do not sum to 1",
                           "write probabilities, or set values: logits")
        return np.log(np.clip(p, TINY, 1.0))

    def compute_fingerprint(self) -> str:
        return digest([file_sha256(self.path, self.ctx.cache), self.settings_digest()])

    def key(self, example: Example) -> Any:
        return example.id if self.ref.key == "id" else tuple(example.texts)

    def lookup(self) -> bool:
        return True

    def missing(self, task: str, examples: Sequence[Example]) -> list[int]:
        table = self.tables[task]
        return [i for i, e in enumerate(examples) if self.key(e) not in table]

    def logits(self, task: str, examples: Sequence[Example], batch_size: int = 64, device: Any = "cpu") -> np.ndarray:
        gaps = self.missing(task, examples)
        if gaps:
            raise MkdError(f"logits file {self.path.name} has no row for {len(gaps)} of {len(examples)} examples of "
                           f"task {task} (first: {examples[gaps[0]].id})",
                           "add them (mkd transfer export lists every example), then rerun")
        table = self.tables[task]
        width = self.specs[task].num_outputs
        if not examples:
            return np.zeros((0, width), dtype=np.float32)
        return np.stack([table[self.key(e)] for e in examples]).astype(np.float32)
