"""Progress bars (rich) that degrade to quiet whole lines (never wrapped) when output is not a terminal."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def say(line: str) -> None:
    """One line to the user (stderr), from the main process only."""
    from mkd import dist

    if not dist.is_main():
        return
    console.print(line, highlight=False, markup=False, soft_wrap=True)


def _line(text: str) -> None:
    """One whole line, however long: a log file gets no line breaks in the middle of a message (rich
    would wrap it at the 80 columns it assumes when not writing to a terminal), and no markup."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


class _Bar:
    def __init__(self, desc: str, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.desc = desc
        self.total = total
        self.quiet = not enabled
        self.last_line = time.monotonic()
        self.progress: Progress | None = None
        if self.enabled:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                console=console, transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task(desc, total=total, completed=start, info="")

    def update(self, step: int, info: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, info=info)
        elif not self.quiet and (time.monotonic() - self.last_line > 30 or step == self.total):
            self.last_line = time.monotonic()  # not a terminal: a plain line every 30 s
            _line(f"  {self.desc}: step {step}/{self.total} {info}")

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(f"  {self.desc}: {text}")
        else:
            _line(f"  {self.desc}: {text}")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def progress_bar(desc: str, total: int, start: int = 0, enabled: bool = True) -> _Bar:
    return _Bar(desc, total, start, enabled)
