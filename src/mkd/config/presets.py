"""Named students: `student: {preset: NAME}` stands for the settings each was measured with
(benchmarks/RESULTS.md), so a recipe need not copy flag lists from prose. A preset is data: a partial
recipe (its `student`, and the `distill` / `finetune` training that suits it) laid UNDER the recipe's own
keys, so anything the recipe (or `--set`) says explicitly wins.

A recipe with no `student` section at all gets DEFAULT_PRESET. A `student` section without `preset`
keeps the plain schema defaults (as before presets existed), so existing recipes and their stage
fingerprints do not change.
"""

from __future__ import annotations

import copy
from typing import Any

from mkd.errors import MkdError, did_you_mean

PRESETS: dict[str, dict[str, Any]] = {
    # token vectors distilled from the teacher, learned token weights, an MLP head a task: the fastest
    # student (an embedding bag), the demo's; half its loss on the gold labels where there are any (alpha 0.5:
    # never below the gold-only baselines on four tasks, benchmarks/research-static.md)
    "static": {
        "student": {"type": "static", "embeddings": "teacher-static", "pooling": "weighted", "hidden_size": 150},
        "distill": {"alpha": 0.5, "train": {"epochs": 2, "batch_size": 50, "lr": 1.0e-2, "warmup_ratio": 0.0}},
    },
    # Tang et al.'s BiLSTM made small (GloVe-50d, 48 units a direction) and fine-tuned per task: about
    # 10,000-22,000 ex/s on one thread in ONNX Runtime, 39,000-80,000 on its numpy path (mkd.serving.lstm_numpy,
    # numba); RESULTS.md "A small BiLSTM" and "Issue 22, third pass"
    "small-bilstm": {
        "student": {"type": "bilstm", "embeddings": "glove-6b-50d", "pooling": "mean", "hidden_size": 96},
        "distill": {"train": {"lr": 1.0e-3}},
        "finetune": {"enabled": True, "train": {"lr": 1.0e-3, "batch_size": 50, "warmup_ratio": 0.0}},
    },
    # the paper's MKD-LSTM: a BiLSTM with attention over GloVe, hidden 300
    "mkd-lstm": {
        "student": {"type": "bilstm_attn", "embeddings": "glove-6b-50d", "pooling": "mean", "hidden_size": 300},
        "distill": {"train": {"lr": 1.0e-3}},
    },
    # the paper's MKD-Transformer: the teacher's first 3 layers, mean-pooled
    "transformer": {
        "student": {"type": "transformer", "init_from": "minilm-l6", "init_layers": 3, "pooling": "mean"},
        "distill": {"train": {"lr": 1.0e-4, "batch_size": 32}},
    },
}
DEFAULT_PRESET = "static"


def _under(preset: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`given` laid over `preset`, mapping by mapping (given wins)."""
    out = copy.deepcopy(preset)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _under(out[key], value)
        else:
            out[key] = value
    return out


def apply_preset(data: dict[str, Any], where: str, default: bool) -> dict[str, Any]:
    """The raw recipe mapping with its student preset expanded under its own keys: the one it names, else
    DEFAULT_PRESET when `default` (the recipe file had no `student` section; `--set student.x=...` on such
    a recipe adjusts the default preset rather than dropping it)."""
    student = data.get("student")
    if isinstance(student, dict) and student.get("preset") is not None:
        name = student["preset"]
    elif default and (student is None or isinstance(student, dict)):
        name = DEFAULT_PRESET
    else:
        return data
    if name not in PRESETS:
        raise MkdError(f"recipe {where}: unknown student preset '{name}'", did_you_mean(str(name), list(PRESETS)))
    given = {**data, "student": {**(student or {}), "preset": name}}
    return _under(PRESETS[name], given)
