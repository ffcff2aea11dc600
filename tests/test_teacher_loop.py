"""The teacher on the one training loop: learning, save/load, exact resume, NaN guard."""

from __future__ import annotations

import pytest
import torch

from mkd.config import TrainConfig
from mkd.data.evaluate import evaluate_tasks, predict
from mkd.errors import MkdError
from mkd.models.loading import load_model
from mkd.models.teacher import TeacherModel
from mkd.train.loop import fit
from mkd.train.losses import gold_loss
from tests.tinyfix import SPECS, make_examples, write_tiny_bert


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tinybert"))


def _setup(bert_dir, n_train=240, seed=0):
    torch.manual_seed(seed)
    model = TeacherModel.from_pretrained(str(bert_dir), SPECS, max_length=32, dropout=0.1)
    train = {t: model.encode(s, make_examples(s, n_train, 1)) for t, s in SPECS.items()}
    dev = {t: model.encode(s, make_examples(s, 90, 2)) for t, s in SPECS.items()}
    return model, train, dev


def _cfg(**kw):
    base = dict(epochs=4, batch_size=16, lr=2e-3, warmup_ratio=0.1, patience=None, log_every=5)
    base.update(kw)
    return TrainConfig(**base)


def test_teacher_learns_all_three_task_kinds(bert_dir, tmp_path):
    model, train, dev = _setup(bert_dir)
    before = evaluate_tasks(model, SPECS, dev)
    result = fit(model, SPECS, train, dev, gold_loss, _cfg(), tmp_path / "w", seed=0, fingerprint="f")
    after = evaluate_tasks(model, SPECS, dev, precision=result.precision)  # the loop evaluates at its precision
    assert after["tasks"]["sent"]["accuracy"] > 85, after
    assert after["tasks"]["nli"]["accuracy"] > 70, after  # chance is 33
    assert after["tasks"]["score"]["pearson"] > 70, after
    assert after["macro"] > before["macro"] + 20
    assert result.best_score == pytest.approx(after["macro"])
    rows = (tmp_path / "w" / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    first, last = dict(zip(header, rows[1].split(","), strict=True)), dict(
        zip(header, rows[-1].split(","), strict=True))
    assert float(last["loss_sent"]) < 0.5 * float(first["loss_sent"])
    assert int(last["batches_nli"]) > 0 and "macro" in (tmp_path / "w" / "eval_log.csv").read_text()


def test_save_then_load_gives_identical_logits(bert_dir, tmp_path):
    model, _, dev = _setup(bert_dir)
    model.save(tmp_path / "teacher")
    loaded = load_model(tmp_path / "teacher")
    for task, data in dev.items():
        assert torch.equal(torch.from_numpy(predict(model, task, data)), torch.from_numpy(predict(loaded, task, data)))


def test_model_without_the_recipes_task_heads_is_refused(bert_dir, tmp_path):
    model, _, _ = _setup(bert_dir)
    model.save(tmp_path / "teacher")
    with pytest.raises(MkdError, match="no head for task"):
        load_model(tmp_path / "teacher", tasks=["sent", "qqp"])


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_identical_weights(bert_dir, tmp_path):
    cfg = _cfg(epochs=2, eval_every=7, checkpoint_every=3)
    model, train, dev = _setup(bert_dir, n_train=64)
    fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "a", seed=5, fingerprint="f")
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    def stop_at_8(step):
        if step == 8:
            raise Interrupt

    model, train, dev = _setup(bert_dir, n_train=64)
    with pytest.raises(Interrupt):
        fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "b", seed=5, fingerprint="f", on_step=stop_at_8)
    model, train, dev = _setup(bert_dir, n_train=64)
    result = fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "b", seed=5, fingerprint="f", resume=True)
    assert result.steps == 2 * sum(-(-64 // 16) for _ in SPECS)
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k
    assert (tmp_path / "a" / "eval_log.csv").read_text() == (tmp_path / "b" / "eval_log.csv").read_text()


def test_resume_refuses_a_checkpoint_of_another_run(bert_dir, tmp_path):
    cfg = _cfg(epochs=1, max_steps=3, checkpoint_every=1)
    model, train, dev = _setup(bert_dir, n_train=32)
    fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "w", seed=0, fingerprint="one")
    with pytest.raises(MkdError, match="different recipe"):
        fit(model, SPECS, train, dev, gold_loss, cfg, tmp_path / "w", seed=0, fingerprint="two", resume=True)


def test_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(bert_dir, tmp_path):
    cfg = _cfg(epochs=1, checkpoint_every=2)
    model, train, dev = _setup(bert_dir, n_train=64)
    calls = {"n": 0}

    def poisoned(spec, logits, batch):
        calls["n"] += 1
        loss = gold_loss(spec, logits, batch)
        return loss * float("nan") if calls["n"] == 5 else loss

    with pytest.raises(MkdError, match=r"loss became nan at step 5.*last good checkpoint"):
        fit(model, SPECS, train, dev, poisoned, cfg, tmp_path / "w", seed=0, fingerprint="f")
    assert (tmp_path / "w" / "checkpoint" / "model.safetensors").exists()
