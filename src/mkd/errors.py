"""User-facing errors: one line naming the problem and the fix, exit status 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MkdError(Exception):
    """An error the user can fix. The CLI prints it as one line and exits with status 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = self.problem.rstrip(".")
        if self.fix:
            text += f"; {self.fix.rstrip('.')}"
        return " ".join(text.split())


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The closest valid name to a misspelt one, or None when nothing is close."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    choices = sorted(choices)
    close = nearest(name, choices)
    hint = f"did you mean '{close}'? " if close else ""
    return f"{hint}valid: {', '.join(choices)}"
