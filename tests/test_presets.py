"""Student presets: a recipe without `student` gets the default preset, a named preset lies under the
recipe's own keys (and --set), an unknown name is one line, and recipes with a `student` section but no
preset are read exactly as before (their stage fingerprints do not move)."""

from __future__ import annotations

import pytest

from mkd.config import load_recipe
from mkd.config.presets import DEFAULT_PRESET, PRESETS
from mkd.errors import MkdError


def _recipe(tmp_path, body: str = ""):
    path = tmp_path / "r.yaml"
    path.write_text("name: p\ntasks: [{name: rt_polarity}]\n" + body)
    return path


def test_no_student_section_gets_the_default_preset(tmp_path):
    r = load_recipe(_recipe(tmp_path))
    want = PRESETS[DEFAULT_PRESET]
    assert r.student.preset == DEFAULT_PRESET
    assert r.student.type == want["student"]["type"]
    assert r.distill.train.lr == want["distill"]["train"]["lr"]


def test_set_on_a_recipe_without_student_adjusts_the_default_preset(tmp_path):
    r = load_recipe(_recipe(tmp_path), ["student.hidden_size=64"])
    assert (r.student.preset, r.student.type, r.student.hidden_size) == (DEFAULT_PRESET, "static", 64)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_validates_and_explicit_keys_win(tmp_path, name):
    r = load_recipe(_recipe(tmp_path, f"student: {{preset: {name}, hidden_size: 77}}\n"
                                      "distill: {train: {lr: 0.5}}\n"))
    assert r.student.preset == name and r.student.type == PRESETS[name]["student"]["type"]
    assert r.student.hidden_size == 77 and r.distill.train.lr == 0.5
    for key, value in PRESETS[name]["student"].items():
        if key != "hidden_size":
            assert getattr(r.student, key) == value


def test_small_bilstm_preset_replaces_the_flag_list(tmp_path):
    r = load_recipe(_recipe(tmp_path), ["student.preset=small-bilstm"])
    assert (r.student.type, r.student.embeddings, r.student.hidden_size) == ("bilstm", "glove-6b-50d", 96)
    assert r.distill.train.lr == 1e-3 and r.finetune.enabled and r.finetune.train.lr == 1e-3


def test_unknown_preset_is_one_line_with_the_nearest(tmp_path):
    with pytest.raises(MkdError) as e:
        load_recipe(_recipe(tmp_path, "student: {preset: smal-bilstm}\n"))
    assert "unknown student preset 'smal-bilstm'" in str(e.value) and "small-bilstm" in e.value.fix


def test_student_section_without_preset_reads_as_before(tmp_path):
    r = load_recipe(_recipe(tmp_path, "student: {hidden_size: 64}\n"))
    assert r.student.preset is None and r.student.type == "bilstm_attn"
    assert "preset" not in r.student.model_dump()  # kept out of every fingerprint while unset
    demo = load_recipe("demo")
    assert demo.student.preset is None and "preset" not in demo.student.model_dump()
