"""The transfer set on disk: examples and teacher logits in Parquet shards, joined by example id.

Per task, `<run>/transfer/<task>/` holds `examples-00000.parquet`, ... (columns id, source_id,
text_a, text_b, label, kind), written one shard at a time so memory does not grow with the set;
`manifest.json`, written last, lists the shards and counts and carries the augmentation
fingerprint. `mkd label` writes `logits-00000.parquet` beside each shard (columns id, logits), the
label fingerprint in its Parquet metadata, so a finished shard is recognised and an interrupted
labelling resumes; the manifest's `label_fingerprint`, set once every shard is done, marks the task
labelled (and is what later stages fingerprint). Logits are always joined to examples by
id, never by position (the error Tang re-implementations make when data is shuffled).

Ids: originals keep their task id; augmented copies are f"{source_id}#aug{k}"; users' unlabelled
text is f"{task}:unlabelled:{file stem}:{line}".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from mkd.data.evaluate import predict
from mkd.errors import MkdError
from mkd.io import atomic_path, read_json, write_json
from mkd.precision import autocast
from mkd.tasks.task import Example, TaskSpec

KINDS = ("original", "augmented", "unlabelled")
MANIFEST = "manifest.json"
FINGERPRINT_KEY = b"mkd_label_fingerprint"
SCHEMA = pa.schema([("id", pa.string()), ("source_id", pa.string()), ("text_a", pa.string()),
                    ("text_b", pa.string()), ("label", pa.float64()), ("kind", pa.string())])


def examples_name(index: int) -> str:
    return f"examples-{index:05d}.parquet"


def logits_name(index: int) -> str:
    return f"logits-{index:05d}.parquet"


class ShardWriter:
    """Buffers at most `shard_size` rows, then writes them as one shard (temporary name + rename)."""

    def __init__(self, folder: Path, shard_size: int) -> None:
        self.folder = Path(folder)
        self.shard_size = shard_size
        self.shards: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self._rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}

    def add(self, example: Example, kind: str, source_id: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {KINDS}")
        texts = example.texts
        row = (example.id, source_id, texts[0], texts[1] if len(texts) > 1 else None,
               None if example.label is None else float(example.label), kind)
        for name, value in zip(SCHEMA.names, row, strict=True):
            self._rows[name].append(value)
        self.counts[kind] += 1
        if len(self._rows["id"]) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        n = len(self._rows["id"])
        if not n:
            return
        name = examples_name(len(self.shards))
        table = pa.Table.from_pydict(self._rows, schema=SCHEMA)
        with atomic_path(self.folder / name) as tmp:
            pq.write_table(table, tmp)
        self.shards.append({"examples": name, "rows": n})
        self._rows = {k: [] for k in SCHEMA.names}

    def close(self) -> list[dict[str, Any]]:
        self.flush()
        return self.shards


def write_manifest(folder: Path, spec: TaskSpec, fingerprint: str, writer: ShardWriter,
                   **extra: Any) -> dict[str, Any]:
    """Written last: a task folder without it is unfinished."""
    shards = writer.close()
    doc = {"task": spec.name, "type": spec.type, "labels": list(spec.labels), "is_pair": spec.is_pair,
           "fingerprint": fingerprint, "counts": {k: writer.counts.get(k, 0) for k in KINDS},
           "total": sum(s["rows"] for s in shards), "shards": shards, **extra}
    write_json(Path(folder) / MANIFEST, doc)
    return doc


def read_manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise MkdError(f"no transfer set in {folder}", "run mkd augment first")
    return read_json(path)


def read_shard(path: Path, task_type: str, is_pair: bool, kinds: Sequence[str] = KINDS) -> list[Example]:
    """The examples of one shard (of the given kinds); labels back to class indices for classification."""
    cols = pq.read_table(path, columns=["id", "text_a", "text_b", "label", "kind"]).to_pydict()
    cast: Callable[[float], int | float] = int if task_type == "classification" else float
    keep = set(kinds)
    return [Example(i, (a, b) if is_pair else (a,), None if y is None else cast(y))
            for i, a, b, y, k in zip(cols["id"], cols["text_a"], cols["text_b"], cols["label"], cols["kind"],
                                     strict=True) if k in keep]


def write_logits(path: Path, ids: Sequence[str], logits: np.ndarray, fingerprint: str) -> None:
    """One logits shard (id, list<float32>), its label fingerprint in the Parquet metadata."""
    values = np.ascontiguousarray(logits, dtype=np.float32)
    values = values[:, None] if values.ndim == 1 else values
    offsets = np.arange(len(ids) + 1, dtype=np.int32) * values.shape[1]
    column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.reshape(-1)))
    table = pa.table({"id": pa.array(list(ids), pa.string()), "logits": column})
    table = table.replace_schema_metadata({FINGERPRINT_KEY: fingerprint.encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def shard_fingerprint(path: Path) -> str | None:
    """The label fingerprint a finished logits shard was written with (None: missing or damaged)."""
    if not path.is_file():
        return None
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    value = meta.get(FINGERPRINT_KEY)
    return value.decode() if value else None


def labels_fresh(folder: Path, fingerprint: str) -> bool:
    """The task is labelled with `fingerprint`: its manifest says so and every logits shard is there
    (a deleted or damaged shard is labelled again)."""
    try:
        manifest = read_manifest(folder)
    except (MkdError, ValueError, OSError):
        return False
    return manifest.get("label_fingerprint") == fingerprint and all(
        shard_fingerprint(Path(folder) / logits_name(i)) == fingerprint for i in range(len(manifest["shards"])))


def teacher_logits(teacher: Any, task: str, examples: Sequence[Example], batch_size: int,
                   device: torch.device | str, precision: str = "fp32") -> np.ndarray:
    """Logits of a teacher adaptor (mkd.teachers: its own `logits`, under autocast at `precision`) or of
    a model (encode, then forward at `precision`)."""
    if not isinstance(teacher, torch.nn.Module) and hasattr(teacher, "logits"):
        with autocast(precision, device):
            return np.asarray(teacher.logits(task, examples, batch_size, device), dtype=np.float32)
    return predict(teacher, task, teacher.encode(teacher.specs[task], examples), batch_size, device, precision)


def label_task(model: Any, task: str, folder: Path, fingerprint: str, batch_size: int = 64,
               device: torch.device | str = "cpu", force: bool = False,
               on_shard: Callable[[str, int], None] | None = None, rank: int = 0, world: int = 1,
               barrier: Callable[[], None] | None = None, precision: str = "fp32",
               record: dict[str, Any] | None = None) -> dict[str, int]:
    """Teacher logits for every shard of a task; shards already labelled with `fingerprint` are kept.

    With several processes, process `rank` labels shards i with i % world == rank, every process
    calls this, and `barrier` waits for all of them before the main one (rank 0) checks every shard
    and marks the task labelled in the manifest. A shard's logits do not depend on which process
    computed them. `precision`: the teacher's arithmetic (mkd.precision); `record`: extra manifest
    entries (the labelling precision and its fidelity figures)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    spec = model.specs[task]
    if spec.is_pair != manifest["is_pair"] or (spec.type == "classification" and
                                               list(spec.labels) != manifest["labels"]):
        raise MkdError(f"the teacher's head for task {task} does not fit its transfer set "
                       f"(labels {list(spec.labels)} vs {manifest['labels']})",
                       "use a teacher trained on this task, or rerun mkd augment")
    if manifest.pop("label_fingerprint", fingerprint) != fingerprint and rank == 0:
        write_json(folder / MANIFEST, manifest)  # no longer fully labelled until every shard is redone
    done = kept = 0
    for i, entry in enumerate(manifest["shards"]):
        if i % world != rank:
            continue
        out = folder / logits_name(i)
        if not force and shard_fingerprint(out) == fingerprint:
            kept += 1
            continue
        examples = read_shard(folder / entry["examples"], manifest["type"], manifest["is_pair"])
        logits = teacher_logits(model, task, examples, batch_size, device, precision)
        write_logits(out, [e.id for e in examples], logits, fingerprint)
        done += 1
        if on_shard is not None:
            on_shard(task, i)
    if barrier is not None:
        barrier()
    if rank == 0:
        unfinished = [logits_name(i) for i in range(len(manifest["shards"]))
                      if shard_fingerprint(folder / logits_name(i)) != fingerprint]
        if unfinished:
            raise MkdError(f"task {task}: {len(unfinished)} logits shards were not written (first: {unfinished[0]})",
                           "rerun mkd label")
        write_json(folder / MANIFEST, {**manifest, **(record or {}), "label_fingerprint": fingerprint})
    return {"labelled": done, "kept": kept, "rows": manifest["total"]}


def load_transfer(folder: Path, kinds: Sequence[str] = KINDS) -> tuple[list[Example], np.ndarray]:
    """A task's transfer set and its teacher logits, aligned by joining on the example id."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    task, labelled = manifest["task"], manifest.get("label_fingerprint")
    if not labelled:
        raise MkdError(f"the transfer set of task {task} is not (fully) labelled", "run mkd label")
    examples: list[Example] = []
    tables = []
    for i, entry in enumerate(manifest["shards"]):
        path = folder / logits_name(i)
        if shard_fingerprint(path) != labelled:
            what = "is missing" if not path.is_file() else "is from another labelling"
            raise MkdError(f"the transfer set of task {task} is not fully labelled ({path.name} {what})",
                           "run mkd label")
        examples += read_shard(folder / entry["examples"], manifest["type"], manifest["is_pair"], kinds)
        tables.append(pq.read_table(path))
    if not tables:
        return examples, np.zeros((0, 1), dtype=np.float32)
    logits = pa.concat_tables(tables)
    where = pc.index_in(pa.array([e.id for e in examples], pa.string()), value_set=logits["id"])
    if where.null_count:
        missing = examples[int(np.flatnonzero(where.is_null().to_numpy(zero_copy_only=False))[0])].id
        raise MkdError(f"example {missing} of task {task} has no teacher logits", "run mkd label")
    column = logits["logits"].combine_chunks()
    width = len(column[0]) if len(column) else 1
    table = column.flatten().to_numpy().astype(np.float32).reshape(len(column), width)
    return examples, table[where.to_numpy()]


def read_labelled(transfer: Path, task: str) -> tuple[list[Example], np.ndarray]:
    """`load_transfer` of `<run>/transfer/<task>`."""
    return load_transfer(Path(transfer) / task)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, streamed; a clear error for bad encodings."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for n, line in enumerate(f, 1):
                yield n, line.rstrip("\r\n")
    except UnicodeDecodeError:
        raise MkdError(f"unlabelled file {path} is not UTF-8 text", "re-encode it as UTF-8") from None


def read_unlabelled(spec: TaskSpec, raw_path: str, columns: tuple[str, ...] | None = None) -> Iterator[Example]:
    """A user's unlabelled texts: .txt (one text a line), .tsv (one column per text field, an optional
    header naming them), or .csv/.jsonl/.json with the task's text fields (or `columns`) as columns."""
    from mkd.tasks.files import _resolve, _rows

    path = _resolve(raw_path)
    if not path.is_file():
        raise MkdError(f"unlabelled file {path} not found", "check the path under the task's unlabelled:")
    prefix = f"{spec.name}:unlabelled:{path.stem}"
    fields = tuple(columns or spec.text_fields)
    if len(fields) != len(spec.text_fields):
        raise MkdError(f"unlabelled file {path}: {len(fields)} text column(s) named, task {spec.name} reads "
                       f"{len(spec.text_fields)}", "name as many columns under text_fields: as the task has")
    width = len(fields)
    suffix = path.suffix.lower()
    if suffix == ".txt" and spec.join is not None:  # a joined task: each line is already one text
        width = 1
    if suffix in (".txt", ".tsv"):
        if suffix == ".txt" and width != 1:
            raise MkdError(f"unlabelled file {path}: task {spec.name} takes text pairs",
                           "give a .tsv file with two tab-separated columns")
        for n, line in _lines(path):
            if not line.strip():
                continue
            cols = line.split("\t") if suffix == ".tsv" else [line]
            if n == 1 and tuple(c.strip() for c in cols) == fields:
                continue  # header row
            if len(cols) != width:
                raise MkdError(f"unlabelled file {path} line {n} has {len(cols)} columns, expected {width}",
                               f"write {' <tab> '.join(fields)} on each line")
            if all(c.strip() for c in cols):
                yield Example(f"{prefix}:{n}", spec.texts_of(tuple(cols)), None)
        return
    for where, row in _rows(path):
        missing = [c for c in fields if c not in row]
        if missing:
            raise MkdError(f"{where}: no column '{missing[0]}' (columns: {', '.join(map(str, row))})",
                           f"name the text column(s) of this file: unlabelled: [{{path: {raw_path}, "
                           f"text_fields: [...]}}]")
        texts = tuple("" if row[c] is None else str(row[c]) for c in fields)
        if all(t.strip() for t in texts):  # a blank text carries nothing to learn
            yield Example(f"{prefix}:{where.rsplit(' ', 1)[-1]}", spec.texts_of(texts), None)
