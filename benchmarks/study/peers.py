"""The peers: what a practitioner would train instead of distilling, on mkd's own splits.

Each peer is trained by the study on exactly the train/dev/test examples the mkd rows see (read with
`mkd.tasks.load_task` from the row's own recipe, never re-implemented), its hyper-parameters chosen on
dev from a small grid that is data (the scale's), its test score reported. A trained peer is a folder
with `peer.json` (grid, dev and test scores, the chosen setting) and its model; `load_peer` gives the
bench an adaptor that predicts a batch of raw examples, tokenization included, like an mkd runner.

Both peers come from the study's optional extra (`pip install -e .[study]`): fastText supervised
(`fasttext-numpy2`; a pair is one line of `p:`/`h:`-prefixed tokens) and model2vec's
StaticModelForClassification (`model2vec[train]`; vectors distilled by model2vec from the MiniLM-L6
asset folder, offline; a pair is its two texts joined by " [SEP] ").
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkd.tasks.task import Example, TaskData

Predict = Callable[[Sequence[Example]], list[int]]
TOKEN = re.compile(r"\w+|[^\w\s]")


def _accuracy(predict: Predict, examples: Sequence[Example], batch: int = 512) -> float:
    right = 0
    for i in range(0, len(examples), batch):
        part = examples[i : i + batch]
        right += sum(int(p == e.label) for p, e in zip(predict(part), part, strict=True))
    return 100.0 * right / len(examples)


def missing_wheel(peer: str) -> str | None:
    """Why a peer cannot run here (its wheel is not installed), or None."""
    for module in PEERS[peer].modules:
        try:
            __import__(module)
        except ImportError as e:
            return f"{peer} needs `{module}` (pip install -e .[study]): {e}"
    return None


# ---------------------------------------------------------------- fastText


def fasttext_line(ex: Example) -> str:
    """One input line: lower-cased word and punctuation tokens; a pair's tokens prefixed p: and h:."""
    if len(ex.texts) == 1:
        return " ".join(TOKEN.findall(ex.texts[0].lower()))
    return " ".join(f"{p}:{w}" for p, text in zip("ph", ex.texts, strict=False)
                    for w in TOKEN.findall(text.lower()))


class FastTextPeer:
    modules = ("fasttext",)

    @staticmethod
    def fit(data: TaskData, folder: Path, setting: dict[str, Any], seed: int) -> Predict:
        import fasttext

        folder.mkdir(parents=True, exist_ok=True)
        train = folder / "train.txt"
        with open(train, "w", encoding="utf-8") as f:
            for ex in data.split("train"):
                f.write(f"__label__{ex.label} {fasttext_line(ex)}\n")
        model = fasttext.train_supervised(input=str(train), thread=1, seed=seed, verbose=0, **setting)
        train.unlink()
        return FastTextPeer._predictor(model)

    @staticmethod
    def _predictor(model: Any) -> Predict:
        def predict(part: Sequence[Example]) -> list[int]:
            labels, _ = model.predict([fasttext_line(e) for e in part], k=1)
            return [int(lab[0].removeprefix("__label__")) for lab in labels]

        predict.save = lambda path: model.save_model(str(path / "model.bin"))  # type: ignore[attr-defined]
        return predict

    @staticmethod
    def load(folder: Path) -> Predict:
        import fasttext

        return FastTextPeer._predictor(fasttext.load_model(str(folder / "model.bin")))


# ---------------------------------------------------------------- model2vec


def model2vec_vectors(source: Path, out: Path, pca_dims: int = 256) -> Path:
    """model2vec's own distillation of `source` (a local Hugging Face folder), done once and kept."""
    if (out / "model.safetensors").is_file():
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec.distill import distill

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # several study processes may distil at once
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    distill(str(source), pca_dims=pca_dims, device="cpu").save_pretrained(str(tmp))
    try:
        tmp.rename(out)
    except OSError:  # another process got there first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def model2vec_text(ex: Example) -> str:
    return " [SEP] ".join(ex.texts)


class Model2VecPeer:
    modules = ("model2vec.train", "model2vec.distill")  # distill: skeletoken, not model2vec[distill]

    @staticmethod
    def fit(data: TaskData, folder: Path, setting: dict[str, Any], seed: int) -> Predict:
        from model2vec import StaticModel
        from model2vec.train import StaticModelForClassification

        setting = dict(setting)
        vectors = Path(setting.pop("vectors"))
        hidden = setting.pop("hidden_dim", 512)
        model = StaticModelForClassification.from_static_model(model=StaticModel.from_pretrained(str(vectors)),
                                                               hidden_dim=hidden, out_dim=data.spec.num_outputs)
        train, dev = data.split("train"), data.split("dev")
        model.fit([model2vec_text(e) for e in train], [e.label for e in train],
                  X_val=[model2vec_text(e) for e in dev], y_val=[e.label for e in dev],
                  device="auto", random_seed=seed, **setting)  # auto: the GPU of the gpu scale
        return Model2VecPeer._predictor(model)

    @staticmethod
    def _predictor(model: Any) -> Predict:
        import torch

        @torch.inference_mode()
        def predict(part: Sequence[Example]) -> list[int]:
            return [int(p) for p in model.predict([model2vec_text(e) for e in part], batch_size=len(part) or 1)]

        def save(path: Path) -> None:
            model.to_pipeline().save_pretrained(str(path / "model"))

        predict.save = save  # type: ignore[attr-defined]
        return predict

    @staticmethod
    def load(folder: Path) -> Predict:
        from model2vec.inference import StaticModelPipeline

        pipe = StaticModelPipeline.from_pretrained(str(folder / "model"))

        def predict(part: Sequence[Example]) -> list[int]:
            return [int(p) for p in pipe.predict([model2vec_text(e) for e in part])]

        return predict


PEERS: dict[str, Any] = {"fasttext": FastTextPeer, "model2vec": Model2VecPeer}
NAMES = {"fasttext": "fastText supervised", "model2vec": "model2vec StaticModelForClassification"}


@dataclass(frozen=True)
class PeerGrid:
    """A peer's hyper-parameter grid (every combination is tried; the best dev accuracy is kept)."""

    fasttext: dict[str, list] = field(default_factory=lambda: {
        "epoch": [5, 25], "lr": [0.1, 0.5], "wordNgrams": [1, 2], "dim": [100]})
    model2vec: dict[str, list] = field(default_factory=lambda: {
        "learning_rate": [1e-3, 3e-3], "max_epochs": [20], "early_stopping_patience": [3], "batch_size": [256]})

    def settings(self, peer: str) -> list[dict[str, Any]]:
        grid = getattr(self, peer)
        return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def train_peer(peer: str, data: TaskData, folder: Path, grid: PeerGrid, seed: int,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Fit every grid setting, keep the best on dev (saved in `folder`), and score it on test.
    A finished folder (peer.json present) is kept as it is."""
    done = folder / "peer.json"
    if done.is_file():
        return json.loads(done.read_text())
    cls = PEERS[peer]
    tried, best = [], None
    started = time.time()
    for setting in grid.settings(peer):
        scratch = folder.with_name(f".{folder.name}.try")
        shutil.rmtree(scratch, ignore_errors=True)
        t0 = time.time()
        try:
            predict = cls.fit(data, scratch, {**setting, **(extra or {})}, seed)
        except RuntimeError as e:  # fastText diverges ("Encountered NaN") at a too-high lr on small data
            tried.append({"setting": setting, "error": str(e)[:200]})
            continue
        dev = _accuracy(predict, data.split("dev"))
        tried.append({"setting": setting, "dev": round(dev, 2), "seconds": round(time.time() - t0, 1)})
        if best is None or dev > best[0]:
            best = (dev, setting, predict)
    if best is None:
        raise RuntimeError(f"{peer} on {data.spec.name}: every grid setting failed: {tried}")
    dev, setting, predict = best
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    predict.save(tmp)  # type: ignore[attr-defined]
    test = _accuracy(predict, data.split("test"))
    result = {"peer": peer, "task": data.spec.name, "chosen": setting, "dev": round(dev, 2), "test": round(test, 2),
              "grid": tried, "train_seconds": round(time.time() - started, 1), "sizes": data.sizes(), "seed": seed}
    (tmp / "peer.json").write_text(json.dumps(result, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(folder.with_name(f".{folder.name}.try"), ignore_errors=True)
    tmp.rename(folder)
    return result


def load_peer(peer: str, folder: Path) -> Predict:
    return PEERS[peer].load(folder)
