"""Resumable checkpoints: weights, optimizer, scheduler, step, RNG states, sampler position.

Everything is stored as safetensors (tensors) plus JSON (the rest), never pickled, and a
checkpoint folder is swapped into place atomically, so a crash leaves the previous one intact.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from mkd.errors import MkdError
from mkd.io import atomic_dir, atomic_path
from mkd.models.base import load_weights


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    position: int = 0
    best_score: float | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    stopped_early: bool = False
    examples_seen: int = 0
    processes: int = 1  # the batch plan depends on it: a run resumes with as many processes
    precision: str = "fp32"  # the arithmetic depends on it: a run resumes at the same precision
    seconds: float = 0.0  # training time up to this checkpoint, over every process that worked on it


def _flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, state: TrainState, fingerprint: str) -> None:
    with atomic_dir(folder) as tmp:
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / "model.safetensors"))
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                rng[f"cuda{i}"] = s
        save_file(rng, str(tmp / "rng.safetensors"))
        sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
        (tmp / "state.json").write_text(json.dumps({
            "fingerprint": fingerprint, "train": asdict(state), "optimizer": opt_meta, "scheduler": sched,
        }, indent=1))


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, fingerprint: str) -> TrainState:
    try:
        meta = json.loads((folder / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise MkdError(f"checkpoint {folder} is incomplete or corrupt",
                       "delete it and start again without --resume") from None
    if meta.get("fingerprint") != fingerprint:
        raise MkdError(f"checkpoint {folder} was written by a different recipe or model",
                       "resume with the recipe that started it, or rerun with --force to start over")
    result = model.load_state_dict(load_weights(folder / "model.safetensors"), strict=True)
    del result
    optimizer.load_state_dict(_unflatten_optimizer(load_weights(folder / "optimizer.safetensors"), meta["optimizer"]))
    sched = scheduler.state_dict()
    sched.update(meta["scheduler"])
    scheduler.load_state_dict(sched)
    rng = load_weights(folder / "rng.safetensors")
    torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    return TrainState(**meta["train"])


def save_weights(path: Path, model: torch.nn.Module) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
