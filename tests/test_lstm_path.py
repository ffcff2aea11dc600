"""The LSTM students' exact padded path computes what packed sequences compute, on the same weights."""

from __future__ import annotations

import pytest
import torch

import mkd.models.students.bilstm as bilstm_mod
import mkd.models.students.bilstm_attn as attn_mod
from mkd.config import StudentConfig
from mkd.models.students import build_student
from mkd.models.students.wordlevel import lstm, packed_lstm, padded_lstm, reverse_within
from tests.tinyfix import SPECS, make_examples

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(lengths: list[int], width: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + 2, width, generator=g) * 3  # padding holds large noise
    mask = torch.arange(x.shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return x, mask


def test_reversal_within_length_is_its_own_inverse_and_leaves_padding():
    x, mask = _batch([4, 1, 6], 2, 0)
    counts = mask.sum(1)
    r = reverse_within(x, counts)
    assert torch.equal(r[0, :4], x[0, :4].flip(0)) and torch.equal(r[0, 4:], x[0, 4:])
    assert torch.equal(reverse_within(r, counts), x)


@pytest.mark.parametrize("layers", [1, 2])
def test_padded_path_equals_packed_outputs_states_and_gradients(layers):
    torch.manual_seed(0)
    layer = lstm(5, 12, layers, 0.0)
    x, mask = _batch([7, 3, 1, 9, 5], 5, 1)
    mask[2] = False  # an empty row counts as one token on both paths
    results = []
    for path in (packed_lstm, padded_lstm):
        layer.zero_grad()
        xx = x.clone().requires_grad_(True)
        out, last = path(layer, xx, mask)
        assert torch.all(out[~mask & (torch.arange(out.shape[1]) > 0)] == 0)  # zeros at padding
        (out.square().sum() + last.sum()).backward()
        results.append([out, last, xx.grad, *(p.grad.clone() for p in layer.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["bilstm", "bilstm_attn"])
def test_students_give_the_packed_logits_on_the_same_weights(kind, small_bert_dir, monkeypatch):
    torch.manual_seed(0)
    cfg = StudentConfig(type=kind, embeddings="random", embedding_dim=16, hidden_size=16, num_layers=2,
                        dropout=0.0, max_length=32)
    texts = [t for s in SPECS.values() for e in make_examples(s, 30, 0) for t in e.texts]
    model = build_student(cfg, SPECS, texts, small_bert_dir).eval()
    for task, spec in SPECS.items():
        batch = model.encode(spec, make_examples(spec, 9, 2)).collate(range(9))
        with torch.no_grad():
            padded = model(task, batch)
            for mod in (bilstm_mod, attn_mod):
                monkeypatch.setattr(mod, "run_lstm", packed_lstm)
            packed = model(task, batch)
            monkeypatch.undo()
        torch.testing.assert_close(padded, packed, atol=1e-5, rtol=0)
