"""The multi-task batch sampler of MKD.md: task-homogeneous batches mixed across tasks.

Policies:
- proportional (the paper): each epoch, every task's training set is cut into batches and all
  batches of all tasks are shuffled together, so a task is drawn in proportion to its size;
- temperature: each step draws a task with p_t ~ n_t^(1/tau) (tau=1 is proportional in
  expectation, large tau tends to uniform); the epoch has as many steps as the proportional one;
- uniform: every task equally often.
Within a task, batches are length-bucketed: shuffled, then sorted by length inside chunks of
`bucket` batches, so a batch holds similar lengths yet the order stays random.

The plan of an epoch is a pure function of (seed, epoch), so a run resumes at (epoch, position)
and draws exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Batch = tuple[str, list[int]]


@dataclass
class MultiTaskSampler:
    lengths: dict[str, list[int]]
    batch_size: int
    policy: str = "proportional"
    temperature: float = 2.0
    seed: int = 13
    bucket: int = 50

    def __post_init__(self) -> None:
        if self.policy not in ("proportional", "temperature", "uniform"):
            raise ValueError(f"unknown mixing policy {self.policy}")
        self.tasks = sorted(self.lengths)

    def _rng(self, epoch: int, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, salt])

    def task_batches(self, task: str, rng: np.random.Generator) -> list[list[int]]:
        """One pass over a task's examples as length-bucketed batches, in random order."""
        lengths = self.lengths[task]
        order = rng.permutation(len(lengths))
        chunk = self.batch_size * self.bucket
        batches: list[list[int]] = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk].tolist(), key=lambda i: lengths[i])
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        perm = rng.permutation(len(batches))
        return [batches[i] for i in perm]

    def probabilities(self) -> dict[str, float]:
        sizes = np.array([len(self.lengths[t]) for t in self.tasks], dtype=np.float64)
        if self.policy == "uniform":
            p = np.ones_like(sizes)
        elif self.policy == "temperature":
            p = sizes ** (1.0 / self.temperature)
        else:
            p = sizes
        p = p / p.sum()
        return dict(zip(self.tasks, p.tolist(), strict=True))

    def steps_per_epoch(self) -> int:
        return sum(math.ceil(len(self.lengths[t]) / self.batch_size) for t in self.tasks)

    def epoch(self, epoch: int) -> list[Batch]:
        rng = self._rng(epoch)
        if self.policy == "proportional":
            plan = [(t, b) for t in self.tasks for b in self.task_batches(t, rng)]
            perm = rng.permutation(len(plan))
            return [plan[i] for i in perm]
        probs = self.probabilities()
        draws = rng.choice(len(self.tasks), size=self.steps_per_epoch(), p=[probs[t] for t in self.tasks])
        streams: dict[str, list[list[int]]] = {t: [] for t in self.tasks}
        refills = dict.fromkeys(self.tasks, 0)
        plan = []
        for d in draws.tolist():
            task = self.tasks[d]
            if not streams[task]:
                refills[task] += 1
                streams[task] = self.task_batches(task, self._rng(epoch, 1 + d * 100003 + refills[task]))
            plan.append((task, streams[task].pop()))
        return plan

    def iterate(self, start_epoch: int = 0, start_position: int = 0):
        """Yield (epoch, position, task, indices) forever, from a resume point."""
        epoch, position = start_epoch, start_position
        while True:
            plan = self.epoch(epoch)
            for pos in range(position, len(plan)):
                task, idx = plan[pos]
                yield epoch, pos, task, idx
            epoch, position = epoch + 1, 0
