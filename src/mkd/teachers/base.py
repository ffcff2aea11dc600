"""The teacher contract: whatever a teacher is (an mkd folder, a Hugging Face classifier, a logits file, an
ensemble), the stages only ask it for "logits for these examples", in the task's label order.

An adaptor is built from a recipe entry (`TeacherSpec`) and the task specs it serves. Building it is
cheap and checks what can be checked without the weights (paths, label names); `fingerprint()` names
its outputs (weights, files and settings hashed), so a changed teacher relabels; `load()` does the heavy
work once, just before labelling.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mkd.config import TeacherSpec
from mkd.errors import MkdError
from mkd.io import read_json, write_json
from mkd.registry import Registry
from mkd.tasks.task import Example, TaskSpec

TEACHERS: Registry[type[Teacher]] = Registry("teacher kind")
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
GENERIC_LABEL = re.compile(r"^label_?\d+$")
FIX_TEACHERS = "fix its entry under transfer.teachers in the recipe"


@dataclass
class Context:
    """Where a teacher is used: the hash cache, asset fetching, and whether it is the run's own teacher
    (which changes what an error tells the user to do)."""

    cache: Path | None = None
    fetch_missing: bool = False
    internal: bool = False


class Teacher:
    """One teacher serving one or more tasks; subclasses register under their `kind`."""

    kind: ClassVar[str]

    def __init__(self, ref: TeacherSpec, specs: dict[str, TaskSpec], ctx: Context) -> None:
        self.ref, self.specs, self.ctx = ref, dict(specs), ctx
        self._fingerprint: str | None = None

    @property
    def source(self) -> str:
        return str(self.ref.path)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source}

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.compute_fingerprint()
        return self._fingerprint

    def compute_fingerprint(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def settings_digest(self) -> str:
        """The recipe settings that change its logits (so changing them relabels)."""
        return digest(self.ref.model_dump(mode="json", exclude={"members"}))

    def load(self, device: torch.device | str = "cpu") -> Teacher:
        return self

    def unload(self) -> None:
        """Free what `load` took."""

    def lookup(self) -> bool:
        """Whether it looks logits up (a file) and so may miss examples: checked before anything is written."""
        return False

    def missing(self, task: str, examples: Sequence[Example]) -> list[int]:
        """Positions of the examples this teacher cannot score (only logits files miss any)."""
        return []

    def logits(self, task: str, examples: Sequence[Example], batch_size: int = 64,
               device: torch.device | str = "cpu") -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def network(self) -> torch.nn.Module | None:
        """The loaded model(s), for parameter counts and speed; None when there is no model (a file)."""
        return None

    def parameters(self) -> dict[str, int] | None:
        net = self.network()
        if net is None:
            return None
        total = sum(p.numel() for p in net.parameters())
        emb = sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Embedding))
        return {"total": total, "without_embeddings": total - emb}

    def timed(self) -> bool:
        """Whether its speed means anything (a model runs; a file lookup is not inference)."""
        return self.network() is not None


def build(ref: TeacherSpec, specs: dict[str, TaskSpec], ctx: Context) -> Teacher:
    """The adaptor of a recipe entry (a plain string is an mkd folder); the kinds register themselves
    when mkd.teachers (the package, imported before any of its modules) imports them."""
    return TEACHERS.get(ref.kind)(ref, specs, ctx)


def as_spec(ref: TeacherSpec | str) -> TeacherSpec:
    return TeacherSpec(kind="mkd", path=ref) if isinstance(ref, str) else ref


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path, cache: Path | None = None) -> str:
    """sha256 of a file; with `cache`, reused while the file's size and mtime are unchanged."""
    stat = path.stat()
    key, sig = str(path.resolve()), [stat.st_size, stat.st_mtime_ns]
    known: dict = {}
    if cache is not None and cache.is_file():
        try:
            known = read_json(cache)
        except (OSError, ValueError):
            known = {}
        if known.get(key, {}).get("sig") == sig:
            return known[key]["sha256"]
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    if cache is not None:
        known[key] = {"sig": sig, "sha256": sha.hexdigest()}
        write_json(cache, known)
    return sha.hexdigest()


def normalise(name: object) -> str:
    """Label names compare case- and whitespace-insensitively ("Entailment " == "entailment")."""
    return " ".join(str(name).split()).casefold()


def align_labels(names: Sequence[str], spec: TaskSpec, label_map: dict[str, str] | None, who: str) -> list[int]:
    """`order` such that teacher_outputs[:, order] is in the task's label order, matching BY NAME.

    Generic names (LABEL_0, ...) carry no meaning, so they need an explicit `label_map`; a mismatch names
    both sides. A regression task takes a teacher with exactly one output."""
    names = [str(n) for n in names]
    if spec.type == "regression":
        if len(names) != 1:
            raise MkdError(f"{who} has {len(names)} outputs ({', '.join(names)}) but task {spec.name} is a "
                           "regression task", "use a teacher with one output (num_labels: 1) for it")
        return [0]
    if label_map:
        known = {normalise(k): v for k, v in label_map.items()}
        stray = [k for k in known if k not in {normalise(n) for n in names}]
        if stray:
            raise MkdError(f"{who}: label_map names '{stray[0]}', which is not one of its labels "
                           f"({', '.join(names)})", FIX_TEACHERS)
        names = [known.get(normalise(n), n) for n in names]
    elif all(GENERIC_LABEL.match(normalise(n)) for n in names) and not all(
            GENERIC_LABEL.match(normalise(t)) for t in spec.labels):
        pairs = ", ".join(f"{n}: <task label>" for n in names)
        raise MkdError(f"{who} has generic labels ({', '.join(names)}), which cannot be matched by name to task "
                       f"{spec.name}'s labels ({', '.join(spec.labels)})", f"add label_map: {{{pairs}}} to its entry")
    position = {normalise(n): i for i, n in enumerate(names)}
    wanted = [normalise(t) for t in spec.labels]
    if len(position) != len(names) or sorted(position) != sorted(wanted):
        raise MkdError(f"{who} labels ({', '.join(names)}) do not match task {spec.name}'s labels "
                       f"({', '.join(spec.labels)})", "add a label_map (teacher label -> task label) to its entry "
                       "under transfer.teachers, or use a teacher trained on these labels")
    return [position[w] for w in wanted]


def reorder(values: np.ndarray, order: list[int]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    return values if order == list(range(values.shape[1])) else np.ascontiguousarray(values[:, order])
