"""Deterministic, seeded splitting and subsampling shared by every data source."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def seeded_shuffle(items: Sequence[T], seed: int) -> list[T]:
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def subsample(items: list[T], limit: int | None, seed: int) -> list[T]:
    """At most `limit` items, drawn with a seed, kept in their original order."""
    if limit is None or len(items) <= limit:
        return items
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def split_by_group(
    items: list[T], group: Callable[[T], str], fractions: tuple[float, float], seed: int
) -> tuple[list[T], list[T], list[T]]:
    """Train/dev/test by group (e.g. movie), so that no group is in two splits."""
    groups = sorted({group(x) for x in items})
    groups = seeded_shuffle(groups, seed)
    n_dev = round(len(groups) * fractions[0])
    n_test = round(len(groups) * fractions[1])
    dev_g = set(groups[:n_dev])
    test_g = set(groups[n_dev : n_dev + n_test])
    train = [x for x in items if group(x) not in dev_g and group(x) not in test_g]
    dev = [x for x in items if group(x) in dev_g]
    test = [x for x in items if group(x) in test_g]
    return train, dev, test


def carve(
    items: list[T], n_or_fraction: float, seed: int, group: Callable[[T], str] | None = None
) -> tuple[list[T], list[T]]:
    """Split off a seeded held-out part (a count, or a fraction when < 1); order is kept.

    With `group`, whole groups are held out (seeded group order, until the count is reached), so
    that no group (an SNLI premise, a movie, a QQP question) is on both sides: a held-out set that
    shares groups with train rewards memorising them."""
    n = int(n_or_fraction) if n_or_fraction >= 1 else round(len(items) * n_or_fraction)
    if group is not None:
        return _carve_groups(items, n, seed, group)
    held = set(random.Random(seed).sample(range(len(items)), min(n, len(items))))
    rest = [x for i, x in enumerate(items) if i not in held]
    out = [x for i, x in enumerate(items) if i in held]
    return rest, out


def _carve_groups(
    items: list[T], n: int, seed: int, group: Callable[[T], str]
) -> tuple[list[T], list[T]]:
    keys = [group(x) for x in items]
    sizes: dict[str, int] = {}
    for k in keys:
        sizes[k] = sizes.get(k, 0) + 1
    held: set[str] = set()
    taken = 0
    for k in seeded_shuffle(sorted(sizes), seed):
        if taken >= n:
            break
        held.add(k)
        taken += sizes[k]
    rest = [x for x, k in zip(items, keys, strict=True) if k not in held]
    out = [x for x, k in zip(items, keys, strict=True) if k in held]
    return rest, out


def text_group(text_fields: tuple[str, ...], group_field: str | None) -> Callable[..., str] | None:
    """The group key of examples whose group field is one of their text fields (None: no groups)."""
    if group_field is None or group_field not in text_fields:
        return None
    i = text_fields.index(group_field)
    return lambda ex: " ".join(ex.texts[i].lower().split())  # case and spacing do not make a new group
