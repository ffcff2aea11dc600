"""What a student borrows from a pretrained encoder (its tokenizer, its input embeddings, vectors distilled
from it) and which encoders can lend it: the vocabulary of each student kind's rules, kept here so that
preflight, the pipeline and the stages ask the student instead of comparing kind names.

Sources, in the order a student takes them by default (`AUTO`):
- `run-teacher`: the run's refined teacher (`<run>/teacher`), when the run trains one anyway (some task
  has no teacher of its own);
- `task-teacher`: the first per-task mkd teacher folder with an encoder (transfer.teachers, ensemble
  members included): refined on the tasks, and already on disk;
- `base`: `teacher.model`, the pretrained encoder the run's teacher would start from (un-refined).
`base` is always there, so with the default order a student never forces `mkd teach` and never fails after
labelling for want of an encoder. An order without `base` that finds nothing asks for the run's teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from mkd.errors import MkdError


class Source(str, Enum):
    RUN = "run-teacher"
    TASK = "task-teacher"
    BASE = "base"


AUTO = (Source.RUN, Source.TASK, Source.BASE)
DESCRIBED = {Source.RUN: "the run's refined teacher", Source.TASK: "the refined teacher",
             Source.BASE: "the base encoder"}


@dataclass(frozen=True)
class Borrow:
    """What a student takes from an encoder (`what`: "its token vectors", for messages) and the sources it
    accepts, in order."""

    what: str
    sources: tuple[Source, ...] = AUTO


@dataclass(frozen=True)
class EncoderSource:
    """One encoder a student can borrow from: an mkd model folder with an encoder (a teacher, or a
    transformer student), a Hugging Face folder, an asset name or a hub name (`where`)."""

    source: Source
    where: str
    fetch_missing: bool = False
    trust_remote_code: bool = False
    cache_root: Path | None = None  # the run folder: teacher vectors of non-run sources are cached there

    @classmethod
    def of(cls, folder: Path | str | EncoderSource | None) -> EncoderSource | None:
        """A plain folder (tests, scripts) is a refined teacher's folder."""
        if folder is None or isinstance(folder, EncoderSource):
            return folder
        return cls(Source.RUN, str(folder))

    @property
    def folder(self) -> Path | None:
        """Its local folder (an asset's, fetched when the recipe allows), or None for a hub name."""
        path = Path(self.where).expanduser()
        if path.is_dir():
            return path
        if self.source is not Source.BASE:
            raise MkdError(f"no teacher folder at {path} to take the student's encoder from",
                           "run mkd teach first" if self.source is Source.RUN else "fix transfer.teachers")
        from mkd.models.pretrained import resolve

        local = Path(resolve(self.where, self.fetch_missing))
        return local if local.is_dir() else None

    def describe(self) -> str:
        return f"{DESCRIBED[self.source]} {self.where}"

    def load(self) -> tuple[Any, Any]:
        """(encoder, fast tokenizer)."""
        folder = self.folder
        if folder is not None and (folder / "mkd.json").is_file():
            return load_teacher_encoder(folder)
        from mkd.models.pretrained import load_encoder

        return load_encoder(self.where, self.trust_remote_code, self.fetch_missing)

    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self.folder or self.where, use_fast=True,
                                                 trust_remote_code=self.trust_remote_code)
        except (OSError, ValueError) as e:
            raise MkdError(f"cannot load the tokenizer of {self.describe()} ({str(e).splitlines()[0][:100]})",
                           "give teacher.model as an asset name, a local folder with a tokenizer, or a hub name"
                           ) from None

    def stamp(self) -> str:
        """Names the encoder's weights, for fingerprints and caches: a stage's own fingerprint when the folder
        has one, else the weights' size and date; a hub name stands for itself."""
        folder = self.folder
        if folder is None:
            return f"{self.source.value}|{self.where}"
        stage = folder / "stage.json"
        if stage.is_file():
            return f"{self.source.value}|{folder.resolve()}|{stage.read_text(encoding='utf-8')}"
        stats = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.glob("*.safetensors"))]
        return f"{self.source.value}|{folder.resolve()}|{','.join(stats)}"

    def cache_dir(self) -> Path:
        """Where vectors distilled from it are cached: beside an mkd folder (students of its run share them),
        else in the run's scratch folder (never inside the asset cache)."""
        folder = self.folder
        if folder is not None and (folder / "mkd.json").is_file():
            return folder.resolve().parent / ".work" / "teacher-vectors"
        if self.cache_root is None:
            raise MkdError(f"no run folder to cache vectors of {self.describe()} in", "run it through mkd distill")
        return self.cache_root / ".work" / "teacher-vectors"


def load_teacher_encoder(teacher_folder: Path) -> tuple[Any, Any]:
    """(encoder, fast tokenizer) of an mkd teacher folder (or any folder whose model has `.encoder`)."""
    from mkd.models.base import rebuild
    from mkd.models.teacher import TeacherModel  # noqa: F401  (registers "teacher")

    if not (Path(teacher_folder) / "model.safetensors").is_file():
        raise MkdError(f"no teacher weights in {teacher_folder} for teacher-distilled vectors",
                       "run mkd teach first, or choose glove-6b-50d, spacy-en-md or random embeddings")
    model = rebuild(teacher_folder)
    encoder, tokenizer = getattr(model, "encoder", None), getattr(model, "tokenizer", None)
    if encoder is None or tokenizer is None:
        raise MkdError(f"{teacher_folder} holds a {model.arch}, not a transformer teacher",
                       "point the run at a teacher folder written by mkd teach")
    return encoder, tokenizer


def vectors_sources(cfg: Any) -> tuple[Source, ...]:
    """Where teacher-static vectors may come from: `student.vectors_from: base` narrows the sources to the
    base encoder (teacher.model); `refined` (the default) keeps every source, refined teachers first."""
    return (Source.BASE,) if getattr(cfg, "vectors_from", "refined") == "base" else AUTO
