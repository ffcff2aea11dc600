"""Ctrl-C and SIGTERM are interruptions: a real `mkd run` subprocess gets a real signal mid-training, says
where its checkpoint is and how to continue, exits 130 (SIGINT) or 143 (SIGTERM), and the continued run
ends bit-identical to a run that was never interrupted (OMP_NUM_THREADS=1: deterministic kernels)."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_faults import RECIPE, RUN, STEPS, command, copy_project, environment, logged_step, mkd, same_model
from tests.tinyfix import SPECS, make_examples

pytestmark = pytest.mark.slow

RUN_RECIPE = RECIPE + "bench: {rounds: 1, batch_sizes: [1, 8], examples: 8}\nbaselines: []\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    from tests.test_faults import write_csv, write_tiny_bert

    folder = tmp_path_factory.mktemp("project")
    write_tiny_bert(folder / "bert")
    (folder / "data").mkdir()
    for split, n, seed in (("train", 64, 1), ("dev", 24, 2), ("test", 24, 3)):
        write_csv(folder / "data" / f"sent_{split}.csv", ["text", "label"],
                  [[e.texts[0], SPECS["sent"].labels[e.label]] for e in make_examples(SPECS["sent"], n, seed)])
        write_csv(folder / "data" / f"nli_{split}.csv", ["a", "b", "label"],
                  [[*e.texts, SPECS["nli"].labels[e.label]] for e in make_examples(SPECS["nli"], n, seed)])
    (folder / "recipe.yaml").write_text(RUN_RECIPE, encoding="utf-8")
    return folder


def signal_when(folder: Path, args: tuple[str, ...], log: Path, step: int, signum: int) -> tuple[int, str]:
    """Start `mkd ARGS`, send `signum` once `log` shows `step`; (exit status, stderr)."""
    err_path = folder / "signal.stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(command(*args), cwd=folder, env=environment(), stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 300
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if logged_step(log) >= step:
                    proc.send_signal(signum)
                    break
                time.sleep(0.002)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, err_path.read_text()


def test_sigint_and_sigterm_stop_mkd_run_and_resume_bit_identical(project, tmp_path):
    reference = copy_project(project, tmp_path / "reference")
    mkd(reference, "run")
    assert not (reference / RUN / ".work" / "teacher").exists(), "a finished stage keeps no scratch folder"
    folder = copy_project(project, tmp_path / "p")

    code, err = signal_when(folder, ("run",), folder / RUN / ".work/teacher/train_log.csv",
                            random.randint(4, STEPS - 8), signal.SIGINT)
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted (SIGINT); last checkpoint runs/tiny/.work/teacher/checkpoint"), last
    assert last.endswith("continue with: mkd run -c recipe.yaml --resume"), last
    assert not (folder / RUN / "teacher").exists()

    code, err = signal_when(folder, ("run", "--resume"), folder / RUN / ".work/distill-student/train_log.csv",
                            random.randint(4, STEPS - 8), signal.SIGTERM)
    assert code == 143, err
    assert "resumed from the checkpoint of step" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted (SIGTERM); last checkpoint runs/tiny/.work/distill-student/checkpoint")
    assert last.endswith("continue with: mkd run --resume -c recipe.yaml"), last  # the user's own command line

    result = mkd(folder, "run")  # no --resume: the unfinished checkpoint is resumed by default, and said so
    assert "distill-student: resuming the unfinished checkpoint of step" in result.stderr, result.stderr
    for model in ("teacher", "student"):
        same_model(reference / RUN / model, folder / RUN / model)
    assert not (folder / RUN / ".work" / "distill-student").exists()


def test_restart_discards_an_unfinished_checkpoint(project, tmp_path):
    folder = copy_project(project, tmp_path / "p")
    code, _ = signal_when(folder, ("teach",), folder / RUN / ".work/teacher/train_log.csv", 6, signal.SIGINT)
    assert code == 130
    result = mkd(folder, "teach", "--restart", "--set", "teacher.train.max_steps=8")
    assert "starting over (--restart)" in result.stderr, result.stderr
    assert "resumed from" not in result.stderr
