"""Crash safety by fault injection: `mkd teach | label | distill` killed with SIGKILL mid-run.

Each stage runs as a user runs it (`python -m mkd ... -c recipe.yaml`) on a tiny recipe: a random
2-layer BERT as the teacher, two synthetic CSV tasks, a BiLSTM student with random embeddings and a
checkpoint every few steps. The process is killed at a random step (seen in its train_log.csv) or
after its first logits shard, then resumed; the result must be bit-for-bit the result of a run that
was never interrupted, and at no point may the run folder hold a damaged file: every .json parses,
every .safetensors and .parquet loads, every .csv has whole rows, and no temporary is left outside
the scratch folder `.work`.

All runs use one thread (OMP_NUM_THREADS=1): the CPU kernels are then deterministic, so weights and
logits are compared exactly (no tolerance).
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from tests.tinyfix import SPECS, make_examples, write_tiny_bert

pytestmark = pytest.mark.slow

STEPS = 48  # 3 epochs of 16 batches (2 tasks x 64 examples / batch 8), teacher and student alike
RECIPE = """\
name: tiny
seed: 3
output_dir: runs
tasks:
  - {name: sent, source: files, train: data/sent_train.csv, dev: data/sent_dev.csv, test: data/sent_test.csv,
     text_fields: [text], type: classification, labels: [neg, pos]}
  - {name: nli, source: files, train: data/nli_train.csv, dev: data/nli_dev.csv, test: data/nli_test.csv,
     text_fields: [a, b], type: classification, labels: ["yes", "no", maybe]}
teacher:
  model: bert
  max_length: 32
  train: {epochs: 3, batch_size: 8, lr: 2.0e-3, checkpoint_every: 3, eval_every: 8, patience: null, log_every: 1}
transfer:
  augment: {enabled: false}
  shard_size: 4
  label_batch_size: 4
student: {type: bilstm_attn, embeddings: random, embedding_dim: 16, hidden_size: 16, max_length: 32}
distill:
  train: {epochs: 3, batch_size: 8, lr: 3.0e-3, checkpoint_every: 3, eval_every: 8, patience: null, log_every: 1}
"""
RUN = Path("runs") / "tiny"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK"))}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "CUDA_VISIBLE_DEVICES": ""}  # the CPU, where the kernels are deterministic


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mkd", *args, "-c", "recipe.yaml"]


def mkd(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command(*args), cwd=folder, env=environment(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def kill_when(folder: Path, args: tuple[str, ...], ready: Callable[[], bool]) -> None:
    """Start `mkd ARGS`, SIGKILL it as soon as `ready()` holds; fail if it ended before that."""
    log = folder / f"{args[0]}.stderr"
    with open(log, "w") as err:  # a file, not a pipe: a full pipe would stall the process
        proc = subprocess.Popen(command(*args), cwd=folder, env=environment(), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if ready():
                    proc.kill()
                    break
                time.sleep(0.002)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    tail = log.read_text()[-2000:]
    assert proc.returncode == -9, f"mkd {args[0]} was not killed mid-run (exit {proc.returncode}): {tail}"


def logged_step(path: Path) -> int:
    """The last step whose row of train_log.csv is complete (0 when there is none)."""
    try:
        lines = path.read_text(encoding="utf-8").split("\n")[1:-1]  # the last piece may be partial
    except (FileNotFoundError, UnicodeDecodeError):
        return 0
    steps = [int(line.split(",", 1)[0]) for line in lines if line.split(",", 1)[0].isdigit()]
    return max(steps, default=0)


def check_run_folder(run: Path, scratch_csv: bool = True) -> None:
    """No damaged file anywhere; temporaries (and a swapped-out folder) only under .work."""
    assert run.is_dir()
    for path in sorted(run.rglob("*")):
        rel = path.relative_to(run)
        in_work = rel.parts[0] == ".work"
        if any(part.endswith((".tmp", ".old")) for part in rel.parts):
            assert in_work, f"leftover temporary outside .work: {rel}"
            continue
        if path.is_dir():
            continue
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            assert load_file(str(path)), rel
        elif path.suffix == ".parquet":
            assert pq.read_table(path).num_rows > 0, rel
        elif path.suffix == ".csv" and (scratch_csv or not in_work):
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            assert rows and all(len(r) == len(rows[0]) for r in rows), f"torn rows in {rel}"


def same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, first {different[0]}"


def same_model(reference: Path, resumed: Path) -> None:
    same_weights(reference / "model.safetensors", resumed / "model.safetensors")
    assert json.loads((reference / "metrics.json").read_text()) == json.loads((resumed / "metrics.json").read_text())
    assert (reference / "eval_log.csv").read_text() == (resumed / "eval_log.csv").read_text()
    with open(resumed / "train_log.csv", newline="") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    assert steps == list(range(1, STEPS + 1)), "the resumed train_log.csv must hold every step exactly once"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def copy_project(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    write_tiny_bert(folder / "bert")
    (folder / "data").mkdir()
    for split, n, seed in (("train", 64, 1), ("dev", 24, 2), ("test", 24, 3)):
        sent = make_examples(SPECS["sent"], n, seed)
        write_csv(folder / "data" / f"sent_{split}.csv", ["text", "label"],
                  [[e.texts[0], SPECS["sent"].labels[e.label]] for e in sent])
        nli = make_examples(SPECS["nli"], n, seed)
        write_csv(folder / "data" / f"nli_{split}.csv", ["a", "b", "label"],
                  [[*e.texts, SPECS["nli"].labels[e.label]] for e in nli])
    (folder / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def taught(template, tmp_path_factory) -> Path:
    """The uninterrupted teacher (and transfer set) of the recipe."""
    folder = copy_project(template, tmp_path_factory.mktemp("taught") / "p")
    mkd(folder, "teach")
    mkd(folder, "augment")
    return folder


@pytest.fixture(scope="module")
def labelled(taught, tmp_path_factory) -> Path:
    """The uninterrupted labelling of the transfer set."""
    folder = copy_project(taught, tmp_path_factory.mktemp("labelled") / "p")
    mkd(folder, "label")
    return folder


def test_teach_killed_at_a_random_step_resumes_to_identical_weights(template, taught, tmp_path):
    folder = copy_project(template, tmp_path / "p")
    k = random.randint(4, STEPS - 8)
    kill_when(folder, ("teach",), lambda: logged_step(folder / RUN / ".work/teacher/train_log.csv") >= k)
    check_run_folder(folder / RUN, scratch_csv=False)
    assert not (folder / RUN / "teacher").exists(), "a killed teach must not leave a teacher folder"
    result = mkd(folder, "teach", "--resume")
    assert "resumed from the checkpoint of step" in result.stderr, (k, result.stderr)
    check_run_folder(folder / RUN)
    same_model(taught / RUN / "teacher", folder / RUN / "teacher")


def shard_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {f"{p.parent.name}/{p.name}": (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(folder.glob("*/logits-*.parquet"))}


def test_label_killed_after_its_first_shard_keeps_finished_shards(taught, labelled, tmp_path):
    folder = copy_project(taught, tmp_path / "p")
    transfer = folder / RUN / "transfer"
    kill_when(folder, ("label",), lambda: any(transfer.glob("*/logits-*.parquet")))
    check_run_folder(folder / RUN, scratch_csv=False)
    finished = shard_stamps(transfer)
    every = shard_stamps(labelled / RUN / "transfer")
    assert finished and len(finished) < len(every), (len(finished), len(every))
    for task in ("sent", "nli"):
        assert "label_fingerprint" not in json.loads((transfer / task / "manifest.json").read_text())
    mkd(folder, "label")
    after = shard_stamps(transfer)
    assert after.keys() == every.keys()
    assert {k: after[k] for k in finished} == finished, "a finished logits shard was written again"
    for name in every:
        ours, theirs = pq.read_table(transfer / name), pq.read_table(labelled / RUN / "transfer" / name)
        assert ours.equals(theirs), f"{name}: logits differ from an uninterrupted labelling"
    for task in ("sent", "nli"):
        ours = json.loads((transfer / task / "manifest.json").read_text())
        theirs = json.loads((labelled / RUN / "transfer" / task / "manifest.json").read_text())
        assert ours == theirs
    check_run_folder(folder / RUN)


def test_distill_killed_at_a_random_step_resumes_to_identical_weights(labelled, tmp_path):
    reference = copy_project(labelled, tmp_path / "reference")
    mkd(reference, "distill")
    folder = copy_project(labelled, tmp_path / "p")
    k = random.randint(4, STEPS - 8)
    kill_when(folder, ("distill",), lambda: logged_step(folder / RUN / ".work/distill-student/train_log.csv") >= k)
    check_run_folder(folder / RUN, scratch_csv=False)
    assert not (folder / RUN / "student").exists()
    result = mkd(folder, "distill", "--resume")
    assert "resumed from the checkpoint of step" in result.stderr, (k, result.stderr)
    check_run_folder(folder / RUN)
    same_model(reference / RUN / "student", folder / RUN / "student")
