"""Blank texts (empty or whitespace only) carry nothing to learn: a task's data drops them with one line
saying how many, or refuses them (recipe key `blank_texts: error`)."""

from __future__ import annotations

from mkd.errors import MkdError
from mkd.tasks.task import Example


def is_blank(example: Example) -> bool:
    """True when any text of the example is empty or only whitespace (half a pair is no pair)."""
    return any(not text.strip() for text in example.texts)


def drop_blank(task: str, splits: dict[str, list[Example]], policy: str = "drop") -> dict[str, list[Example]]:
    """The splits without blank examples; one line says how many went (policy "drop"), or an error
    names the first one (policy "error")."""
    dropped: dict[str, int] = {}
    out: dict[str, list[Example]] = {}
    for name, items in splits.items():
        kept = [e for e in items if not is_blank(e)]
        if len(kept) != len(items):
            dropped[name] = len(items) - len(kept)
            if policy == "error":
                first = next(e for e in items if is_blank(e))
                raise MkdError(f"task {task}: {sum(dropped.values())} blank text(s) in the {name} split "
                               f"(first: example {first.id})",
                               "remove them, or set blank_texts: drop in the recipe to skip them")
        out[name] = kept
    if dropped:
        from mkd import dist
        from mkd.progress import console

        if dist.is_main():
            counts = ", ".join(f"{n} {k}" for k, n in dropped.items())
            console.print(f"{task}: dropped {sum(dropped.values())} blank text(s) ({counts})", highlight=False,
                          markup=False)
    return out
