"""The recipe: one typed, strict description of a whole run (unknown keys are errors).

A recipe is YAML, validated by pydantic. `--set a.b=value` overrides are applied to the raw
mapping before validation, so they are type-checked exactly like the file. Nothing in a recipe
executes code: values are plain data (`yaml.safe_load`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_serializer,
    model_validator,
)

from mkd.errors import MkdError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class WithNewKeys(Strict):
    """A section whose NEW_KEYS (added after runs exist) stay out of the dump, and so of every
    fingerprint, while they hold their default: old runs keep their fingerprints."""

    NEW_KEYS: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_default_new_keys(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in self.NEW_KEYS:
                if key in data and data[key] == type(self).model_fields[key].default:
                    data.pop(key)
        return data


class TrainConfig(Strict):
    """Engineering settings of the one training loop (teach, distill and finetune)."""

    epochs: int = Field(3, ge=1)
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps in all")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(128, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    mixing: Literal["proportional", "temperature", "uniform"] = "proportional"
    mixing_temperature: float = Field(2.0, gt=0, description="tau of p ~ size^(1/tau)")
    eval_every: int | None = Field(None, ge=1, description="steps between evaluations; None: per epoch")
    checkpoint_every: int | None = Field(None, ge=1, description="steps between checkpoints; None: at each evaluation")
    checkpoint_minutes: float | None = Field(10.0, gt=0, description="also checkpoint after this much time; None: off")
    patience: int | None = Field(3, ge=1, description="evaluations without improvement before stopping")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast where the hardware is fast at it, else fp32 | no: fp32")
    log_every: int = Field(10, ge=1)


class AugmentConfig(Strict):
    """Tang et al.'s rules (MKD.md, stage 2)."""

    enabled: bool = True
    p_mask: float = Field(0.1, ge=0, le=1)
    p_pos: float = Field(0.1, ge=0, le=1)
    p_ng: float = Field(0.25, ge=0, le=1)
    n_iter: int | None = Field(None, ge=0, description="None: 20 for single texts, 10 for pairs")
    max_per_task: int | None = Field(None, ge=1, description="cap on augmented examples per task")

    @model_validator(mode="after")
    def _exclusive(self) -> AugmentConfig:
        if self.p_mask + self.p_pos > 1:
            raise ValueError("p_mask + p_pos must be at most 1 (the two rules are exclusive)")
        return self


class UnlabelledFile(Strict):
    """An unlabelled file whose text column(s) are named differently from the task's text_fields."""

    path: str
    text_fields: list[str] = Field(min_length=1, max_length=2)


class TaskConfig(WithNewKeys):
    """A task of the run: a known task by name, optionally with its data location and sizes,
    or a user's own task declared in full (source: files)."""

    NEW_KEYS = ("join", "unlabelled_train")
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]+$")
    source: Literal["builtin", "glue", "hub", "files"] | None = None
    glue_dir: str | None = None
    hub_name: str | None = None
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    text_fields: list[str] | None = Field(None, min_length=1, max_length=2)
    label_field: str | None = None
    group_field: str | None = Field(None, description="rows sharing this column stay in one carved split")
    type: Literal["classification", "regression"] | None = None
    labels: list[str] | None = None
    metrics: list[str] | None = None
    primary: str | None = None
    dev_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.1, gt=0, lt=1)
    max_train: int | None = Field(None, ge=1)
    max_dev: int | None = Field(None, ge=1)
    max_test: int | None = Field(None, ge=1)
    unlabelled: list[str | UnlabelledFile] = Field(
        default_factory=list, description="extra text files for the transfer set (a path, or {path, text_fields})")
    augment: AugmentConfig | None = None
    join: str | None = Field(None, description="join the text_fields into one text with this separator")
    unlabelled_train: int | None = Field(None, ge=1, description=(
        "also put up to this many more examples of the training split (beyond max_train), their labels "
        "dropped, into the transfer set: few labels for the teacher, more text for the student"))

    def unlabelled_files(self) -> list[tuple[str, tuple[str, ...] | None]]:
        """(path, its text columns or None for the task's text_fields) of each unlabelled entry."""
        return [(u, None) if isinstance(u, str) else (u.path, tuple(u.text_fields)) for u in self.unlabelled]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class TeacherConfig(Strict):
    model: str = Field("minilm-l6", description="asset name, local folder or hub name")
    max_length: int = Field(128, ge=8)
    dropout: float = Field(0.1, ge=0, lt=1)
    pooling: Literal["mean", "cls", "pooler"] = Field(
        "mean", description="mean of the tokens | [CLS] | [CLS] through the encoder's pooler (Hugging Face export)"
    )
    trust_remote_code: bool = False
    train: TrainConfig = Field(default_factory=TrainConfig)


class TeacherSpec(Strict):
    """A task's own teacher (see mkd.teachers): an mkd folder, a Hugging Face classifier, a logits file,
    or an ensemble of those. Settings that do not apply to its kind are errors."""

    kind: Literal["mkd", "hf", "logits", "ensemble"]
    path: str | None = Field(None, description="mkd/hf: folder or hub name; logits: a CSV/JSONL/Parquet file")
    label_map: dict[str, str] | None = Field(None, description="teacher label name -> task label name")
    max_length: int | None = Field(None, ge=4, description="hf: tokens per input; None: the tokenizer's own")
    trust_remote_code: bool = Field(False, description="hf: run the model's own code (only if you trust it)")
    key: Literal["id", "text"] = Field("id", description="logits: rows found by example id or by its text(s)")
    values: Literal["logits", "probabilities"] = Field("logits", description="logits: what the file holds")
    members: list[TeacherRef] | None = Field(None, min_length=2, description="ensemble: its teachers")
    weights: list[float] | None = Field(None, description="ensemble: one weight > 0 per member; None: equal")
    combine: Literal["logits", "probabilities"] = Field(
        "logits", description="ensemble: weighted mean of logits, or of probabilities then log")

    @model_validator(mode="after")
    def _fits_kind(self) -> TeacherSpec:
        own = {"hf": {"max_length", "trust_remote_code"}, "logits": {"key", "values"},
               "ensemble": {"members", "weights", "combine"}}
        foreign = sorted(f for k, names in own.items() if k != self.kind for f in names & self.model_fields_set)
        if foreign:
            raise ValueError(f"'{foreign[0]}' does not apply to a teacher of kind {self.kind}")
        if self.kind == "ensemble":
            if not self.members or self.path is not None or self.label_map is not None:
                raise ValueError("an ensemble takes members (at least 2), not path or label_map")
            if self.weights is not None and (len(self.weights) != len(self.members) or min(self.weights) <= 0):
                raise ValueError("an ensemble needs one weight > 0 per member")
        elif not self.path:
            raise ValueError(f"a teacher of kind {self.kind} needs a path")
        return self


TeacherRef = Annotated[
    Annotated[str, Tag("folder")] | Annotated[TeacherSpec, Tag("spec")],
    Discriminator(lambda v: "folder" if isinstance(v, str) else "spec"),
]
"""A plain string is an mkd teacher folder (as before typed teachers); else a TeacherSpec."""
TeacherSpec.model_rebuild()


class TransferConfig(Strict):
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    label_batch_size: int = Field(64, ge=1)
    shard_size: int = Field(10000, ge=1, description="examples per Parquet shard")
    teachers: dict[str, TeacherRef] | None = Field(
        None, description="task -> its teacher (a folder, or a typed teacher); None: the run's teacher"
    )
    fidelity_threshold: float = Field(0.99, ge=0, le=1, description=(
        "labelling below fp32: the least argmax agreement with fp32 on the first shard, else fp32"))
    fidelity_examples: int = Field(256, ge=1, description="examples of the first shard the fidelity gate checks")


class StudentConfig(WithNewKeys):
    NEW_KEYS = ("bigram_buckets", "preset", "vectors_from")
    preset: str | None = Field(None, description="a named student (mkd.config.presets: static | small-bilstm | "
                               "mkd-lstm | transformer), expanded under the recipe's own keys; a recipe without "
                               "`student` gets the default preset")
    type: str = "bilstm_attn"
    folder: str = Field("student", pattern=r"^[A-Za-z0-9_.\-]+$",
                        description="output folder in the run; several students can share one transfer set")
    embeddings: str = Field(
        "glove-6b-50d", description="glove-6b-50d | spacy-en-md | teacher | teacher-static | random"
    )
    embedding_dim: int | None = Field(
        None, ge=1, description="random embeddings' size (None: 300); teacher-static: the PCA width (None: the "
        "teacher's width for LSTM students, 256 for the static student); pretrained vectors bring their own")
    vectors_from: Literal["refined", "base"] = Field(
        "refined", description="teacher-static vectors: from the run's refined teacher encoder, or from the base "
        "encoder it was refined from (teacher.model)")
    freeze_embeddings: bool = False
    hidden_size: int = Field(300, ge=1)
    num_layers: int = Field(1, ge=1)
    num_heads: int = Field(4, ge=1)
    pooling: Literal["mean", "cls", "pooler", "weighted"] = Field(
        "mean", description="transformer student: like teacher.pooling; pooler allows a Hugging Face export; "
        "static student: mean | weighted (a learned weight per token)"
    )
    head: Literal["mlp", "linear"] = Field("mlp", description="static student: its task heads")
    bigram_buckets: int = Field(0, ge=0, description="static student: rows of its hashed token-bigram table, "
                                "added to the pooled vector (0: no bigrams)")
    dropout: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(128, ge=4)
    min_count: int = Field(1, ge=1, description="word-level vocabulary: minimum count")
    init_from: str | None = Field(None, description="pretrained encoder for the transformer student")
    init_layers: int | None = Field(None, ge=1, description="keep the first k layers of init_from")


class DistillConfig(Strict):
    seed: int | None = Field(None, description="student seed (init, data order); None: the recipe's seed")
    loss: str = Field("mse", description="mse (the paper) | kl")
    temperature: float = Field(1.0, gt=0)
    alpha: float = Field(0.0, ge=0, le=1, description="weight of the gold-label loss")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(lr=1e-3, batch_size=50, epochs=10, warmup_ratio=0.0)
    )


class FinetuneConfig(Strict):
    enabled: bool = False
    tasks: list[str] | None = Field(None, description="None: every task")
    alpha: float = Field(0.5, ge=0, le=1, description="weight of the gold-label loss")
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(lr=3e-4, batch_size=50, epochs=3, warmup_ratio=0.0)
    )


class BenchConfig(Strict):
    enabled: bool = True
    threads: int = Field(1, ge=1, description="pinned for PyTorch and ONNX Runtime while measuring")
    rounds: int = Field(5, ge=1)
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 32])
    examples: int = Field(256, ge=1)
    budget_s: float = Field(0.1, gt=0, description="seconds each model's path gets per round and batch size "
                                                   "(at least one batch)")


DEFAULT_BASELINES = ("model2vec", "fasttext")
"""The baselines a recipe trains unless it says otherwise (mkd.baselines.DEFAULT)."""


class BaselineConfig(Strict):
    """A baseline of the run (mkd.baselines): a name, or {name, grid, options}. Names are checked
    against the registry before anything trains (mkd.stages.preflight)."""

    name: str
    grid: dict[str, list[Any]] | None = Field(
        None, description="settings tried, chosen on dev: these keys replace those of its own grid; None: its own")
    options: dict[str, Any] = Field(default_factory=dict, description="model2vec: vectors, encoder, pca_dims")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_serializer(mode="wrap")
    def _as_name(self, handler: Any) -> Any:
        """A baseline with its own grid and no options is written back as its bare name."""
        return self.name if self.grid is None and not self.options else handler(self)


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 13
    output_dir: str = "runs"
    fetch_missing: bool = Field(False, description="fetch missing assets instead of failing")
    precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="inference precision of label, evaluate, bench and predict (like mixed_precision)")
    blank_texts: Literal["drop", "error"] = Field("drop", description="empty texts in task data: drop or refuse")
    tasks: list[TaskConfig] = Field(min_length=1)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    bench: BenchConfig = Field(default_factory=BenchConfig)
    baselines: list[BaselineConfig] = Field(
        default_factory=lambda: [BaselineConfig(name=n) for n in DEFAULT_BASELINES],
        description="gold-only models trained, scored and benched beside the students; []: none")

    @field_validator("tasks")
    @classmethod
    def _unique(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        names = [t.name for t in tasks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"task {dupes[0]} is listed twice")
        return tasks

    @field_validator("baselines")
    @classmethod
    def _unique_baselines(cls, baselines: list[BaselineConfig]) -> list[BaselineConfig]:
        names = [b.name for b in baselines]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"baseline {dupes[0]} is listed twice")
        return baselines

    @model_validator(mode="after")
    def _teachers_of_tasks(self) -> Recipe:
        unknown = sorted(set(self.transfer.teachers or {}) - {t.name for t in self.tasks})
        if unknown:
            raise ValueError(f"transfer.teachers names task {unknown[0]}, which is not in tasks")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def task(self, name: str) -> TaskConfig:
        for t in self.tasks:
            if t.name == name:
                return t
        raise MkdError(f"task '{name}' is not in recipe {self.name}", "add it under tasks:")

    def section_hash(self, *sections: str) -> str:
        """A fingerprint of some sections (plus the seed): a stage reruns when it changes."""
        data = {s: _dump(getattr(self, s)) for s in sections}
        data["seed"] = self.seed
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)

    def save(self, folder: str | Path) -> None:
        from mkd.io import write_text

        write_text(Path(folder) / "recipe.yaml", self.to_yaml())


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_dump(v) for v in value]
    return value
