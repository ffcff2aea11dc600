"""The glue, hub and files sources, on miniature data the tests write themselves."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from mkd.config import TaskConfig
from mkd.errors import MkdError
from mkd.tasks import load_task
from mkd.tasks.catalog import NLI3

N_TRAIN, N_DEV = 20, 6
MNLI_HEAD = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
             "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
             "sentence1", "sentence2"]
STSB_HEAD = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"]


def _tsv(path: Path, header: list[str] | None, rows: list[list[str]], bom: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + rows
    text = "".join("\t".join(r) + "\n" for r in lines)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")


def _glue_files(root: Path, split: str, n: int) -> None:
    """One split (train.tsv or dev*.tsv) of every GLUE task, in the official layout."""
    nli2 = ("entailment", "not_entailment")
    sst = [[f'sst {split} {i} he said "great ', str(i % 2)] for i in range(n)]
    sst[4][0] = "a stray\rcarriage return"  # GLUE texts hold some; not a line end
    _tsv(root / "SST-2" / f"{split}.tsv", ["sentence", "label"], sst)
    _tsv(root / "CoLA" / f"{split}.tsv", None,
         [["gj04", str(i % 2), "" if i % 2 else "*", f"cola {split} {i}"] for i in range(n)])
    _tsv(root / "MRPC" / f"{split}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
         [[str(i % 2), str(i), str(i + 1), f"mrpc a {i}", f"mrpc b {i}"] for i in range(n)],
         bom=True)
    qqp = [[str(i), str(2 * i), str(2 * i + 1), f"q1 {i}?", f"q2 {i}?", str(i % 2)]
           for i in range(n)]
    _tsv(root / "QQP" / f"{split}.tsv",
         ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
         [*qqp[:3], ["99", "broken row", "0"], *qqp[3:]])  # QQP's few broken rows are skipped
    _tsv(root / "STS-B" / f"{split}.tsv", STSB_HEAD,
         [[str(i), "main-news", "f", "2012", str(i), "s", "s", f"sts a {i}", f"sts b {i}",
           f"{i / 4:.3f}"] for i in range(n)])
    _tsv(root / "QNLI" / f"{split}.tsv", ["index", "question", "sentence", "label"],
         [[str(i), f"qnli q {i}", f"qnli s {i}", nli2[i % 2]] for i in range(n)])
    for folder, labels in (("RTE", nli2), ("WNLI", ("0", "1"))):
        _tsv(root / folder / f"{split}.tsv", ["index", "sentence1", "sentence2", "label"],
             [[str(i), f"{folder} a {i}", f"{folder} b {i}", labels[i % 2]] for i in range(n)])


def _mnli(root: Path, name: str, n: int, votes: int) -> None:
    head = [*MNLI_HEAD, *(f"label{k + 1}" for k in range(votes)), "gold_label"]
    rows = [[str(i), "p", "q", "fiction", "(", "(", "(", "(", f"mnli {name} p {i}",
             f"mnli {name} h {i}", *[NLI3[i % 3]] * votes, NLI3[i % 3]] for i in range(n)]
    if name != "train":
        rows.append([str(n), "p", "q", "g", "(", "(", "(", "(", "p", "h", *["x"] * votes, "-"])
    _tsv(root / "MNLI" / f"{name}.tsv", head, rows)


def make_glue(root: Path) -> Path:
    """A miniature GLUE download: N_TRAIN train rows and N_DEV dev rows per task."""
    _glue_files(root, "train", N_TRAIN)
    _glue_files(root, "dev", N_DEV)
    _mnli(root, "train", N_TRAIN, 1)
    _mnli(root, "dev_matched", N_DEV, 5)
    _mnli(root, "dev_mismatched", N_DEV + 1, 5)
    return root


@pytest.fixture
def glue(tmp_path: Path) -> Path:
    return make_glue(tmp_path / "glue_data")


GLUE_TASKS = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]


@pytest.mark.parametrize("task", GLUE_TASKS)
def test_glue_split_sizes_and_policy(glue: Path, task: str) -> None:
    data = load_task(TaskConfig(name=task, glue_dir=str(glue)), seed=13)
    n_dev = round(N_TRAIN * 0.1)
    assert data.sizes()["train"] == N_TRAIN - n_dev
    assert data.sizes()["dev"] == n_dev
    assert data.sizes()["test"] == N_DEV  # the official dev set is mkd's test set
    train_ids = {e.id for e in data.split("train")}
    dev_ids = {e.id for e in data.split("dev")}
    assert not train_ids & dev_ids
    assert all(i.startswith(f"{task}:train:") for i in train_ids | dev_ids)
    assert all(e.id.startswith(f"{task}:test:") for e in data.split("test"))
    assert all(len(e.texts) == len(data.spec.text_fields) for e in data.split("test"))


def test_glue_labels_and_texts(glue: Path) -> None:
    def test_split(task: str) -> dict[str, Any]:
        data = load_task(TaskConfig(name=task, glue_dir=str(glue)))
        return {e.id: e for e in data.split("test")}

    sst = test_split("sst2")["sst2:test:3"]
    assert sst.label == 1 and sst.texts == ('sst dev 3 he said "great',)  # quotes kept as text
    assert test_split("sst2")["sst2:test:4"].texts == ("a stray carriage return",)
    assert test_split("cola")["cola:test:2"].label == 0
    assert test_split("mrpc")["mrpc:test:1"].label == 1  # BOM in the header is handled
    assert test_split("qnli")["qnli:test:1"].label == 1  # "not_entailment"
    assert test_split("rte")["rte:test:0"].label == 0
    assert test_split("wnli")["wnli:test:1"].label == 1
    mnli = test_split("mnli")
    assert [mnli[f"mnli:test:{i}"].label for i in range(3)] == [0, 1, 2]
    assert mnli["mnli:test:0"].texts == ("mnli dev_matched p 0", "mnli dev_matched h 0")


def test_stsb_scores_are_floats(glue: Path) -> None:
    data = load_task(TaskConfig(name="stsb", glue_dir=str(glue)))
    scores = {e.id: e.label for e in data.split("test")}
    assert scores["stsb:test:5"] == pytest.approx(1.25)
    assert all(isinstance(s, float) for s in scores.values())


def test_mnli_has_mismatched_and_skips_no_gold(glue: Path) -> None:
    data = load_task(TaskConfig(name="mnli", glue_dir=str(glue), max_test=4))
    assert set(data.splits) == {"train", "dev", "test", "test_mismatched"}
    full = load_task(TaskConfig(name="mnli", glue_dir=str(glue)))
    assert full.sizes()["test_mismatched"] == N_DEV + 1  # the "-" row is dropped
    assert data.sizes()["test_mismatched"] == 4  # max_test applies to every test split


def test_glue_is_deterministic_and_seeded(glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLUE_DIR", str(glue))  # glue_dir from the environment
    cfg = TaskConfig(name="qqp", dev_fraction=0.3)
    a, b = load_task(cfg, seed=1), load_task(cfg, seed=1)
    assert a.splits == b.splits
    assert a.sizes() == {"train": 14, "dev": 6, "test": N_DEV}
    other = load_task(cfg, seed=2)
    assert {e.id for e in other.split("dev")} != {e.id for e in a.split("dev")}


def test_glue_errors(glue: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(MkdError, match="glue_dir"):
        load_task(TaskConfig(name="sst2"))
    (glue / "RTE" / "dev.tsv").unlink()
    with pytest.raises(MkdError, match=r"GLUE file .*RTE/dev.tsv not found; point glue_dir"):
        load_task(TaskConfig(name="rte", glue_dir=str(glue)))
    with (glue / "SST-2" / "train.tsv").open("a", encoding="utf-8") as f:
        f.write("a sentence\t2\n")
    with pytest.raises(MkdError, match=r"line 22: label '2' is outside the label set"):
        load_task(TaskConfig(name="sst2", glue_dir=str(glue)))
    with (glue / "QNLI" / "train.tsv").open("a", encoding="utf-8") as f:
        f.write("7\tonly two columns\n")
    with pytest.raises(MkdError, match=r"QNLI/train.tsv line 22 has 2 columns, expected 4"):
        load_task(TaskConfig(name="qnli", glue_dir=str(glue)))
    with pytest.raises(MkdError, match="not a GLUE task"):
        load_task(TaskConfig(name="snli", source="glue", glue_dir=str(glue)))


# --------------------------------------------------------------------------- files source


def _own(train: str, **kw: Any) -> TaskConfig:
    base: dict[str, Any] = {"name": "mine", "source": "files", "train": train,
                            "text_fields": ["text"], "type": "classification",
                            "labels": ["neg", "pos"]}
    return TaskConfig(**{**base, **kw})


def _csv(path: Path, header: str, rows: list[str], sep: str = ",") -> Path:
    path.write_text(header.replace(",", sep) + "\n" + "".join(r + "\n" for r in rows),
                    encoding="utf-8")
    return path


def test_files_csv_classification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [f'"text {i}, with a comma",{"pos" if i % 3 else "neg"}' for i in range(30)]
    _csv(tmp_path / "train.csv", "text,label", rows)
    monkeypatch.chdir(tmp_path)  # relative paths are read from the current directory
    data = load_task(_own("train.csv"), seed=5)
    assert data.sizes() == {"train": 24, "dev": 3, "test": 3}
    ids = [e.id for part in data.splits.values() for e in part]
    assert len(set(ids)) == 30
    first = next(e for e in data.split("train") if e.id == "mine:train:1")
    assert first.texts == ("text 1, with a comma",) and first.label == 1
    assert load_task(_own("train.csv"), seed=5).splits == data.splits


def test_files_labels_as_indices_and_given_splits(tmp_path: Path) -> None:
    rows = [f"t {i},{i % 2}" for i in range(10)]
    train = _csv(tmp_path / "a.csv", "text,label", rows)
    dev = _csv(tmp_path / "b.csv", "text,label", rows[:4])
    test = _csv(tmp_path / "c.csv", "text,label", rows[:5])
    data = load_task(_own(str(train), dev=str(dev), test=str(test)))
    assert data.sizes() == {"train": 10, "dev": 4, "test": 5}
    assert [e.label for e in data.split("dev")] == [0, 1, 0, 1]


def test_files_regression_tsv_pairs(tmp_path: Path) -> None:
    rows = [f"first {i}\tsecond {i}\t{i / 2}" for i in range(20)]
    path = _csv(tmp_path / "pairs.tsv", "a,b,score", rows, sep="\t")
    cfg = TaskConfig(name="sim", source="files", train=str(path), text_fields=["a", "b"],
                     label_field="score", type="regression")
    data = load_task(cfg)
    every = [e for part in data.splits.values() for e in part]
    assert sorted(e.label for e in every) == [i / 2 for i in range(20)]  # type: ignore[type-var]
    assert data.spec.metrics == ("pearson", "spearman")
    assert all(len(e.texts) == 2 for e in every)


def test_files_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps({"text": f"t {i}", "label": ["neg", "pos"][i % 2], "x": 1})
             for i in range(20)]
    path.write_text("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:]) + "\n", encoding="utf-8")
    data = load_task(_own(str(path), test_fraction=0.25))
    assert data.sizes() == {"train": 13, "dev": 2, "test": 5}
    array = tmp_path / "d.json"
    array.write_text(json.dumps([json.loads(line) for line in lines]), encoding="utf-8")
    assert load_task(_own(str(array), test_fraction=0.25)).sizes() == data.sizes()


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("d.csv", b"text,lab\nhello,pos\n",
         r"d.csv line 2: no column 'label' \(columns: text, lab\)"),
        ("d.csv", "text,label\ncaf\u00e9,pos\n".encode("latin-1"),
         r"d.csv is not UTF-8 text \(byte 0xe9 on line 2\); re-encode it as UTF-8"),
        ("d.csv", b"", r"d.csv has no rows"),
        ("d.csv", b"text,label\n", r"d.csv has no rows"),
        ("d.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"d.csv is a binary file"),
        ("d.csv", b"text,label\na,pos,extra\n", r"d.csv line 2 has 3 columns, the header has 2"),
        ("d.jsonl", b'{"text": "a", "label": "pos"}\n["a", "pos"]\n',
         r"d.jsonl line 2 is not a JSON object"),
        ("d.jsonl", b'{"text": "a", "label": "pos"}\n{oops\n', r"d.jsonl line 2 is not valid JSON"),
        ("d.csv", b"text,label\na,maybe\n",
         r"d.csv line 2: label 'maybe' is outside the label set"),
        ("d.txt", b"text,label\n", r"unknown format '.txt'"),
    ],
)
def test_files_errors(tmp_path: Path, name: str, content: bytes, pattern: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(MkdError, match=pattern):
        load_task(_own(str(tmp_path / name)))


def test_files_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MkdError, match=r"nope.csv not found; check the path"):
        load_task(_own(str(tmp_path / "nope.csv")))


def test_files_empty_texts_are_dropped(tmp_path: Path) -> None:
    rows = [f"{'' if i % 3 else 'good'},{['neg', 'pos'][i % 2]}" for i in range(30)]
    path = _csv(tmp_path / "d.csv", "text,label", rows)
    assert all(e.texts == ("good",) for e in load_task(_own(str(path))).split("train"))  # issue 15: blanks go
    blank = _csv(tmp_path / "b.csv", "text,label", [f",{['neg', 'pos'][i % 2]}" for i in range(10)])
    with pytest.raises(MkdError, match="split is empty"):
        load_task(_own(str(blank)))


# --------------------------------------------------------------------------- hub source


def _fake_datasets(monkeypatch: pytest.MonkeyPatch, splits: dict[str, list[dict[str, Any]]],
                   calls: list[tuple[str, str | None]]) -> None:
    def load_dataset(path: str, name: str | None = None) -> dict[str, list[dict[str, Any]]]:
        calls.append((path, name))
        if path == "missing/dataset":
            raise FileNotFoundError("Dataset 'missing/dataset' doesn't exist on the Hub\nmore")
        return splits

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)


def _hf_rows(n: int, cols: tuple[str, ...], label: Any = None) -> list[dict[str, Any]]:
    return [{**{c: f"{c} {i}" for c in cols}, "idx": i,
             "label": (i % 3 if label is None else label)} for i in range(n)]


def test_hub_glue_mnli(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []
    cols = ("premise", "hypothesis")
    _fake_datasets(monkeypatch, {
        "train": _hf_rows(N_TRAIN, cols), "validation_matched": _hf_rows(5, cols),
        "validation_mismatched": _hf_rows(7, cols), "test_matched": _hf_rows(4, cols, -1),
        "test_mismatched": _hf_rows(4, cols, -1)}, calls)
    data = load_task(TaskConfig(name="mnli", source="hub"))
    assert calls == [("nyu-mll/glue", "mnli")]
    assert data.sizes() == {"train": 18, "dev": 2, "test": 5, "test_mismatched": 7}
    ex = data.split("test")[2]
    assert ex.id == "mnli:test:2" and ex.texts == ("premise 2", "hypothesis 2") and ex.label == 2


def test_hub_named_dataset_with_labelled_test(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []
    rows = _hf_rows(N_TRAIN, ("text",))
    for r in rows:
        r["label"] %= 2
    rows[0]["label"] = -1  # no gold label: skipped
    _fake_datasets(monkeypatch, {"train": rows, "validation": rows[1:5], "test": rows[1:4]}, calls)
    cfg = TaskConfig(name="sst2", source="hub", hub_name="owner/reviews:plain",
                     text_fields=["text"])
    data = load_task(cfg)
    assert calls == [("owner/reviews", "plain")]
    assert data.sizes() == {"train": N_TRAIN - 1, "dev": 4, "test": 3}
    load_task(TaskConfig(name="sst2", source="hub", hub_name="nyu-mll/glue/sst2",
                         text_fields=["text"]))
    assert calls[-1] == ("nyu-mll/glue", "sst2")


def test_hub_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str | None]] = []
    _fake_datasets(monkeypatch, {"train": _hf_rows(4, ("sentence",)),
                                 "validation": _hf_rows(4, ("sentence",))}, calls)
    with pytest.raises(MkdError, match=r"no column 'question1' \(columns: sentence, idx, label\)"):
        load_task(TaskConfig(name="qqp", source="hub"))
    with pytest.raises(MkdError, match=r"could not load missing/dataset .*exist on the Hub; check"):
        load_task(TaskConfig(name="sst2", source="hub", hub_name="missing/dataset"))
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now fails
    with pytest.raises(MkdError, match=r"pip install 'mkd\[hub\]'"):
        load_task(TaskConfig(name="sst2", source="hub"))


# --------------------------------------------------------------------------- group-aware carves


def test_files_group_field_keeps_each_group_in_one_split(tmp_path: Path) -> None:
    rows = [f"text {i},{'pos' if i % 2 else 'neg'},movie {i % 17}" for i in range(200)]
    train = _csv(tmp_path / "train.csv", "text,label,movie", rows)
    data = load_task(_own(str(train), group_field="movie"), seed=3)
    movie = {f"mine:train:{i}": f"movie {i % 17}" for i in range(200)}
    groups = {k: {movie[e.id] for e in v} for k, v in data.splits.items()}
    assert all(groups.values())
    assert not groups["train"] & groups["dev"] and not groups["train"] & groups["test"]
    assert not groups["dev"] & groups["test"]
    assert sum(data.sizes().values()) == 200
    plain = load_task(_own(str(train)), seed=3)  # without group_field: a row-level carve
    mixed = {k: {movie[e.id] for e in v} for k, v in plain.splits.items()}
    assert mixed["train"] & mixed["dev"]
    with pytest.raises(MkdError, match="no column 'film'"):
        load_task(_own(str(train), group_field="film"))


def test_glue_dev_is_carved_by_the_first_text(tmp_path: Path) -> None:
    root = make_glue(tmp_path / "glue_data")
    head = [*MNLI_HEAD, "label1", "gold_label"]
    rows = [[str(i), "p", "q", "fiction", "(", "(", "(", "(", f"premise {i // 3}", f"h {i}",
             NLI3[i % 3], NLI3[i % 3]] for i in range(300)]
    _tsv(root / "MNLI" / "train.tsv", head, rows)
    data = load_task(TaskConfig(name="mnli", glue_dir=str(root), dev_fraction=0.2), seed=1)
    premises = {k: {e.texts[0] for e in v} for k, v in data.splits.items()}
    assert not premises["train"] & premises["dev"]
    assert data.sizes()["dev"] == 60 and data.sizes()["train"] == 240
    with pytest.raises(MkdError, match="group_field 'label' is not one of its text_fields"):
        load_task(TaskConfig(name="mnli", glue_dir=str(root), group_field="label"))
