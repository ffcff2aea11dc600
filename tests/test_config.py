"""The recipe schema: strict keys, types, --set overrides, and the one-line errors they give."""

from __future__ import annotations

from pathlib import Path

import pytest

from mkd.config import Recipe, TaskConfig, load_recipe, packaged_recipes, parse_overrides
from mkd.errors import MkdError

GOOD = """\
name: small
seed: 7
tasks:
  - snli
  - name: rt_polarity
    max_train: 100
teacher:
  max_length: 64
  train: {epochs: 1, lr: 1.0e-4}
student:
  hidden_size: 32
"""


def write(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(source, overrides=None) -> str:
    with pytest.raises(MkdError) as info:
        load_recipe(source, overrides)
    line = info.value.line()
    assert "\n" not in line
    return line


# --------------------------------------------------------------------------- good recipes


def test_good_recipe_is_typed_and_filled_with_defaults(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    assert isinstance(recipe, Recipe)
    assert recipe.name == "small" and recipe.seed == 7
    assert [t.name for t in recipe.tasks] == ["snli", "rt_polarity"]
    assert isinstance(recipe.tasks[0], TaskConfig)  # the shorthand "snli" became a task entry
    assert recipe.task("rt_polarity").max_train == 100
    assert recipe.task("snli").max_train is None
    assert recipe.teacher.max_length == 64
    assert recipe.teacher.train.epochs == 1
    assert recipe.teacher.train.lr == pytest.approx(1e-4)
    assert recipe.teacher.train.batch_size == 32  # default
    assert recipe.student.hidden_size == 32
    assert recipe.distill.train.lr == pytest.approx(1e-3)  # the section's own defaults
    assert recipe.run_dir == Path("runs") / "small"


def test_packaged_demo_is_the_default():
    assert "demo" in packaged_recipes()
    recipe = load_recipe()
    assert recipe.name == "demo"
    assert {t.name for t in recipe.tasks} == {"rt_polarity", "snli"}
    assert load_recipe("demo") == recipe


def test_every_packaged_recipe_is_valid():
    for name in packaged_recipes():
        assert load_recipe(name).tasks


def test_yaml_round_trip(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    again = load_recipe(write(tmp_path, recipe.to_yaml(), "again.yaml"))
    assert again == recipe


def test_section_hash_follows_its_sections(tmp_path):
    path = write(tmp_path, GOOD)
    base = load_recipe(path)
    student = load_recipe(path, ["student.hidden_size=64"])
    teacher = load_recipe(path, ["teacher.max_length=32"])
    assert base.section_hash("tasks", "teacher") == student.section_hash("tasks", "teacher")
    assert base.section_hash("tasks", "teacher") != teacher.section_hash("tasks", "teacher")
    assert base.section_hash("tasks") != load_recipe(path, ["seed=8"]).section_hash("tasks")


def test_task_lookup_by_name_names_a_missing_task(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    with pytest.raises(MkdError, match="'cola' is not in recipe small"):
        recipe.task("cola")


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("text", "key", "close"),
    [
        ("name: x\nseeed: 3\ntasks: [snli]\n", "seeed", "seed"),
        ("name: x\ntasks: [snli]\nteacher: {max_lenght: 64}\n", "teacher.max_lenght", "max_length"),
        ("name: x\ntasks: [snli]\nteacher: {train: {epohcs: 2}}\n", "teacher.train.epohcs", "epochs"),
        ("name: x\ntasks: [{name: snli, max_trian: 5}]\n", "tasks.0.max_trian", "max_train"),
        ("name: x\ntasks: [snli]\ntransfer: {augment: {p_mask_: 0.1}}\n", "transfer.augment.p_mask_", "p_mask"),
        ("name: x\ntasks: [snli]\ndistill: {temprature: 2}\n", "distill.temprature", "temperature"),
    ],
)
def test_unknown_key_names_the_key_and_the_nearest_valid_one(tmp_path, text, key, close):
    line = error_of(write(tmp_path, text))
    assert f"unknown key '{key}'" in line
    assert f"did you mean '{close}'?" in line


def test_unknown_key_with_nothing_close_says_remove_it(tmp_path):
    line = error_of(write(tmp_path, "name: x\ntasks: [snli]\nzzzzzz: 1\n"))
    assert "unknown key 'zzzzzz'" in line
    assert "did you mean" not in line
    assert "remove it" in line


# --------------------------------------------------------------------------- wrong types and values


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: x\nseed: abc\ntasks: [snli]\n", "'seed'"),
        ("name: x\ntasks: [snli]\nteacher: {pooling: max}\n", "'teacher.pooling'"),
        ("name: x\ntasks: [snli]\nteacher: {train: {batch_size: 0}}\n", "'teacher.train.batch_size'"),
        ("name: x\ntasks: [snli]\nfetch_missing: maybe\n", "'fetch_missing'"),
        ("name: x\ntasks: [{name: snli, max_train: many}]\n", "'tasks.0.max_train'"),
        ("name: x\ntasks: snli\n", "'tasks'"),
        ("name: x\ntasks: []\n", "'tasks'"),
        ("name: 'a b'\ntasks: [snli]\n", "'name'"),
        ("name: x\ntasks: [snli]\nteacher: 3\n", "'teacher'"),
    ],
)
def test_wrong_type_or_value_names_the_field(tmp_path, text, where):
    line = error_of(write(tmp_path, text))
    assert line.startswith("recipe ")
    assert where in line
    assert "fix that value" in line


def test_wrong_type_shows_the_bad_value(tmp_path):
    line = error_of(write(tmp_path, "name: x\nseed: abc\ntasks: [snli]\n"))
    assert "'abc'" in line and "integer" in line


def test_cross_field_rules(tmp_path):
    line = error_of(write(tmp_path, "name: x\ntasks: [snli]\ntransfer: {augment: {p_mask: 0.6, p_pos: 0.6}}\n"))
    assert "'transfer.augment'" in line and "p_mask + p_pos" in line
    line = error_of(write(tmp_path, "name: x\ntasks: [snli, rt_polarity, snli]\n"))
    assert "task snli is listed twice" in line


def test_missing_required_field(tmp_path):
    line = error_of(write(tmp_path, "tasks: [snli]\n"))
    assert "'name' is required" in line


def test_malformed_yaml_names_the_line(tmp_path):
    line = error_of(write(tmp_path, "name: x\ntasks: [snli\nseed: 3\n"))
    assert "malformed YAML" in line and "at line" in line


def test_not_a_mapping(tmp_path):
    assert "not a mapping" in error_of(write(tmp_path, "- just\n- a list\n"))


def test_missing_recipe_file(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.yaml")
    line = error_of("no-such-recipe")
    assert "no recipe file or packaged recipe named 'no-such-recipe'" in line and "demo" in line


def test_recipe_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: caf\xe9\ntasks: [snli]\n".encode("latin-1"))
    assert "not UTF-8" in error_of(path)


# --------------------------------------------------------------------------- --set overrides


def test_set_overrides_are_typed_like_the_file(tmp_path):
    recipe = load_recipe(
        write(tmp_path, GOOD),
        [
            "seed=99",
            "teacher.train.epochs=5",
            "teacher.train.lr=1e-4",
            "fetch_missing=true",
            "student.embeddings=random",
            "finetune.tasks=[snli]",
        ],
    )
    assert recipe.seed == 99
    assert recipe.teacher.train.epochs == 5
    assert isinstance(recipe.teacher.train.lr, float) and recipe.teacher.train.lr == pytest.approx(1e-4)
    assert recipe.fetch_missing is True
    assert recipe.student.embeddings == "random"
    assert recipe.finetune.tasks == ["snli"]
    assert recipe.teacher.max_length == 64  # untouched siblings are kept


def test_set_creates_missing_sections(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), ["bench.rounds=2", "transfer.teachers.snli=some/folder"])
    assert recipe.bench.rounds == 2
    assert recipe.transfer.teachers == {"snli": "some/folder"}


def test_set_task_by_name_and_by_index(tmp_path):
    path = write(tmp_path, GOOD)
    recipe = load_recipe(path, ["tasks.snli.max_train=10"])  # snli is a shorthand string in the file
    assert recipe.task("snli").max_train == 10
    assert recipe.task("rt_polarity").max_train == 100
    recipe = load_recipe(path, ["tasks.1.max_train=7", "tasks.rt_polarity.max_dev=3"])
    assert recipe.task("rt_polarity").max_train == 7 and recipe.task("rt_polarity").max_dev == 3
    assert recipe.task("snli").max_train is None


def test_set_task_by_name_on_the_packaged_demo():
    demo = load_recipe()
    recipe = load_recipe(None, ["tasks.snli.max_train=10"])
    assert recipe.task("snli").max_train == 10
    assert recipe.task("rt_polarity") == demo.task("rt_polarity")


def test_later_override_wins(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), ["seed=1", "seed=2"])
    assert recipe.seed == 2


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("teacher.max_length=abc", "'teacher.max_length'"),
        ("tasks.snli.max_train=ten", "'tasks.0.max_train'"),
        ("teacher.train.mixing=random", "'teacher.train.mixing'"),
        ("tasks.rt_polarity.dev_fraction=1.5", "'tasks.1.dev_fraction'"),
    ],
)
def test_set_is_type_checked(tmp_path, override, expected):
    line = error_of(write(tmp_path, GOOD), [override])
    assert expected in line and "fix that value" in line


def test_set_unknown_key_names_the_nearest(tmp_path):
    line = error_of(write(tmp_path, GOOD), ["teacher.max_lenght=64"])
    assert "unknown key 'teacher.max_lenght'" in line and "did you mean 'max_length'?" in line
    line = error_of(write(tmp_path, GOOD), ["tasks.snli.max_trian=10"])
    assert "unknown key 'tasks.0.max_trian'" in line and "did you mean 'max_train'?" in line


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("tasks.cola.max_train=1", "no item named 'cola'"),
        ("tasks.5.max_train=1", "index 5 is out of range"),
        ("seed.x=1", "'seed' is not a section"),
        ("novalue", "is not key=value"),
        ("=3", "is not key=value"),
        ("seed=[unclosed", "malformed value"),
    ],
)
def test_bad_override_paths(tmp_path, override, expected):
    assert expected in error_of(write(tmp_path, GOOD), [override])


def test_parse_overrides_reads_yaml_values():
    parsed = parse_overrides(["a.b=3", "c=[1, 2]", "d=", "e=x=y", " f.g =true"])
    assert parsed == [(["a", "b"], 3), (["c"], [1, 2]), (["d"], ""), (["e"], "x=y"), (["f", "g"], True)]
    assert parse_overrides(None) == []


# --------------------------------------------------------------------------- --set takes a user's words


@pytest.mark.parametrize("word", ["no", "bf16", "auto", "fp16"])
def test_set_precision_words_stay_strings(tmp_path, word):
    recipe = load_recipe(write(tmp_path, GOOD), [f"distill.train.mixed_precision={word}", f"precision={word}"])
    assert recipe.distill.train.mixed_precision == word and recipe.precision == word


@pytest.mark.parametrize("word", ["no", "yes", "on", "off", "null", "~", "1", "2.5", "true", "007"])
def test_set_string_keys_keep_the_words_typed(tmp_path, word):
    recipe = load_recipe(write(tmp_path, GOOD), [f"teacher.model={word}", f"student.embeddings={word}",
                                                 f"transfer.teachers.snli={word}", f"tasks.snli.label_field={word}"])
    assert recipe.teacher.model == word and recipe.student.embeddings == word
    assert recipe.transfer.teachers == {"snli": word} and recipe.task("snli").label_field == word


def test_set_numbers_and_yes_no_as_task_names_and_labels(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), ["tasks.1.name=1", "tasks.snli.labels=[yes, no, 3]",
                                                 "tasks.snli.text_fields=[on, off]"])
    assert recipe.tasks[1].name == "1"
    assert recipe.task("snli").labels == ["yes", "no", "3"] and recipe.task("snli").text_fields == ["on", "off"]
    recipe = load_recipe(write(tmp_path, GOOD), ["tasks=[1, {name: no, max_train: 5}]"])
    assert [t.name for t in recipe.tasks] == ["1", "no"] and recipe.tasks[1].max_train == 5


def test_set_non_string_keys_are_still_read_as_yaml(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD), ["fetch_missing=yes", "distill.seed=null", "teacher.train.max_steps=~",
                                                 "transfer.augment.enabled=off", "bench.batch_sizes=[1, 8]",
                                                 "teacher.train.grad_clip=null", "tasks.snli.labels=null"])
    assert recipe.fetch_missing is True and recipe.distill.seed is None and recipe.teacher.train.max_steps is None
    assert recipe.transfer.augment.enabled is False and recipe.bench.batch_sizes == [1, 8]
    assert recipe.teacher.train.grad_clip is None and recipe.task("snli").labels is None


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("distill.train.mixed_precision=maybe", "'distill.train.mixed_precision' Input should be 'auto', 'no'"),
        ("precision=false", "got 'false'"),
        ("teacher.max_length=no", "'teacher.max_length'"),
        ("tasks.0.name=a b", "'tasks.0.name'"),
        ("transfer.fidelity_threshold=1.5", "'transfer.fidelity_threshold'"),
    ],
)
def test_set_words_that_are_still_wrong(tmp_path, override, expected):
    line = error_of(write(tmp_path, GOOD), [override])
    assert expected in line and "fix that value" in line


def test_parse_overrides_with_the_schema_keeps_words():
    parsed = parse_overrides(["distill.train.mixed_precision=no", "seed=3", "teacher.model=on"], Recipe)
    assert parsed == [(["distill", "train", "mixed_precision"], "no"), (["seed"], 3), (["teacher", "model"], "on")]


def test_mixed_precision_defaults_to_auto(tmp_path):
    recipe = load_recipe(write(tmp_path, GOOD))
    assert recipe.teacher.train.mixed_precision == recipe.distill.train.mixed_precision == "auto"
    assert recipe.finetune.train.mixed_precision == "auto" and recipe.precision == "auto"
    assert recipe.transfer.fidelity_threshold == 0.99
