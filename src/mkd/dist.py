"""Several processes (`accelerate launch`, `torchrun`): which one is the main process, and waiting.

Run alone (no launcher, WORLD_SIZE unset) every helper is free: world 1, rank 0, nothing to wait
for, and no process group is made. Under a launcher, Accelerate's PartialState owns the process
group (gloo on CPU, nccl on GPUs); on a machine without a GPU (or with ACCELERATE_USE_CPU set by
`accelerate launch --cpu`) the processes run on the CPU.

Who writes: only the main process writes the run folder (run.json, checkpoints, best weights,
logs, model folders, manifests); other processes only compute, except that when labelling each
process writes the logits shards it was given (shard i goes to process i % world).
"""

from __future__ import annotations

import os
from typing import Any


def launched() -> bool:
    """True under a launcher that started more than one process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def use_cpu() -> bool:
    """Run on the CPU: asked for (accelerate launch --cpu), or no GPU here."""
    import torch

    flag = os.environ.get("ACCELERATE_USE_CPU", "").strip().lower() in ("1", "true", "yes")
    return flag or not torch.cuda.is_available()


def state() -> Any:
    """Accelerate's PartialState (made once per process; it joins the process group)."""
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def world() -> int:
    return state().num_processes if launched() else 1


def rank() -> int:
    return state().process_index if launched() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for when run alone)."""
    if launched():
        state().wait_for_everyone()


def device() -> str:
    """This process's device: its own GPU under a launcher, else cuda or cpu."""
    if launched():
        return str(state().device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
