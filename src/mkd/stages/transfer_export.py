"""`mkd transfer export`: the examples a teacher must label, as a file to label anywhere (an API model, a
production classifier, a human): task, id, split, kind and the task's text columns. Fill in one column
per label (or a `logits`/`probabilities` list) and give the file back as a `kind: logits` teacher.

The transfer set comes after augmentation (built here when missing or out of date, as `mkd augment`
would); dev and test rows come too unless `transfer_only`, so the teacher's own scores can be measured.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from mkd.config import Recipe
from mkd.data.transfer import KINDS, read_manifest, read_shard
from mkd.errors import MkdError
from mkd.io import atomic_path, write_text

SUFFIXES = (".csv", ".jsonl", ".parquet")


def transfer_rows(recipe: Recipe, tasks: list[str], transfer_only: bool = False) -> list[dict[str, Any]]:
    from mkd.stages.augment import augment
    from mkd.tasks import load_task
    from mkd.tasks.catalog import resolve_spec

    out = augment(recipe)
    rows: list[dict[str, Any]] = []
    for name in tasks:
        spec = resolve_spec(recipe.task(name))
        folder = out / name
        manifest = read_manifest(folder)
        for entry in manifest["shards"]:
            path = folder / entry["examples"]
            kinds = pq.read_table(path, columns=["kind"]).column("kind").to_pylist()
            examples = read_shard(path, manifest["type"], manifest["is_pair"], KINDS)
            rows += [{"task": name, "id": e.id, "split": "transfer", "kind": k,
                      **dict(zip(spec.text_fields, e.texts, strict=True))}
                     for e, k in zip(examples, kinds, strict=True)]
        if transfer_only:
            continue
        data = load_task(recipe.task(name), recipe.seed, recipe.fetch_missing)
        for split in ("dev", "test"):
            rows += [{"task": name, "id": e.id, "split": split, "kind": "original",
                      **dict(zip(spec.text_fields, e.texts, strict=True))} for e in data.splits.get(split, [])]
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """CSV, JSONL or Parquet by the suffix; written under a temporary name, then renamed."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise MkdError(f"cannot write {path.name}: unknown format '{path.suffix}'", f"use one of {', '.join(SUFFIXES)}")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in columns]))
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    elif suffix == ".jsonl":
        write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    else:
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, columns)
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, buf.getvalue())


def export_transfer(recipe: Recipe, out: str | Path, tasks: list[str] | None = None,
                    transfer_only: bool = False) -> dict[str, int]:
    """Write the file; returns the number of rows per task."""
    path = Path(out).expanduser()
    if path.suffix.lower() not in SUFFIXES:
        raise MkdError(f"cannot write {path.name}: unknown format '{path.suffix}'", f"use one of {', '.join(SUFFIXES)}")
    names = tasks or [t.name for t in recipe.tasks]
    for name in names:
        recipe.task(name)  # an unknown task is named before any work
    rows = transfer_rows(recipe, names, transfer_only)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rows(path, rows)
    return {n: sum(r["task"] == n for r in rows) for n in names}
