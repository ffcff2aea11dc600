"""The transfer set on disk and its labelling: id-keyed alignment, caching, resume, streaming shards."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from torch import nn

from mkd.config import load_recipe
from mkd.data.batch import EncodedSplit
from mkd.data.transfer import (
    ShardWriter,
    label_task,
    load_transfer,
    logits_name,
    read_labelled,
    read_manifest,
    read_unlabelled,
    write_logits,
    write_manifest,
)
from mkd.errors import MkdError
from mkd.models.base import MkdModel
from mkd.models.teacher import TeacherModel
from mkd.stages.augment import augment
from mkd.stages.label import label
from mkd.tasks.catalog import resolve_spec
from tests.test_augment import fake_tagger
from tests.tinyfix import SPECS, make_examples, write_tiny_bert


class FakeTeacher(MkdModel):
    """Logits are a known function of the text: (sum of character codes, number of characters)."""

    arch = "fake-for-tests"

    def __init__(self, specs):
        super().__init__()
        self.specs = dict(specs)
        self.scale = nn.Parameter(torch.ones(()))

    def encode(self, spec, examples, targets=None):
        feats = {"input_ids": [[ord(c) for c in " | ".join(e.texts)] for e in examples]}
        return EncodedSplit(spec.name, spec.type, [e.id for e in examples], feats, {"input_ids": 0},
                            labels=[e.label for e in examples], targets=targets)

    def forward(self, task, batch):
        mask = batch["attention_mask"].float()
        out = torch.stack([(batch["input_ids"].float() * mask).sum(1), mask.sum(1)], 1) * self.scale
        k = self.specs[task].num_outputs
        return out[:, :k] if k <= 2 else torch.cat([out, torch.zeros(len(out), k - 2)], 1)


def expected(example):
    text = " | ".join(example.texts)
    return [float(sum(ord(c) for c in text)), float(len(text))]


def _write_set(folder, spec, examples, shard_size, fp="t"):
    writer = ShardWriter(folder, shard_size)
    for e in examples:
        writer.add(e, "original" if e.label is not None else "augmented", None if e.label is not None else "x")
    return write_manifest(folder, spec, fp, writer)


def test_labels_follow_ids_when_shuffled_and_batched_differently(tmp_path):
    spec = SPECS["nli"]
    examples = make_examples(spec, 60, 0) + [e.__class__(f"{e.id}#aug0", e.texts[::-1]) for e in
                                              make_examples(spec, 20, 1)]
    model = FakeTeacher({"nli": spec})
    seen = {}
    for k, (shard_size, batch) in enumerate([(7, 5), (13, 3), (100, 64)]):
        order = examples[:]
        random.Random(k).shuffle(order)
        folder = tmp_path / f"set{k}"
        _write_set(folder, spec, order, shard_size)
        label_task(model, "nli", folder, "fp", batch_size=batch)
        got, targets = load_transfer(folder)
        assert [e.id for e in got] == [e.id for e in order]
        assert got == order  # texts and labels survive the round trip (labels as class indices)
        for e, row in zip(got, targets, strict=True):
            assert row.tolist() == [*expected(e), 0.0]
            seen.setdefault(e.id, row.tolist())
            assert seen[e.id] == row.tolist()
    # a logits shard whose rows are in another order is still joined by id, not by position
    table = pq.read_table(folder / logits_name(0))
    ids, logits = table["id"].to_pylist()[::-1], np.array(table["logits"].to_pylist()[::-1])
    write_logits(folder / logits_name(0), ids, logits, "fp")
    got, targets = load_transfer(folder)
    assert all(row.tolist() == [*expected(e), 0.0] for e, row in zip(got, targets, strict=True))
    originals, _ = load_transfer(folder, kinds=("original",))
    assert len(originals) == 60 and all(e.label is not None for e in originals)


def test_streaming_shards_and_missing_logits(tmp_path):
    spec = SPECS["score"]
    manifest = _write_set(tmp_path, spec, make_examples(spec, 95, 0), shard_size=10)
    assert [s["rows"] for s in manifest["shards"]] == [10] * 9 + [5]
    assert manifest["counts"] == {"original": 95, "augmented": 0, "unlabelled": 0} and manifest["total"] == 95
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json", *(s["examples"] for s in manifest["shards"])])  # no temporary files left
    with pytest.raises(MkdError, match="mkd label"):
        load_transfer(tmp_path)
    assert label_task(FakeTeacher({"score": spec}), "score", tmp_path, "fp") == {"labelled": 10, "kept": 0, "rows": 95}
    (tmp_path / logits_name(3)).unlink()
    with pytest.raises(MkdError, match="run mkd label"):
        load_transfer(tmp_path)
    assert label_task(FakeTeacher({"score": spec}), "score", tmp_path, "fp")["labelled"] == 1
    examples, targets = load_transfer(tmp_path)
    assert isinstance(examples[0].label, float) and targets.shape == (95, 1)

    def stop(task, index):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # a relabelling (new fingerprint) cut short: never read as labelled
        label_task(FakeTeacher({"score": spec}), "score", tmp_path, "other", on_shard=stop)
    with pytest.raises(MkdError, match="not \\(fully\\) labelled"):
        load_transfer(tmp_path)
    assert label_task(FakeTeacher({"score": spec}), "score", tmp_path, "other")["kept"] == 1


def test_unlabelled_files_for_single_and_pair_tasks(tmp_path):
    txt = tmp_path / "extra.txt"
    txt.write_text("first text\n\nthird line\n", encoding="utf-8")
    assert [(e.id, e.texts) for e in read_unlabelled(SPECS["sent"], str(txt))] == [
        ("sent:unlabelled:extra:1", ("first text",)), ("sent:unlabelled:extra:3", ("third line",))]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("a\tb\nx y\tz\n", encoding="utf-8")
    assert [(e.id, e.texts) for e in read_unlabelled(SPECS["nli"], str(tsv))] == [
        ("nli:unlabelled:pairs:2", ("x y", "z"))]
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"a": "p", "b": "h"}\n', encoding="utf-8")
    assert [e.id for e in read_unlabelled(SPECS["nli"], str(jsonl))] == ["nli:unlabelled:more:1"]
    with pytest.raises(MkdError, match="tsv"):
        list(read_unlabelled(SPECS["nli"], str(txt)))
    (tmp_path / "bad.tsv").write_text("only one\n", encoding="utf-8")
    with pytest.raises(MkdError, match="line 1 has 1 columns"):
        list(read_unlabelled(SPECS["nli"], str(tmp_path / "bad.tsv")))


# ---- the stages on a recipe with a user's own task and a tiny real teacher ----------------------


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("tinybert"))


def _recipe(tmp_path, bert_dir, **transfer):
    data = tmp_path / "train.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for e in make_examples(SPECS["sent"], 40, 0):
            w.writerow([e.texts[0], SPECS["sent"].labels[e.label]])
    (tmp_path / "extra.txt").write_text("a good movie\nthe plot is bad\n", encoding="utf-8")
    doc = {"name": "t", "output_dir": str(tmp_path / "runs"),
           "tasks": [{"name": "mine", "source": "files", "train": str(data), "text_fields": ["text"],
                      "type": "classification", "labels": ["neg", "pos"], "unlabelled": [str(tmp_path / "extra.txt")]}],
           "teacher": {"model": str(bert_dir), "max_length": 32},
           "transfer": {"shard_size": 25, "label_batch_size": 16, "augment": {"n_iter": 2}, **transfer}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_recipe(path)


def _teacher(recipe, bert_dir, folder: Path, seed: int = 0):
    torch.manual_seed(seed)
    spec = resolve_spec(recipe.task("mine"))
    TeacherModel.from_pretrained(str(bert_dir), {"mine": spec}, max_length=32).save(folder)


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.glob("logits-*.parquet"))}


def test_stages_label_cache_skip_and_teacher_change(tmp_path, bert_dir, capsys):
    recipe = _recipe(tmp_path, bert_dir)
    with pytest.raises(MkdError, match="run mkd augment first"):
        label(recipe)
    augment(recipe, tagger=fake_tagger)
    folder = recipe.run_dir / "transfer" / "mine"
    manifest = read_manifest(folder)
    c = manifest["counts"]
    assert c["original"] == 32 and 0 < c["augmented"] <= 2 * 32 and c["unlabelled"] == 2
    assert len(manifest["shards"]) == -(-manifest["total"] // 25)
    with pytest.raises(MkdError, match="run mkd teach first"):
        label(recipe)
    _teacher(recipe, bert_dir, recipe.run_dir / "teacher", seed=0)
    label(recipe)
    examples, first = load_transfer(folder)
    ids = [e.id for e in examples]
    assert "mine:unlabelled:extra:2" in ids and any("#aug" in i for i in ids) and first.shape == (len(ids), 2)
    stamps = _stamps(folder)
    capsys.readouterr()
    label(recipe)
    augment(recipe, tagger=fake_tagger)
    assert "label: unchanged" in capsys.readouterr().err and _stamps(folder) == stamps
    _teacher(recipe, bert_dir, recipe.run_dir / "teacher", seed=1)  # a new teacher relabels everything
    label(recipe)
    _, second = load_transfer(folder)
    assert not np.allclose(first, second)
    assert all(_stamps(folder)[k] != stamps[k] for k in stamps)
    changed = recipe.model_copy(deep=True)
    changed.transfer.augment.p_mask = 0.3  # a new augmentation must be rebuilt, then relabelled
    with pytest.raises(MkdError, match="out of date"):
        label(changed)
    augment(changed, tagger=fake_tagger)
    assert read_manifest(folder)["fingerprint"] != manifest["fingerprint"]
    with pytest.raises(MkdError, match="mkd label"):
        load_transfer(folder)
    label(changed)
    assert len(load_transfer(folder)[0]) == read_manifest(folder)["total"]


def test_interrupted_labelling_resumes_without_relabelling_finished_shards(tmp_path, bert_dir):
    recipe = _recipe(tmp_path, bert_dir, teachers={"mine": str(tmp_path / "own-teacher")})
    augment(recipe, tagger=fake_tagger)
    with pytest.raises(MkdError, match=r"transfer\.teachers"):
        label(recipe)
    _teacher(recipe, bert_dir, tmp_path / "own-teacher")
    folder = recipe.run_dir / "transfer" / "mine"
    n_shards = len(read_manifest(folder)["shards"])
    assert n_shards >= 3

    def fail_after_1(task, index):
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        label(recipe, on_shard=fail_after_1)
    before = _stamps(folder)
    assert sorted(before) == [logits_name(0), logits_name(1)]
    with pytest.raises(MkdError, match="not \\(fully\\) labelled"):
        read_labelled(recipe.run_dir / "transfer", "mine")
    written = []
    label(recipe, on_shard=lambda task, i: written.append(i))
    assert written == list(range(2, n_shards))
    after = _stamps(folder)
    assert all(after[k] == before[k] for k in before)
    examples, targets = read_labelled(recipe.run_dir / "transfer", "mine")
    assert len(examples) == len(targets) == read_manifest(folder)["total"]
    assert read_manifest(folder)["label_fingerprint"]


def test_unlabelled_train_adds_the_rest_of_train_without_labels(tmp_path, bert_dir):
    """max_train labelled examples for the teacher, up to unlabelled_train more of the training split as
    transfer text only: labels dropped, never an example the teacher trained on, never dev or test."""
    from mkd.tasks import load_task, unlabelled_train

    recipe = _recipe(tmp_path, bert_dir)
    task = recipe.task("mine").model_copy(update={"max_train": 10, "unlabelled_train": 15})
    data = load_task(task, recipe.seed)
    extra = unlabelled_train(task, recipe.seed)
    held = {e.id for split in data.splits.values() for e in split}
    assert len(extra) == 15 and all(e.label is None for e in extra) and not held & {e.id for e in extra}
    assert unlabelled_train(task, recipe.seed) == extra  # seeded
    everything = task.model_copy(update={"unlabelled_train": 1000})
    assert len(unlabelled_train(everything, recipe.seed)) == 32 - 10  # the rest of train, no more
    assert "unlabelled_train" not in recipe.task("mine").model_dump()  # unset: old fingerprints unchanged
    recipe.tasks[0] = task
    augment(recipe, tagger=fake_tagger)
    counts = read_manifest(recipe.run_dir / "transfer" / "mine")["counts"]
    assert counts["original"] == 10 and counts["unlabelled"] == 15 + 2
