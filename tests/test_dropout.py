"""mkd's dropout: torch's semantics (keep rate, scaling, eval, gradients, seeding) with a cheaper mask."""

from __future__ import annotations

import pytest
import torch

from mkd.models.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_and_scale_match_the_probability(p):
    torch.manual_seed(0)
    mask = keep_mask((1000, 1001), p)  # not a multiple of the four lanes a draw is cut into
    assert mask.shape == (1000, 1001) and mask.dtype == torch.bool
    assert abs(mask.float().mean().item() - (1 - p)) < 0.003
    out = dropout(torch.ones(1000, 1001), p, True)
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)))
    assert abs(out.mean().item() - 1.0) < 0.01


def test_lanes_are_independent_positions():
    """Each of the four 16-bit lanes of a draw keeps at the same rate (no lane is biased)."""
    torch.manual_seed(1)
    mask = keep_mask((400_000, 4), 0.3).float().mean(0)
    assert torch.all((mask - 0.7).abs() < 0.005), mask


def test_eval_zero_and_one_probabilities():
    x = torch.randn(3, 5)
    assert dropout(x, 0.5, False) is x and dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), torch.zeros_like(x))
    layer = Dropout(0.5).eval()
    assert layer(x) is x and not layer.state_dict() and "p=0.5" in repr(layer)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)


def test_seeded_masks_repeat_and_gradients_follow_the_mask():
    x = torch.randn(7, 9, 11, requires_grad=True)
    torch.manual_seed(3)
    a = dropout(x, 0.2, True)
    torch.manual_seed(3)
    b = dropout(x, 0.2, True)
    assert torch.equal(a, b) and not torch.equal(a, dropout(x, 0.2, True))
    a.sum().backward()
    torch.testing.assert_close(x.grad, (a != 0).float() / 0.8)


def test_bf16_inputs_keep_their_dtype():
    x = torch.randn(4, 6, dtype=torch.bfloat16)
    assert dropout(x, 0.25, True).dtype == torch.bfloat16


def test_a_teacher_encoder_drops_out_with_mkds_mask_and_keeps_its_attention_dropout(small_bert_dir):
    """Every nn.Dropout of a Hugging Face encoder becomes mkd's (same p); the attention layers that hand
    `self.dropout.p` to scaled_dot_product_attention still read it; eval is deterministic, training is not."""
    from torch import nn

    from mkd.models.teacher import TeacherModel
    from tests.tinyfix import SPECS

    model = TeacherModel.from_pretrained(str(small_bert_dir), SPECS, max_length=16)
    encoder = model.encoder
    assert not any(type(m) is nn.Dropout for m in encoder.modules())
    ours = [m for m in encoder.modules() if isinstance(m, Dropout)]
    assert ours and {m.p for m in ours} == {encoder.config.hidden_dropout_prob}
    ids = torch.randint(5, encoder.config.vocab_size, (4, 9))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    model.eval()
    with torch.no_grad():
        a, b = model.features(batch), model.features(batch)
    torch.testing.assert_close(a, b)
    model.train()
    torch.manual_seed(3)
    c = model.features(batch)
    torch.manual_seed(3)
    torch.testing.assert_close(model.features(batch), c)  # seeded: reproducible
    assert not torch.allclose(c, a)
