"""MKD-LSTM: a BiLSTM with bi-attention, shaped like McCann et al.'s Bi-Attentive Classification Network.

embeddings -> ReLU feed-forward -> BiLSTM encoder (each input) -> bi-attention between the two
inputs (a single text attends to itself) -> integrating BiLSTM over [x; x - c; x * c] -> max, mean,
min and self-attentive pooling -> one small classifier per task. Everything before the classifier is
shared by all tasks (MKD.md, Students). hidden_size is the width of every BiLSTM output and of the
feed-forward layer; at 300 the shared layers have about 1.9M parameters plus 0.36M (single text)
or 0.72M (pair) per task head.
"""

from __future__ import annotations

import torch
from torch import nn

from mkd.models.base import ARCHS
from mkd.models.students.wordlevel import MLPHeads, WordStudent, lstm, run_lstm


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)


@ARCHS.register("bilstm_attn")
class BiAttentiveStudent(WordStudent):
    arch = "bilstm_attn"

    def build_layers(self) -> None:
        h = self.hidden_size
        self.feedforward = nn.Sequential(nn.Linear(self.embedding_dim, h), nn.ReLU())
        self.encoder = lstm(h, h, self.num_layers, self.dropout_p)
        width = 2 * self.encoder.hidden_size
        self.integrator = lstm(3 * width, h, self.num_layers, self.dropout_p)
        width = 2 * self.integrator.hidden_size
        self.attend_pool = nn.Linear(width, 1)
        in_dims = {t: (8 if s.is_pair else 4) * width for t, s in self.specs.items()}
        self.heads = MLPHeads(self.specs, in_dims, h, self.dropout_p)

    def encode_side(self, batch: dict[str, torch.Tensor], side: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.embed(batch, side)
        return run_lstm(self.encoder, self.feedforward(x), mask)[0], mask

    def integrate(self, x: torch.Tensor, x_mask: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor) -> torch.Tensor:
        """x conditioned on y: attend each x position over y, integrate, pool to one vector."""
        weights = _masked_softmax(x @ y.transpose(1, 2), y_mask.unsqueeze(1))  # (B, n, m)
        c = weights @ y
        out = run_lstm(self.integrator, self.dropout(torch.cat([x, x - c, x * c], dim=-1)), x_mask)[0]
        return self.pool(out, x_mask)

    def pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[max; mean; min; self-attentive] over the real (unpadded) positions."""
        m = mask.unsqueeze(-1)
        big = torch.finfo(h.dtype).max
        top = h.masked_fill(~m, -big).amax(dim=1)
        low = h.masked_fill(~m, big).amin(dim=1)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1)
        beta = _masked_softmax(self.attend_pool(h).squeeze(-1), mask)
        attended = (beta.unsqueeze(-1) * h).sum(1)
        return torch.cat([top, mean, low, attended], dim=-1)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x, x_mask = self.encode_side(batch)
        if not self.specs[task].is_pair:
            return self.heads(task, self.integrate(x, x_mask, x, x_mask))
        y, y_mask = self.encode_side(batch, "_b")
        both = torch.cat([self.integrate(x, x_mask, y, y_mask), self.integrate(y, y_mask, x, x_mask)], dim=-1)
        return self.heads(task, both)
