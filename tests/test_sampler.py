"""The multi-task sampler: mixing policies, coverage, length bucketing, determinism, resume."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from mkd.data.sampler import MultiTaskSampler

POLICIES = ("proportional", "temperature", "uniform")
SIZES = {"big": 1200, "mid": 300, "small": 60}  # multiples of the batch size: batch share == example share
BS = 12


def random_lengths(sizes: dict[str, int], seed: int = 0) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {t: rng.integers(1, 200, size=n).tolist() for t, n in sizes.items()}


def make(policy: str = "proportional", sizes=SIZES, **kw) -> MultiTaskSampler:
    return MultiTaskSampler(random_lengths(sizes), kw.pop("batch_size", BS), policy=policy, **kw)


def batch_counts(sampler: MultiTaskSampler, epochs: int) -> Counter:
    return Counter(task for e in range(epochs) for task, _ in sampler.epoch(e))


# --------------------------------------------------------------------------- mixing


def test_probabilities_by_policy():
    n = np.array([1200, 300, 60], dtype=float)  # big, mid, small
    prop = make("proportional").probabilities()
    assert [prop[t] for t in ("big", "mid", "small")] == pytest.approx(list(n / n.sum()))
    temp = make("temperature", temperature=2.0).probabilities()
    root = np.sqrt(n)
    assert [temp[t] for t in ("big", "mid", "small")] == pytest.approx(list(root / root.sum()))
    uni = make("uniform").probabilities()
    assert list(uni.values()) == pytest.approx([1 / 3] * 3)
    # temperature flattens: small tasks gain, the big one loses
    assert prop["small"] < temp["small"] < uni["small"]
    assert prop["big"] > temp["big"] > uni["big"]
    # tau = 1 is proportional
    assert make("temperature", temperature=1.0).probabilities() == pytest.approx(prop)


def test_proportional_mix_is_exact_every_epoch():
    sampler = make("proportional")
    probs = sampler.probabilities()
    for e in range(3):
        plan = sampler.epoch(e)
        assert len(plan) == sampler.steps_per_epoch() == (1200 + 300 + 60) // BS
        counts = Counter(task for task, _ in plan)
        examples = Counter()
        for task, idx in plan:
            examples[task] += len(idx)
        for t in SIZES:
            assert counts[t] == SIZES[t] // BS
            assert examples[t] / sum(examples.values()) == pytest.approx(probs[t])


@pytest.mark.parametrize(("policy", "temperature"), [("temperature", 2.0), ("temperature", 4.0), ("uniform", 2.0)])
def test_sampled_mix_matches_probabilities(policy, temperature):
    sampler = make(policy, temperature=temperature)
    epochs = 40  # 40 * 130 = 5200 draws: a 0.03 tolerance is more than 4 standard deviations
    counts = batch_counts(sampler, epochs)
    total = sum(counts.values())
    assert total == epochs * sampler.steps_per_epoch()
    for t, p in sampler.probabilities().items():
        assert counts[t] / total == pytest.approx(p, abs=0.03), t


def test_temperature_epoch_has_the_proportional_number_of_steps():
    assert len(make("temperature").epoch(0)) == len(make("proportional").epoch(0))
    assert len(make("uniform").epoch(3)) == make("proportional").steps_per_epoch()


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown mixing policy"):
        make("roundrobin")


# --------------------------------------------------------------------------- coverage and batches


def test_proportional_sees_every_example_exactly_once_per_epoch():
    sizes = {"a": 1001, "b": 37, "c": 5}  # not multiples of the batch size
    sampler = make("proportional", sizes=sizes, batch_size=16, bucket=4)
    assert sampler.steps_per_epoch() == 63 + 3 + 1
    for e in range(3):
        seen = {t: [] for t in sizes}
        for task, idx in sampler.epoch(e):
            seen[task] += idx
        for t, n in sizes.items():
            assert sorted(seen[t]) == list(range(n)), (e, t)


@pytest.mark.parametrize("policy", ["temperature", "uniform"])
def test_drawn_policies_cover_a_task_before_repeating_it(policy):
    """Within an epoch, a task's first ceil(n / batch) batches are one full pass over it."""
    sizes = {"a": 240, "b": 36}
    sampler = make(policy, sizes=sizes, batch_size=12)
    plan = sampler.epoch(0)
    for t, n in sizes.items():
        batches = [idx for task, idx in plan if task == t]
        first_pass = [i for idx in batches[: n // 12] for i in idx]
        if len(batches) >= n // 12:
            assert sorted(first_pass) == list(range(n)), t
        else:
            assert len(set(first_pass)) == len(first_pass), t


@pytest.mark.parametrize("policy", POLICIES)
def test_batches_are_task_homogeneous_and_well_formed(policy):
    sizes = {"a": 100, "b": 7, "c": 1000}
    sampler = make(policy, sizes=sizes, batch_size=8, bucket=3)
    for task, idx in sampler.epoch(0):
        assert task in sizes
        assert 1 <= len(idx) <= 8
        assert len(set(idx)) == len(idx)
        assert all(isinstance(i, int) and 0 <= i < sizes[task] for i in idx)
    # every batch holds indices of exactly one task: a batch of "b" never exceeds b's 7 examples
    assert all(max(idx) < 7 for task, idx in sampler.epoch(1) if task == "b")


def spread(lengths: list[int], batches: list[list[int]]) -> float:
    """Mean within-batch range of lengths (max - min)."""
    return float(np.mean([np.ptp([lengths[i] for i in b]) for b in batches if len(b) > 1]))


def test_length_bucketing_makes_batches_homogeneous_in_length():
    lengths = random_lengths({"t": 4000}, seed=1)
    sampler = MultiTaskSampler(lengths, batch_size=16, bucket=50, seed=3)
    bucketed = [idx for _, idx in sampler.epoch(0)]
    order = np.random.default_rng(5).permutation(4000).tolist()
    shuffled = [order[i : i + 16] for i in range(0, 4000, 16)]
    assert spread(lengths["t"], bucketed) < 0.2 * spread(lengths["t"], shuffled)
    # without buckets (one batch per chunk) nothing is gained: the control is meaningful
    plain = MultiTaskSampler(lengths, batch_size=16, bucket=1, seed=3)
    assert spread(lengths["t"], [idx for _, idx in plain.epoch(0)]) > 0.7 * spread(lengths["t"], shuffled)


def test_bucketed_batches_still_come_in_random_order():
    lengths = random_lengths({"t": 4000}, seed=1)
    plan = MultiTaskSampler(lengths, batch_size=16, bucket=50, seed=3).epoch(0)
    means = [np.mean([lengths["t"][i] for i in idx]) for _, idx in plan]
    rank_corr = np.corrcoef(np.argsort(np.argsort(means)), np.arange(len(means)))[0, 1]
    assert abs(rank_corr) < 0.3  # not sorted by length across the epoch


# --------------------------------------------------------------------------- determinism and resume


@pytest.mark.parametrize("policy", POLICIES)
def test_same_seed_same_plan(policy):
    a, b = make(policy, seed=21), make(policy, seed=21)
    for e in range(3):
        assert a.epoch(e) == b.epoch(e)
    assert a.epoch(0) == a.epoch(0)  # a pure function of (seed, epoch), no hidden state


@pytest.mark.parametrize("policy", POLICIES)
def test_other_seed_or_epoch_other_order(policy):
    base = make(policy, seed=21).epoch(0)
    assert make(policy, seed=22).epoch(0) != base
    assert make(policy, seed=21).epoch(1) != base


@pytest.mark.parametrize("policy", POLICIES)
def test_resume_yields_exactly_the_tail(policy):
    sampler = make(policy, sizes={"a": 120, "b": 50, "c": 13}, batch_size=8, seed=5)
    steps = sampler.steps_per_epoch()
    horizon = 3 * steps
    full = list(itertools.islice(sampler.iterate(), horizon))
    assert [(e, p) for e, p, _, _ in full[: steps + 1]] == [(0, p) for p in range(steps)] + [(1, 0)]
    for epoch, position in [(0, 0), (0, 1), (0, 9), (0, steps - 1), (1, 0), (1, 4), (2, steps - 1)]:
        start = epoch * steps + position
        fresh = make(policy, sizes={"a": 120, "b": 50, "c": 13}, batch_size=8, seed=5)  # a new process
        resumed = list(itertools.islice(fresh.iterate(epoch, position), horizon - start))
        assert resumed == full[start:], (epoch, position)


def test_iterate_runs_past_epochs():
    sampler = make("proportional", sizes={"a": 10}, batch_size=4)
    got = list(itertools.islice(sampler.iterate(), 7))
    assert [(e, p) for e, p, _, _ in got] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]
