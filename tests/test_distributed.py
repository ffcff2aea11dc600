"""Several processes through Accelerate (`accelerate launch`, two CPU processes over gloo).

What is equal. Each training step takes ONE task-homogeneous global batch of batch_size x world
examples and splits it into contiguous parts, one per process; each process weights its mean loss
by its share of the batch, so the gradients Accelerate averages are those of the mean loss over the
whole batch. Two processes at batch_size b therefore take the same steps, on the same batches, with
the same learning rates, as one process at batch_size 2b: the weights differ only by float rounding
(padding to a part's own longest text and the sums in another order), about 1e-7 here. Tolerances:
weights within 1e-5, logged losses within 1e-5, dev and test metrics equal. (With dropout each
process draws its own masks, so runs then agree in distribution only: the tiny teacher here has none.)

Labelling: process r labels the shards i with i % world == r and the main process writes the
manifests; the logits are exactly those of one process. Only the main process writes checkpoints,
best weights, logs, metrics and model folders: a wrapper records every file each process writes.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from tests.test_faults import RUN, copy_project, environment, write_csv
from tests.tinyfix import SPECS, make_examples, write_tiny_bert

pytestmark = pytest.mark.slow

B = 8  # batch_size per process; one process gets 2 * B
RECIPE = """\
name: tiny
seed: 5
output_dir: runs
tasks:
  - {name: sent, source: files, train: data/sent_train.csv, dev: data/sent_dev.csv, test: data/sent_test.csv,
     text_fields: [text], type: classification, labels: [neg, pos]}
  - {name: nli, source: files, train: data/nli_train.csv, dev: data/nli_dev.csv, test: data/nli_test.csv,
     text_fields: [a, b], type: classification, labels: ["yes", "no", maybe]}
teacher:
  model: bert
  max_length: 32
  dropout: 0.0
  # fp32: N processes at b equal one at N * b up to fp32 rounding only (bf16 rounds each part's sums)
  train: {epochs: 2, batch_size: 8, lr: 2.0e-3, eval_every: 4, patience: null, log_every: 1, mixed_precision: "no"}
transfer:
  augment: {enabled: false}
  shard_size: 7
  label_batch_size: 4
"""
PROBE = """\
import builtins, os, sys

log = open(os.environ["MKD_WRITE_LOG"] + "." + os.environ.get("RANK", "0"), "a", encoding="utf-8")
real_replace, real_open = os.replace, builtins.open


def replace(src, dst, *args, **kwargs):
    log.write(os.path.abspath(os.fspath(dst)) + "\\n")
    log.flush()
    return real_replace(src, dst, *args, **kwargs)


def opener(file, mode="r", *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
        log.write(os.path.abspath(os.fspath(file)) + "\\n")
        log.flush()
    return real_open(file, mode, *args, **kwargs)


os.replace, builtins.open = replace, opener
from mkd.cli import main

sys.argv[0] = "mkd"
main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(folder: Path, *args: str, processes: int = 1) -> subprocess.CompletedProcess[str]:
    """`mkd ARGS -c recipe.yaml`, alone or under `accelerate launch` with a write-recording wrapper."""
    env = {**environment(), "HF_HOME": str(folder / ".hf"), "MKD_WRITE_LOG": str(folder / "writes"),
           "ACCELERATE_USE_CPU": "true"}  # CPU processes over gloo, even on a machine with GPUs
    probe = folder / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    if processes == 1:
        cmd = [sys.executable, str(probe)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
               str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), str(probe)]
    result = subprocess.run([*cmd, *args, "-c", "recipe.yaml"], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (args, processes, result.stdout[-3000:], result.stderr[-3000:])
    return result


def writes(folder: Path, rank: int) -> list[Path]:
    """Files process `rank` opened for writing or renamed into place, inside the run folder."""
    path = folder / f"writes.{rank}"
    run_dir = (folder / RUN).resolve()
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [Path(p) for p in lines if Path(p).is_relative_to(run_dir)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    write_tiny_bert(folder / "bert")
    config = json.loads((folder / "bert" / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # see the module docstring
    (folder / "bert" / "config.json").write_text(json.dumps(config))
    (folder / "data").mkdir()
    for split, n, seed in (("train", 60, 1), ("dev", 30, 2), ("test", 30, 3)):
        write_csv(folder / "data" / f"sent_{split}.csv", ["text", "label"],
                  [[e.texts[0], SPECS["sent"].labels[e.label]] for e in make_examples(SPECS["sent"], n, seed)])
        write_csv(folder / "data" / f"nli_{split}.csv", ["a", "b", "label"],
                  [[*e.texts, SPECS["nli"].labels[e.label]] for e in make_examples(SPECS["nli"], n, seed)])
    (folder / "recipe.yaml").write_text(RECIPE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def alone(template, tmp_path_factory) -> Path:
    """One process at batch_size 2B: teach, augment, label."""
    folder = copy_project(template, tmp_path_factory.mktemp("alone") / "p")
    run(folder, "teach", "--set", f"teacher.train.batch_size={2 * B}")
    run(folder, "augment")
    run(folder, "label")
    return folder


def log_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_processes_train_like_one_with_the_same_global_batch(template, alone, tmp_path):
    folder = copy_project(template, tmp_path / "p")
    result = run(folder, "teach", "--set", f"teacher.train.batch_size={B}", processes=2)
    one, two = alone / RUN / "teacher", folder / RUN / "teacher"
    assert (result.stdout + result.stderr).count("teach: wrote") == 1  # the main process reports
    wa, wb = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert wa.keys() == wb.keys()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst <= 1e-5, f"weights differ by {worst}"
    start = load_file(str(template / "bert" / "model.safetensors"))
    assert sum(not torch.equal(v, wa[f"encoder.{k}"]) for k, v in start.items()) > len(start) // 2, "no training"
    ma, mb = json.loads((one / "metrics.json").read_text()), json.loads((two / "metrics.json").read_text())
    assert ma["splits"] == mb["splits"]
    assert log_rows(one / "eval_log.csv") == log_rows(two / "eval_log.csv")
    ta, tb = log_rows(one / "train_log.csv"), log_rows(two / "train_log.csv")
    assert [r["step"] for r in ta] == [r["step"] for r in tb] and len(ta) == 16  # 2 epochs x 2 tasks x ceil(60 / 16)
    for ra, rb in zip(ta, tb, strict=True):
        assert ra["lr"] == rb["lr"]
        assert {k: ra[k] for k in ra if k.startswith("batches")} == {k: rb[k] for k in rb if k.startswith("batches")}
        for key in (k for k in ra if k.startswith("loss_") and ra[k]):
            assert abs(float(ra[key]) - float(rb[key])) <= 1e-5, (ra, rb)
    assert writes(folder, 0), "the write recorder saw nothing"
    assert writes(folder, 1) == [], f"process 1 wrote into the run folder: {writes(folder, 1)[:3]}"
    assert not (folder / RUN / ".work" / "teacher").exists()  # a finished stage drops its scratch (issue 15)


def test_two_processes_label_exactly_like_one(alone, tmp_path):
    folder = copy_project(alone, tmp_path / "p")
    for task in ("sent", "nli"):
        for path in (folder / RUN / "transfer" / task).glob("logits-*.parquet"):
            path.unlink()
    (folder / "writes.0").unlink()
    run(folder, "label", processes=2)
    for task in ("sent", "nli"):
        ours, theirs = folder / RUN / "transfer" / task, alone / RUN / "transfer" / task
        manifest = json.loads((ours / "manifest.json").read_text())
        assert manifest == json.loads((theirs / "manifest.json").read_text())
        assert len(manifest["shards"]) == 9  # 60 examples in shards of 7: both processes had work
        for i in range(len(manifest["shards"])):
            name = f"logits-{i:05d}.parquet"
            assert pq.read_table(ours / name).equals(pq.read_table(theirs / name)), f"{task}/{name}"
    second = writes(folder, 1)
    assert second, "process 1 labelled nothing"
    assert all(p.name.startswith("logits-") and int(p.stem.split("-")[1]) % 2 == 1 for p in second), second
    assert not [p for p in writes(folder, 0) if p.name.startswith("logits-") and int(p.stem.split("-")[1]) % 2]


def test_bf16_mixed_precision_trains_on_cpu(template, tmp_path):
    folder = copy_project(template, tmp_path / "p")
    run(folder, "teach", "--set", "teacher.train.mixed_precision=bf16", "--set", "teacher.train.epochs=3")
    teacher = folder / RUN / "teacher"
    rows = log_rows(teacher / "train_log.csv")
    for task in ("sent", "nli"):
        losses = [float(r[f"loss_{task}"]) for r in rows if r[f"loss_{task}"]]
        first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
        assert last < 0.9 * first, (task, losses)
    weights = load_file(str(teacher / "model.safetensors"))
    assert all(v.dtype == torch.float32 for v in weights.values())  # bf16 computes; weights stay fp32
    assert json.loads((teacher / "metrics.json").read_text())["macro"] > 0
    assert os.path.getsize(teacher / "model.safetensors") > 0
