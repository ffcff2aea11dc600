"""The one training loop: teacher refinement, distillation and fine-tuning all run through `fit`.

model + per-task loss + multi-task sampler + AdamW (warmup, linear decay, clipping), through
Hugging Face Accelerate so the same code runs on CPU, one GPU or many (`accelerate launch`).
Evaluates every task's dev set, keeps the best weights by the macro score, stops early with
patience, checkpoints atomically and resumes exactly.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mkd.config import TrainConfig
from mkd.data.batch import EncodedSplit
from mkd.data.evaluate import evaluate_tasks
from mkd.data.sampler import MultiTaskSampler
from mkd.errors import MkdError
from mkd.io import atomic_path, restore_swapped_dir
from mkd.models.base import load_weights
from mkd.precision import autocast, resolve
from mkd.progress import progress_bar
from mkd.tasks.task import TaskSpec
from mkd.train.checkpoint import TrainState, load_checkpoint, save_checkpoint, save_weights
from mkd.train.interrupt import Interrupted, current_stop, deferred_signals, note_checkpoint
from mkd.train.losses import Loss


@dataclass
class FitResult:
    best_score: float | None
    best_step: int | None
    steps: int
    wall_seconds: float
    dev: dict = field(default_factory=dict)
    stopped_early: bool = False
    precision: str = "fp32"  # what the forward passes ran at (mkd.precision)
    earlier_seconds: float = 0.0  # training time before a resume (of the processes that wrote the checkpoint)
    resumed_step: int = 0  # the checkpoint's step when resumed, else 0


def make_accelerator(mixed_precision: str):
    """An Accelerator for this run (CPU here; GPUs or several processes under accelerate launch)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    from mkd.dist import use_cpu

    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision, cpu=use_cpu(),
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def share(indices: list[int], world: int, rank: int) -> list[int]:
    """This process's contiguous part of one global batch (parts differ in size by at most one; a
    part may be empty when the batch has fewer examples than there are processes)."""
    n = len(indices)
    return indices[rank * n // world : (rank + 1) * n // world]


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, total_steps: int):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # fused: one kernel per step instead of a dozen passes over every tensor. The static student's
    # 30k-row table steps 10x faster on CPU (tests cover the resume with it; same state layout)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    warmup = int(cfg.warmup_ratio * total_steps)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def _kept_rows(path: Path, cols: list[str], resume_step: int) -> list[dict]:
    """The complete rows of a log up to the resumed step (a process killed while appending may have
    left a partial last line)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        return [r for r in csv.DictReader(f)
                if list(r) == cols and None not in r.values() and r["step"].isdigit()
                and int(r["step"]) <= resume_step]


class _Logs:
    """train_log.csv (losses, lr, speed, batches per task) and eval_log.csv (dev metrics)."""

    def __init__(self, folder: Path, tasks: list[str], resume_step: int) -> None:
        self.train_path, self.eval_path = folder / "train_log.csv", folder / "eval_log.csv"
        self.tasks = tasks
        self.train_cols = ["step", "epoch", "lr", "examples_per_s"] + [f"loss_{t}" for t in tasks] + [
            f"batches_{t}" for t in tasks]
        self.eval_cols = ["step", "epoch", "task", "metric", "value"]
        for path, cols in ((self.train_path, self.train_cols), (self.eval_path, self.eval_cols)):
            rows = _kept_rows(path, cols, resume_step) if resume_step else []
            with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, cols)
                w.writeheader()
                w.writerows(rows)
        self.tb = None
        try:  # TensorBoard when installed
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(folder / "tensorboard"))
        except Exception:
            self.tb = None

    def train(self, row: dict) -> None:
        with open(self.train_path, "a", newline="") as f:
            csv.DictWriter(f, self.train_cols).writerow(row)
        if self.tb:
            for k, v in row.items():
                if k not in ("step", "epoch") and v != "":
                    self.tb.add_scalar(f"train/{k}", float(v), row["step"])

    def eval(self, step: int, epoch: int, result: dict) -> None:
        with open(self.eval_path, "a", newline="") as f:
            w = csv.DictWriter(f, self.eval_cols)
            for task, metrics in result["tasks"].items():
                for m, v in metrics.items():
                    w.writerow({"step": step, "epoch": epoch, "task": task, "metric": m, "value": v})
                    if self.tb:
                        self.tb.add_scalar(f"dev/{task}/{m}", v, step)
            w.writerow({"step": step, "epoch": epoch, "task": "macro", "metric": "macro", "value": result["macro"]})


def fit(*args, **kwargs) -> FitResult:
    """Train `model` in place (see `_fit`); a first Ctrl-C or SIGTERM ends the current step, saves a
    checkpoint and raises `Interrupted` instead of stopping mid-step."""
    with deferred_signals():
        return _fit(*args, **kwargs)


def _restore(resume: bool, ckpt_dir: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any,
             fingerprint: str, world: int, precision: str) -> TrainState:
    """The state to continue from: the checkpoint's (with --resume), refused when it was written by another
    number of processes or at another precision; else a fresh one."""
    state = TrainState()
    if resume and (ckpt_dir / "state.json").exists():
        state = load_checkpoint(ckpt_dir, model, optimizer, scheduler, fingerprint)
        if state.processes != world:
            raise MkdError(f"checkpoint {ckpt_dir} was written by a run of {state.processes} process(es), "
                           f"this one has {world}", f"resume with {state.processes}, or start over without --resume")
        if state.precision != precision:
            raise MkdError(f"checkpoint {ckpt_dir} was written at {state.precision}, this run trains at {precision}",
                           f"resume where mixed_precision gives {state.precision}, or start over without --resume")
    state.processes, state.precision = world, precision
    return state


class _Tally:
    """Per-task mean losses and the speed between two log lines, and the batches of each task so far."""

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        self.batches = dict.fromkeys(tasks, 0)
        self._restart(time.perf_counter())

    def _restart(self, now: float) -> None:
        self.loss_sum, self.loss_n = dict.fromkeys(self.tasks, 0.0), dict.fromkeys(self.tasks, 0)
        self.tick, self.examples = now, 0

    def add(self, task: str, loss: float, examples: int) -> None:
        self.loss_sum[task] += loss
        self.loss_n[task] += 1
        self.batches[task] += 1
        self.examples += examples

    def flush(self, step: int, epoch: int, lr: float, bar: Any, logs: _Logs | None) -> None:
        now = time.perf_counter()
        speed = self.examples / max(now - self.tick, 1e-9)
        losses = {t: self.loss_sum[t] / self.loss_n[t] for t in self.tasks if self.loss_n[t]}
        bar.update(step, " ".join(f"{t}={v:.4f}" for t, v in losses.items()) + f" lr={lr:.2e} {speed:.0f} ex/s")
        if logs:
            logs.train({"step": step, "epoch": epoch, "lr": f"{lr:.6g}", "examples_per_s": f"{speed:.1f}",
                        **{f"loss_{t}": f"{losses[t]:.6f}" if t in losses else "" for t in self.tasks},
                        **{f"batches_{t}": self.batches[t] for t in self.tasks}})
        self._restart(now)


class _Saver:
    """When to checkpoint: every `every` steps, at the last step, on early stopping or a signal, and
    every `minutes` of training (so a long evaluation interval still loses little)."""

    def __init__(self, step: int, every: int, minutes: float | None) -> None:
        self.every, self.every_s = every, (minutes or 0) * 60
        self.saved(step)

    def saved(self, step: int) -> None:
        self.step, self.time = step, time.monotonic()

    def due(self, state: TrainState, total: int, stopping: bool) -> bool:
        return (state.step % self.every == 0 or state.step == total or state.stopped_early or stopping
                or (self.every_s > 0 and time.monotonic() - self.time >= self.every_s))


def _schedule(train: dict[str, EncodedSplit], cfg: TrainConfig, world: int,
              seed: int) -> tuple[MultiTaskSampler, int, int]:
    """(sampler, steps per epoch, total steps). One global batch of batch_size * world examples of one
    task per step, split across the processes: N processes at batch_size b train exactly like one
    process at N * b."""
    sampler = MultiTaskSampler({t: d.lengths for t, d in train.items()}, cfg.batch_size * world, cfg.mixing,
                               cfg.mixing_temperature, seed)
    steps_per_epoch = max(1, sampler.steps_per_epoch())
    total = steps_per_epoch * cfg.epochs
    return sampler, steps_per_epoch, min(total, cfg.max_steps) if cfg.max_steps else total


def _update(accelerator: Any, model: torch.nn.Module, optimizer: Any, scheduler: Any, loss: torch.Tensor,
            grad_clip: float | None) -> None:
    accelerator.backward(loss)
    if grad_clip:
        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _diverged(desc: str, loss: torch.Tensor, state: TrainState, task: str, ckpt_dir: Path) -> MkdError:
    kept = f"the last good checkpoint is kept in {ckpt_dir}" if ckpt_dir.exists() else "no checkpoint was written yet"
    return MkdError(f"{desc}: the loss became {loss.item()} at step {state.step + 1} (task {task}); {kept}",
                    "lower the learning rate or enable grad_clip, then rerun with --resume")


def _evaluate(model: torch.nn.Module, specs: dict[str, TaskSpec], dev: dict[str, EncodedSplit], cfg: TrainConfig,
              state: TrainState, epoch: int, main: bool, where: tuple[Any, str, Path], logs: _Logs | None,
              bar: Any) -> dict:
    """Dev metrics of every task; keeps the best weights by macro and counts evaluations since the best
    (early stopping). `where` is (device, precision, best weights path)."""
    device, precision, best_path = where
    result = evaluate_tasks(model, specs, dev, cfg.eval_batch_size, device, precision)
    if logs:
        logs.eval(state.step, epoch, result)
    if state.best_score is None or result["macro"] > state.best_score:
        state.best_score, state.best_step, state.evals_since_best = result["macro"], state.step, 0
        if main:
            save_weights(best_path, model)
    else:
        state.evals_since_best += 1
        if cfg.patience and state.evals_since_best >= cfg.patience:
            state.stopped_early = True
    if main:
        bar.note(f"step {state.step}: dev macro {result['macro']:.2f} (best {state.best_score:.2f})")
    return result


def _fit(
    model: torch.nn.Module,
    specs: dict[str, TaskSpec],
    train: dict[str, EncodedSplit],
    dev: dict[str, EncodedSplit],
    loss_fn: Loss,
    cfg: TrainConfig,
    work_dir: Path,
    seed: int,
    fingerprint: str,
    resume: bool = False,
    desc: str = "train",
    on_step: Callable[[int], None] | None = None,
) -> FitResult:
    """Train `model` in place and leave it holding the best weights found on dev."""
    from accelerate.utils import set_seed

    from mkd.dist import use_cpu

    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir, best_path = work_dir / "checkpoint", work_dir / "best.safetensors"
    set_seed(seed)
    # bf16 runs under our own torch.autocast (CPU or GPU, no loss scaling); fp16 needs Accelerate's scaler
    precision = resolve(cfg.mixed_precision, "cpu" if use_cpu() else "cuda")
    accelerator = make_accelerator("fp16" if precision == "fp16" else "no")
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    sampler, steps_per_epoch, total = _schedule(train, cfg, world, seed)
    optimizer, scheduler = _optimizer(model, cfg, total)
    if main:
        restore_swapped_dir(ckpt_dir)  # killed between the two renames of a checkpoint swap
    accelerator.wait_for_everyone()
    state = _restore(resume, ckpt_dir, model, optimizer, scheduler, fingerprint, world, precision)
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device
    tasks = sorted(train)
    logs = _Logs(work_dir, tasks, state.step) if main else None
    eval_every = cfg.eval_every or steps_per_epoch
    ckpt_every = cfg.checkpoint_every or eval_every
    stream = sampler.iterate(state.epoch, state.position)
    tally, dev_result, start = _Tally(tasks), {}, time.perf_counter()
    earlier, resumed_step = state.seconds, state.step
    bar = progress_bar(desc, total, state.step, enabled=main)
    if state.step and main:
        bar.note(f"resumed from the checkpoint of step {state.step} of {total}")
    model.train()
    stop = current_stop()  # Ctrl-C / SIGTERM (see `fit`): finish the step, checkpoint, then stop
    saver = _Saver(state.step, ckpt_every, cfg.checkpoint_minutes)
    while state.step < total and not state.stopped_early:
        epoch, pos, task, idx = next(stream)
        mine = share(idx, world, rank)
        # Each process's mean loss, weighted by its share of the batch: the gradients Accelerate
        # averages over the processes are then those of the mean loss over the whole batch. A
        # process with no example runs one with weight 0 so that every process takes part.
        weight = len(mine) * world / len(idx)
        batch = {k: v.to(device) for k, v in train[task].collate(mine or idx[:1]).items()}
        with autocast(precision, device):
            outputs = model(task, batch)
        loss = loss_fn(specs[task], outputs.float(), batch)  # the loss itself in fp32
        weighted = loss * weight if world > 1 else loss
        step_loss = accelerator.reduce(weighted.detach(), "mean") if world > 1 else weighted.detach()
        if not torch.isfinite(step_loss):  # the same decision in every process
            bar.close()
            raise _diverged(desc, step_loss, state, task, ckpt_dir)
        _update(accelerator, model, optimizer, scheduler, weighted, cfg.grad_clip)
        state.step, state.epoch, state.position = state.step + 1, epoch, pos + 1
        state.examples_seen += len(idx)
        tally.add(task, float(step_loss), len(idx))
        if on_step:
            on_step(state.step)
        if state.step % cfg.log_every == 0 or state.step == total:
            tally.flush(state.step, epoch, scheduler.get_last_lr()[0], bar, logs)
        if state.step % eval_every == 0 or state.step == total:
            dev_result = _evaluate(accelerator.unwrap_model(model), specs, dev, cfg, state, epoch, main,
                                   (device, precision, best_path), logs, bar)
        if saver.due(state, total, bool(stop)):
            if main and state.step != saver.step:
                state.seconds = round(earlier + time.perf_counter() - start, 2)
                save_checkpoint(ckpt_dir, accelerator.unwrap_model(model), optimizer, scheduler, state, fingerprint)
                note_checkpoint(ckpt_dir, state.step, total, desc)
            saver.saved(state.step)
        accelerator.wait_for_everyone()
        if stop:
            bar.close()
            raise Interrupted(stop.signum or 2)
    bar.close()
    final = accelerator.unwrap_model(model)
    if best_path.exists():
        final.load_state_dict(load_weights(best_path))
    return FitResult(state.best_score, state.best_step, state.step, time.perf_counter() - start,
                     dev_result, state.stopped_early, precision, earlier, resumed_step)

