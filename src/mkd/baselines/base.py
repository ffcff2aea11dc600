"""What every baseline shares: the registry, the dev-chosen grid search, the saved folder, the predictor.

A baseline is what a practitioner would train instead of distilling: a model fitted on the task's gold
train split only, its settings chosen on dev from a small grid, scored on every test split. It gets
exactly the run's TaskData (the splits the teacher and students see) and nothing of the teacher.

A trained baseline is one folder per (baseline, task) holding `baseline.json` (the grid tried, the
chosen setting, dev and test metrics, a key of the data and settings) and the model's own files.
A folder whose key matches is kept as it is; another is retrained and swapped in whole (atomic_dir).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json, write_json
from mkd.registry import Registry
from mkd.tasks.metrics import score
from mkd.tasks.task import Example, TaskData, TaskSpec

META = "baseline.json"
EXTRA = "baselines"
INSTALL = f"pip install 'mkd[{EXTRA}]'"
Say = Callable[[str], None]
Setting = dict[str, Any]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Fitted:
    """A model fitted in memory: predictions for raw examples, and how to save its files."""

    def predict(self, examples: Sequence[Example]) -> list[int] | list[float]:
        raise NotImplementedError

    def save(self, folder: Path) -> None:
        raise NotImplementedError


class Baseline:
    """One kind of baseline. Subclasses set the class attributes and implement fit and load."""

    name: ClassVar[str]
    title: ClassVar[str]  # how a table names it
    modules: ClassVar[tuple[str, ...]]  # what it imports from the `baselines` extra
    types: ClassVar[tuple[str, ...]] = ("classification",)  # the task types it can fit
    grid: ClassVar[dict[str, list[Any]]]  # default grid: every combination is tried

    def prepare(self, options: Mapping[str, Any], say: Say) -> Setting:
        """Settings fixed for every task and grid point (e.g. vectors made once); from `options`."""
        if options:
            raise MkdError(f"baseline {self.name} takes no options (got {', '.join(options)})",
                           "remove them from the baselines' options")
        return {}

    def fit(self, data: TaskData, setting: Setting, seed: int) -> Fitted:
        raise NotImplementedError

    def load(self, folder: Path, meta: dict[str, Any]) -> Callable[[Sequence[Example]], list]:
        raise NotImplementedError


BASELINES: Registry[type[Baseline]] = Registry("baseline")


def register(cls: type[Baseline]) -> type[Baseline]:
    return BASELINES.register(cls.name)(cls)


def missing_extra(name: str) -> str | None:
    """One line saying why baseline `name` cannot run here (a module of its extra is missing), or None."""
    cls = BASELINES.get(name)
    for module in cls.modules:
        try:
            import_module(module)
        except ImportError as e:
            return f"baseline {name} needs the Python module `{module}` ({e.msg}); install it with {INSTALL}"
    return None


def settings(grid: Mapping[str, Sequence[Any]]) -> list[Setting]:
    """Every combination of a grid, in order."""
    out: list[Setting] = [{}]
    for key, values in grid.items():
        out = [{**s, key: v} for s in out for v in values]
    return out


def _metrics(spec: TaskSpec, predict: Callable[[Sequence[Example]], list], examples: Sequence[Example],
             batch: int = 512) -> dict[str, float]:
    """Every metric of the task on these examples (the task's own metrics, mkd's own scoring)."""
    preds: list = []
    for i in range(0, len(examples), batch):
        preds.extend(predict(examples[i : i + batch]))
    out = np.asarray(preds, dtype=np.float64)
    if spec.type == "classification":  # score() takes logits: one-hot the predicted classes
        out = np.eye(spec.num_outputs)[out.astype(np.int64)]
    return score(spec.type, spec.metrics, out, [e.label for e in examples])


def data_key(data: TaskData) -> str:
    """A digest of the task's declaration and every example of every split (ids, texts, labels)."""
    h = hashlib.sha256(json.dumps([data.spec.name, data.spec.type, list(data.spec.labels),
                                   list(data.spec.metrics)]).encode())
    for split in sorted(data.splits):
        h.update(split.encode())
        for e in data.splits[split]:
            h.update(json.dumps([e.id, list(e.texts), e.label]).encode())
    return h.hexdigest()


def _key(name: str, data: TaskData, grid: Mapping[str, Sequence[Any]], fixed: Setting, seed: int) -> str:
    parts = {"baseline": name, "data": data_key(data), "grid": grid, "fixed": fixed, "seed": seed}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _primary(spec: TaskSpec) -> str:
    return spec.primary if spec.primary in spec.metrics else spec.metrics[0]


def _test_splits(data: TaskData) -> list[str]:
    return [s for s in data.splits if s.startswith("test")]


@dataclass
class _Best:
    dev: float = float("-inf")
    setting: Setting = field(default_factory=dict)
    fitted: Fitted | None = None


def _search(base: Baseline, data: TaskData, grid: Mapping[str, Sequence[Any]], fixed: Setting,
            seed: int) -> tuple[_Best, list[dict[str, Any]]]:
    """Fit every grid setting; keep the best on the task's primary dev metric (first one on a tie)."""
    spec, primary, tried, best = data.spec, _primary(data.spec), [], _Best()
    for setting in settings(grid):
        t0 = time.perf_counter()
        try:
            fitted = base.fit(data, {**setting, **fixed}, seed)
        except (RuntimeError, ValueError) as e:  # fastText diverges ("Encountered NaN") at a too-high lr
            tried.append({"setting": setting, "error": " ".join(str(e).split())[:200]})
            continue
        dev = _metrics(spec, fitted.predict, data.split("dev"))
        tried.append({"setting": setting, "dev": dev[primary], "seconds": round(time.perf_counter() - t0, 2)})
        if dev[primary] > best.dev:
            best = _Best(dev[primary], setting, fitted)
    if best.fitted is None:
        raise MkdError(f"baseline {base.name} on task {spec.name}: every grid setting failed ({tried[-1]['error']})",
                       "widen its grid (e.g. a lower learning rate) or drop the baseline")
    return best, tried


def train_baseline(name: str, data: TaskData, folder: str | Path, seed: int = 13,
                   grid: Mapping[str, Sequence[Any]] | None = None, fixed: Setting | None = None) -> dict[str, Any]:
    """Train baseline `name` on one task into `folder` (its settings chosen on dev), score it on every
    test split, and return its record (also `folder`/baseline.json). A folder trained on the same data,
    grid, settings and seed is kept, not retrained. `fixed` comes from the baseline's `prepare`."""
    base, folder = BASELINES.get(name)(), Path(folder)
    grid = dict(base.grid if grid is None else grid)
    fixed = dict(fixed or {})
    key = _key(name, data, grid, fixed, seed)
    try:
        old = read_json(folder / META)
        if old.get("key") == key:
            return old
    except (OSError, ValueError):
        pass
    started = time.perf_counter()
    best, tried = _search(base, data, grid, fixed, seed)
    assert best.fitted is not None
    record = {
        "baseline": name, "title": base.title, "task": data.spec.name, "type": data.spec.type,
        "labels": list(data.spec.labels), "primary": _primary(data.spec), "chosen": best.setting,
        "fixed": {k: str(v) for k, v in fixed.items()},
        "dev": _metrics(data.spec, best.fitted.predict, data.split("dev")),
        "test": {s: _metrics(data.spec, best.fitted.predict, data.split(s)) for s in _test_splits(data)},
        "grid": tried, "train_seconds": round(time.perf_counter() - started, 2), "sizes": data.sizes(),
        "seed": seed, "key": key,
    }
    with atomic_dir(folder) as build:
        best.fitted.save(build)
        write_json(build / META, record)
    return record


@dataclass
class Predictor:
    """A saved baseline, ready to serve: `predictor(examples)` gives the class index (or the score) of
    each raw example, tokenization included, like an mkd runner in the bench."""

    name: str
    task: str
    meta: dict[str, Any]
    predict: Callable[[Sequence[Example]], list]

    def __call__(self, examples: Sequence[Example]) -> list:
        return self.predict(examples)


def load_baseline(folder: str | Path) -> Predictor:
    """The predictor of a trained baseline folder (one written by train_baseline)."""
    folder = Path(folder)
    try:
        meta = read_json(folder / META)
    except (OSError, ValueError):
        raise MkdError(f"{folder} is not a trained baseline (no readable {META})",
                       "train it with mkd.baselines.train_baselines") from None
    name = meta.get("baseline", "?")
    if why := missing_extra(name):
        raise MkdError(why)
    return Predictor(name, meta.get("task", "?"), meta, BASELINES.get(name)().load(folder, meta))


def _fits(base: Baseline, data: TaskData) -> str | None:
    if data.spec.type not in base.types:
        return f"{base.title} fits {' or '.join(base.types)} tasks, {data.spec.name} is {data.spec.type}"
    return None


def train_baselines(names: Sequence[str], tasks: Mapping[str, TaskData], out_dir: str | Path, seed: int = 13,
                    grids: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
                    options: Mapping[str, Mapping[str, Any]] | None = None, say: Say = _stderr,
                    ) -> dict[str, dict[str, dict[str, Any]]]:
    """Train each named baseline on each task into `out_dir`/<baseline>/<task>/.

    Returns {baseline: {task: record}}, a record as train_baseline writes it plus "folder"; a baseline
    whose extra is not installed, or a task it cannot fit, gets {"skipped": one line} (and `say` prints
    that line) instead of failing the run. Unknown names fail first, before anything trains."""
    classes = {n: BASELINES.get(n) for n in names}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, cls in classes.items():
        if why := missing_extra(name):
            say(f"skipped: {why}")
            out[name] = {t: {"skipped": why} for t in tasks}
            continue
        base, fixed, out[name] = cls(), None, {}
        for task, data in tasks.items():
            if why := _fits(base, data):
                out[name][task] = {"skipped": why}
                continue
            if fixed is None:  # once per baseline, and only when some task needs it
                fixed = base.prepare((options or {}).get(name, {}), say)
            folder = Path(out_dir) / name / task
            say(f"baseline {name}: {task}")
            record = train_baseline(name, data, folder, seed, (grids or {}).get(name), fixed)
            out[name][task] = {**record, "folder": str(folder)}
    return out


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The libraries offline and silent while they fit or distil: their progress bars and log lines
    (model2vec's epochs, dtype notes) go to stderr, which is held here and dropped; errors still raise."""
    offline = os.environ.get("HF_HUB_OFFLINE")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        if offline is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
