"""A task is data: its declaration (TaskSpec) and its examples, declared once, used everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TaskType = Literal["classification", "regression"]
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: inputs, output type, labels, metrics. Where its data comes from: source."""

    name: str
    text_fields: tuple[str, ...]
    type: TaskType
    labels: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("accuracy",)
    primary: str = "accuracy"
    source: str = "files"
    description: str = ""
    label_field: str = "label"
    files: dict[str, str] = field(default_factory=dict)
    group_field: str | None = None  # rows sharing it stay in one carved split (e.g. the premise)
    join: str | None = None  # the text_fields joined into one text with this separator (not a pair)

    @property
    def is_pair(self) -> bool:
        return len(self.text_fields) == 2 and self.join is None

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the model's inputs: the text_fields, or one "a+b" when they are joined."""
        return ("+".join(self.text_fields),) if self.join is not None else self.text_fields

    def texts_of(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The model's texts from the text_fields' values (joined when the task says so)."""
        return (self.join.join(values),) if self.join is not None and len(values) > 1 else values

    @property
    def num_outputs(self) -> int:
        return len(self.labels) if self.type == "classification" else 1


@dataclass(frozen=True)
class Example:
    """One input of a task. `id` is stable across runs; `label` is a class index, a score, or None
    (unlabelled text, e.g. augmented examples before the teacher labels them)."""

    id: str
    texts: tuple[str, ...]
    label: int | float | None = None


@dataclass
class TaskData:
    spec: TaskSpec
    splits: dict[str, list[Example]]

    def split(self, name: str) -> list[Example]:
        from mkd.errors import MkdError

        if name not in self.splits:
            raise MkdError(
                f"task {self.spec.name} has no '{name}' split",
                f"use one of: {', '.join(self.splits)}",
            )
        return self.splits[name]

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}
