"""model2vec's StaticModelForClassification (or ...ForRegression), fine-tuned on the gold labels only.

Its vectors come from model2vec's own `distill` of the run's base encoder (the teacher's model before
any fine-tuning: by default the MiniLM-L6 asset), offline: each vocabulary token through the encoder,
PCA to 256, Zipf weighting. That is what a practitioner would do with the same encoder, and it is
the cheapest honest choice: it sees no teacher logits and no task data. It costs about 40 s on one
thread (MiniLM-L6, 29,525 tokens) once per machine and encoder: the vectors are kept under
`$MKD_HOME/baselines/` and reused. `options: {vectors: FOLDER}` gives a model2vec folder instead.

Why this needs `skeletoken` and not `model2vec[distill]`: that extra pins transformers < 5.4, which
would downgrade mkd's; its distill runs with the base package, skeletoken and the transformers mkd
uses (tests/test_baselines.py distils a tiny BERT to check it). A pair is its two texts joined by
" [SEP] " (model2vec has no pair input). Folders are safetensors + JSON (model2vec's pipeline format).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mkd.baselines.base import Baseline, Fitted, Say, Setting, quiet, register
from mkd.errors import MkdError
from mkd.io import atomic_dir
from mkd.tasks.task import Example, TaskData

PIPELINE = "model"  # the subfolder holding model2vec's pipeline (model.safetensors, head.safetensors, ...)
PCA_DIMS = 256


def model2vec_text(ex: Example) -> str:
    return " [SEP] ".join(ex.texts)


def _encoder_folder(encoder: str | Path) -> Path:
    """A local Hugging Face folder: the path itself, or the cached asset of that name (fetched if missing)."""
    path = Path(encoder).expanduser()
    if path.is_dir():
        return path
    from mkd.assets import ASSETS, asset_path  # lazily: only this default needs the asset cache

    if str(encoder) not in ASSETS:
        raise MkdError(f"model2vec baseline: encoder '{encoder}' is neither a folder nor an asset",
                       f"give a local Hugging Face folder or one of: {', '.join(ASSETS.names())}")
    return asset_path(str(encoder), fetch_missing=True)


def _vectors_dir(source: Path, pca_dims: int) -> Path:
    """Where the vectors distilled from `source` are kept: keyed by its weights (path, size, mtime)."""
    from mkd.assets import cache_dir

    weights = next((source / w for w in ("model.safetensors", "pytorch_model.bin") if (source / w).is_file()), source)
    stat = weights.stat()
    digest = hashlib.sha256(f"{weights.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "baselines" / f"model2vec-{source.name}-pca{pca_dims}-{digest}"


def distill_vectors(source: Path, out: Path, pca_dims: int = PCA_DIMS, say: Say | None = None) -> Path:
    """model2vec's own distillation of a local encoder folder into `out` (kept; done once)."""
    if (out / "model.safetensors").is_file():
        return out
    if say:
        say(f"baseline model2vec: distilling static vectors from {source} (once; about a minute on one thread)")
    with quiet():
        from model2vec.distill import distill

        model = distill(str(source), pca_dims=pca_dims, device="cpu")
        with atomic_dir(out) as build:  # several processes may distil at once: the last swap wins, same content
            model.save_pretrained(str(build))
    return out


def _pipeline_predict(pipe: Any, regression: bool) -> Callable[[Sequence[Example]], list]:
    """Predictions of model2vec's numpy pipeline (the saved form: what is scored is what is served)."""

    def predict(examples: Sequence[Example]) -> list:
        out = pipe.predict([model2vec_text(e) for e in examples], use_multiprocessing=False)
        if regression:
            return [float(v) for v in np.asarray(out, dtype=np.float64).reshape(-1)]
        return [int(p) for p in out]

    return predict


class _FittedModel2Vec(Fitted):
    def __init__(self, pipe: Any, regression: bool) -> None:
        self.pipe = pipe
        self.predict = _pipeline_predict(pipe, regression)  # type: ignore[method-assign]

    def save(self, folder: Path) -> None:
        self.pipe.save_pretrained(str(folder / PIPELINE))


@register
class Model2VecBaseline(Baseline):
    name = "model2vec"
    title = "model2vec StaticModelForClassification"
    modules = ("model2vec.train", "model2vec.distill")  # distill: needs skeletoken, not model2vec[distill]
    types = ("classification", "regression")
    grid: ClassVar[dict[str, list[Any]]] = {
        "learning_rate": [1e-3, 3e-3], "max_epochs": [20], "early_stopping_patience": [3], "batch_size": [256],
        "hidden_dim": [512]}

    def prepare(self, options: Mapping[str, Any], say: Say) -> Setting:
        unknown = set(options) - {"vectors", "encoder", "pca_dims", "device"}
        if unknown:
            raise MkdError(f"model2vec baseline: unknown option(s) {', '.join(sorted(unknown))}",
                           "its options are vectors (a model2vec folder), encoder, pca_dims and device")
        device = str(options.get("device", "cpu"))  # "auto": model2vec's choice (a GPU when there is one)
        if options.get("vectors"):
            vectors = Path(str(options["vectors"])).expanduser()
            if not (vectors / "model.safetensors").is_file():
                raise MkdError(f"model2vec baseline: {vectors} holds no model.safetensors",
                               "give a folder saved by model2vec (StaticModel.save_pretrained)")
            return {"vectors": str(vectors), "device": device}
        dims = int(options.get("pca_dims", PCA_DIMS))
        source = _encoder_folder(options.get("encoder", "minilm-l6"))
        return {"vectors": str(distill_vectors(source, _vectors_dir(source, dims), dims, say)), "device": device}

    def fit(self, data: TaskData, setting: Setting, seed: int) -> Fitted:
        with quiet():
            from model2vec import StaticModel
            from model2vec.train import StaticModelForClassification, StaticModelForRegression

            setting = dict(setting)
            static = StaticModel.from_pretrained(setting.pop("vectors"))
            hidden = setting.pop("hidden_dim", 512)
            regression = data.spec.type == "regression"
            cls = StaticModelForRegression if regression else StaticModelForClassification
            model = cls.from_static_model(model=static, hidden_dim=hidden, out_dim=data.spec.num_outputs)
            train, dev = data.split("train"), data.split("dev")

            def target(e: Example) -> Any:
                return [float(e.label)] if regression else e.label  # type: ignore[arg-type]

            model.fit([model2vec_text(e) for e in train], [target(e) for e in train],
                      X_val=[model2vec_text(e) for e in dev], y_val=[target(e) for e in dev],
                      random_seed=seed, **setting)
        return _FittedModel2Vec(model.to_pipeline(), regression)

    def load(self, folder: Path, meta: dict[str, Any]) -> Callable[[Sequence[Example]], list]:
        if not (folder / PIPELINE / "head.safetensors").is_file():  # never model2vec's legacy (skops) format
            raise MkdError(f"{folder / PIPELINE} has no head.safetensors", "train the baseline again")
        with quiet():
            from model2vec.inference import StaticModelPipeline

            pipe = StaticModelPipeline.from_pretrained(str(folder / PIPELINE))
        return _pipeline_predict(pipe, meta.get("type") == "regression")
