"""Checkpoints by time as well as by steps, and a signal inside `fit` finishing its step first."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mkd.train.interrupt import Interrupted
from mkd.train.loop import fit
from mkd.train.losses import gold_loss
from tests.test_teacher_loop import _cfg, _setup
from tests.tinyfix import write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tinybert"), hidden=16)


def _checkpoint_step(work) -> int | None:
    path = work / "checkpoint" / "state.json"
    return json.loads(path.read_text())["train"]["step"] if path.is_file() else None


@pytest.mark.parametrize("minutes", [None, 0.002])
def test_checkpoints_are_also_written_by_time(bert_dir, tmp_path, minutes):
    seen: dict[int, int | None] = {}
    work = tmp_path / "w"

    def watch(step: int) -> None:  # runs inside step `step`, before that step's checkpoint decision
        seen[step] = _checkpoint_step(work)
        time.sleep(0.15)  # 0.002 minutes = 0.12 s: every step is due by time

    model, train, dev = _setup(bert_dir, n_train=32)
    cfg = _cfg(epochs=1, eval_every=1000, checkpoint_every=1000, checkpoint_minutes=minutes)
    fit(model, {"sent": model.specs["sent"]}, {"sent": train["sent"]}, {"sent": dev["sent"]}, gold_loss, cfg,
        work, seed=0, fingerprint="f", on_step=watch)
    if minutes is None:
        assert set(seen.values()) == {None}, seen  # only the final checkpoint, after the last step
    else:
        assert all(seen[s] == s - 1 for s in seen if s > 1), seen


def test_a_signal_during_fit_finishes_the_step_and_checkpoints_it(bert_dir, tmp_path):
    work = tmp_path / "w"

    def interrupt(step: int) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # noted by the loop, not raised mid-step

    model, train, dev = _setup(bert_dir, n_train=32)
    cfg = _cfg(epochs=2, eval_every=1000, checkpoint_every=1000, checkpoint_minutes=None)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        fit(model, {"sent": model.specs["sent"]}, {"sent": train["sent"]}, {"sent": dev["sent"]}, gold_loss, cfg,
            work, seed=0, fingerprint="f", on_step=interrupt)
    assert info.value.signum == signal.SIGTERM and _checkpoint_step(work) == 3
    assert signal.getsignal(signal.SIGTERM) == before, "fit must restore the signal handlers"
