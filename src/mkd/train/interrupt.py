"""Ctrl-C (SIGINT) and SIGTERM are interruptions, never successes.

During training the first signal is only noted: the loop finishes its current step, saves a checkpoint
(atomically, like every checkpoint) and raises `Interrupted`; a second signal stops at once. Outside
training SIGTERM raises `Interrupted` like Ctrl-C raises KeyboardInterrupt. The CLI turns either into
one line (where the last checkpoint is, the exact command to continue) and exit status 130 (SIGINT) or
143 (SIGTERM), so `mkd run && deploy` never deploys a half-made run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class LastCheckpoint:
    path: Path | None = None
    step: int = 0
    total: int = 0
    desc: str = ""
    signum: int | None = None


LAST = LastCheckpoint()  # the newest checkpoint this process wrote (for the interruption message)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; `signum` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        LAST.signum = signum  # typer keeps only the exit status of an interruption, not the exception


def note_checkpoint(path: Path, step: int, total: int, desc: str) -> None:
    LAST.path, LAST.step, LAST.total, LAST.desc = path, step, total, desc


def _raise(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def install_sigterm() -> None:
    """SIGTERM interrupts like Ctrl-C (Python's default would end the process without a word)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)


class StopFlag:
    """Set by the first SIGINT/SIGTERM; the training loop checks it between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __bool__(self) -> bool:
        return self.signum is not None

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise Interrupted(signum)
        self.signum = signum


_ACTIVE: list[StopFlag] = []


def current_stop() -> StopFlag:
    """The flag of the innermost `deferred_signals` block (one that never sets outside any)."""
    return _ACTIVE[-1] if _ACTIVE else StopFlag()


@contextlib.contextmanager
def deferred_signals() -> Iterator[StopFlag]:
    """Within the block, SIGINT/SIGTERM set the flag instead of raising (main thread only; elsewhere
    the flag simply never sets)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    before = {s: signal.getsignal(s) for s in EXIT_STATUS}
    for s in EXIT_STATUS:
        signal.signal(s, flag._note)
    _ACTIVE.append(flag)
    try:
        yield flag
    finally:
        _ACTIVE.remove(flag)
        for s, handler in before.items():
            signal.signal(s, handler)


RESUMABLE = ("teach", "distill", "finetune", "run")  # commands with --resume


def continue_command(argv: list[str]) -> str:
    """The command line that continues the interrupted one (with --resume where the command has it)."""
    import shlex

    args = [a for a in argv if a != "--restart"]
    command = next((a for a in args if not a.startswith("-")), "")
    if command in RESUMABLE and "--resume" not in args:
        args.append("--resume")
    return " ".join(["mkd", *map(shlex.quote, args)])


def interruption_line(error: BaseException, argv: list[str]) -> tuple[str, int]:
    """The one line a user reads after Ctrl-C or SIGTERM, and the exit status (130 or 143)."""
    signum = getattr(error, "signum", None) or LAST.signum or signal.SIGINT
    name = signal.Signals(signum).name
    if LAST.path is not None:
        where = f"last checkpoint {LAST.path} ({LAST.desc} step {LAST.step} of {LAST.total})"
    else:
        where = "no training checkpoint was written in this run; finished stages are kept"
    return f"interrupted ({name}); {where}; continue with: {continue_command(argv)}", EXIT_STATUS.get(signum, 130)
