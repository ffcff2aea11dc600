"""The study's peers are mkd's baselines (mkd.baselines): this module only adapts them to the study.

Each peer is trained by `mkd.baselines.train_baseline` on exactly the train/dev/test examples the mkd
rows see (read with `mkd.tasks.load_task` from the row's own recipe), its settings chosen on dev from
a grid that is the study scale's (PeerGrid; the product's own grids by default), its test score
reported; `load_peer` is the product's predictor (raw examples in, class indices out, tokenization
included). Both need the `baselines` extra (`pip install -e .[baselines]`; `.[study]` includes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkd.baselines import BASELINES, load_baseline, missing_extra, train_baseline
from mkd.baselines.base import settings
from mkd.baselines.fasttext_baseline import fasttext_line
from mkd.baselines.model2vec_baseline import distill_vectors
from mkd.tasks.task import Example, TaskData

__all__ = ["NAMES", "PEERS", "PeerGrid", "fasttext_line", "load_peer", "missing_wheel", "model2vec_vectors",
           "train_peer"]

Predict = Callable[[Sequence[Example]], list]
PEERS: dict[str, Any] = {n: BASELINES.get(n) for n in ("fasttext", "model2vec")}
NAMES = {n: cls.title for n, cls in PEERS.items()}


def missing_wheel(peer: str) -> str | None:
    """Why a peer cannot run here (its extra is not installed), or None."""
    return missing_extra(peer)


def model2vec_vectors(source: Path, out: Path, pca_dims: int = 256) -> Path:
    """model2vec's own distillation of `source` (a local Hugging Face folder), done once and kept."""
    return distill_vectors(source, out, pca_dims)


@dataclass(frozen=True)
class PeerGrid:
    """Each peer's grid (every combination is tried; the best dev score is kept): the product's defaults."""

    fasttext: dict[str, list] = field(default_factory=lambda: dict(PEERS["fasttext"].grid))
    model2vec: dict[str, list] = field(default_factory=lambda: dict(PEERS["model2vec"].grid))

    def settings(self, peer: str) -> list[dict[str, Any]]:
        return settings(getattr(self, peer))


def train_peer(peer: str, data: TaskData, folder: Path, grid: PeerGrid, seed: int,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train the baseline `peer` into `folder` (kept when trained on the same data and settings); its
    record in the study's terms: dev and test are the task's primary metric on dev and on test."""
    fixed = dict(extra or {})
    if peer == "model2vec":
        fixed.setdefault("device", "auto")  # the gpu scale trains it on the GPU
    record = train_baseline(peer, data, folder, seed, getattr(grid, peer), fixed)
    primary = record["primary"]
    return {"peer": peer, "task": record["task"], "chosen": record["chosen"], "dev": record["dev"][primary],
            "test": record["test"]["test"][primary], "grid": record["grid"], "train_seconds": record["train_seconds"],
            "sizes": record["sizes"], "seed": seed}


def load_peer(peer: str, folder: Path) -> Predict:
    predictor = load_baseline(folder)
    assert predictor.name == peer, (predictor.name, peer)
    return predictor
