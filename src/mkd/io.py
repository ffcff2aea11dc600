"""Atomic file output: write to a temporary name beside the target, then rename.

A crash (or a full disk) never leaves a half-written file under the final name. A temporary name
carries the writer's process id and host (`.<name>.<pid>@<host>.<random>.tmp`), so the next write
of the same target removes what a killed writer on this machine left behind.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HOST = socket.gethostname().replace("/", "_")


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}@{_HOST}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: Path, folder: bool = False) -> None:
    """Give a temporary the mode a plain open()/mkdir() would have: tempfile makes them private
    (0600/0700), but outputs of a run are ordinary files (0644/0755 under umask 022)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def open_up(path: Path) -> None:
    """After a writer is done with a temporary, give it (and all it holds) at least the access the umask
    grants: some writers make private files of their own (safetensors' save_file writes 0600, whatever
    mode the file had). Bits are only added, so a mode a writer chose on purpose (assets share their
    folder's) stays."""
    mask = _umask()
    if not path.is_dir():
        _widen(path, 0o666 & ~mask)
        return
    for top, _, files in os.walk(path):
        _widen(Path(top), 0o777 & ~mask)
        for name in files:
            _widen(Path(top) / name, 0o666 & ~mask)


def _widen(entry: Path, bits: int) -> None:
    if entry.is_symlink():
        return
    mode = stat.S_IMODE(entry.stat().st_mode)
    if mode | bits != mode:
        os.chmod(entry, mode | bits)


def remove_stale_temporaries(target: str | Path) -> None:
    """Delete temporaries of `target` whose writer (a process of this machine) no longer runs."""
    target = Path(target)
    lead = f".{target.name}."
    for found in target.parent.glob(f"{glob.escape(lead)}*@*.tmp"):
        pid, _, rest = found.name[len(lead):].partition("@")
        if not pid.isdigit() or rest.rsplit(".", 2)[0] != _HOST or _alive(int(pid)):
            continue
        if found.is_dir():
            shutil.rmtree(found, ignore_errors=True)
        else:
            found.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto the target on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    honour_umask(tmp_path)
    try:
        yield tmp_path
        open_up(tmp_path)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _old_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def restore_swapped_dir(target: str | Path) -> None:
    """Finish a folder swap that a crash cut short: between its two renames the previous folder
    comes back; after them, the previous folder (already replaced) is removed."""
    target = Path(target)
    old = _old_name(target)
    if not old.is_dir():
        return
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(old, target)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a whole folder under a temporary name; swap it into place on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    restore_swapped_dir(target)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), suffix=".tmp", dir=target.parent))
    honour_umask(tmp, folder=True)
    try:
        yield tmp
        open_up(tmp)
        if target.exists():
            old = _old_name(target)
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
