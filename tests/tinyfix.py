"""Tiny random models and synthetic learnable tasks for fast tests (no real assets needed)."""

from __future__ import annotations

import random
from pathlib import Path

from mkd.tasks.task import Example, TaskSpec

WORDS = ["good", "bad", "movie", "plot", "actor", "scene", "the", "a", "is", "was", "very", "not",
         "yes", "no", "maybe", "cat", "dog", "runs", "sits", "red", "blue"]


def write_tiny_bert(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A randomly initialised 2-layer BERT with a word-level vocabulary, saved like a hub model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=64)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(folder)
    return folder


SINGLE = TaskSpec("sent", ("text",), "classification", ("neg", "pos"), ("accuracy",), "accuracy")
PAIR = TaskSpec("nli", ("a", "b"), "classification", ("yes", "no", "maybe"), ("accuracy",), "accuracy")
REG = TaskSpec("score", ("text",), "regression", (), ("pearson", "spearman"), "pearson")
SPECS = {s.name: s for s in (SINGLE, PAIR, REG)}


def _noise(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS[2:12]) for _ in range(n)]


def make_examples(spec: TaskSpec, n: int, seed: int) -> list[Example]:
    """Learnable synthetic data: the label is carried by keywords hidden among noise words."""
    rng = random.Random(f"{spec.name}-{seed}")
    out = []
    for i in range(n):
        if spec is SINGLE or spec.name == "sent":
            label = rng.randrange(2)
            words = _noise(rng, rng.randint(2, 8))
            words.insert(rng.randrange(len(words) + 1), "good" if label else "bad")
            out.append(Example(f"sent:{seed}:{i}", (" ".join(words),), label))
        elif spec.is_pair:
            label = rng.randrange(3)
            a = " ".join(_noise(rng, rng.randint(2, 6)))
            b = _noise(rng, rng.randint(1, 5))
            b.insert(rng.randrange(len(b) + 1), spec.labels[label])
            out.append(Example(f"nli:{seed}:{i}", (a, " ".join(b)), label))
        else:
            k = rng.randint(0, 4)
            words = _noise(rng, 4) + ["good"] * k
            rng.shuffle(words)
            out.append(Example(f"score:{seed}:{i}", (" ".join(words),), float(k)))
    return out


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`mkd ARGS` in this process, through the CLI's own error handling: (exit code, stdout, stderr)."""
    import sys

    from mkd import cli

    monkeypatch.setattr(sys, "argv", ["mkd", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def distil_synthetic(model, teacher, steps: int) -> tuple[float, float]:
    """Distil `model` on 64 synthetic examples per task of SPECS towards `teacher(spec, examples)` logits
    (MSE, Adam, full batches); returns the logit MSE before and after."""
    import numpy as np
    import torch

    from mkd.data.evaluate import predict
    from mkd.train.losses import distillation_loss

    loss_fn = distillation_loss("mse")
    data = {}
    for task, spec in SPECS.items():
        examples = make_examples(spec, 64, 4)
        data[task] = model.encode(spec, examples, teacher(spec, examples))
    batches = {task: d.collate(range(len(d))) for task, d in data.items()}

    def mse() -> float:
        return float(np.mean([np.mean((predict(model, t, d) - d.targets) ** 2) for t, d in data.items()]))

    before = mse()
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        for task, batch in batches.items():
            loss = loss_fn(SPECS[task], model(task, batch), batch)
            optim.zero_grad()
            loss.backward()
            optim.step()
    return before, mse()
