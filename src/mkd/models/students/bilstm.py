"""Tang et al.'s student (MKD.md, Students): one BiLSTM, its last hidden states, a ReLU layer, logits.

Sentence pairs go through the same (siamese) encoder and are combined as [h1, h2, h1*h2, |h1-h2|].
Shared: embeddings and the BiLSTM; per task: the ReLU layer and the output layer.
"""

from __future__ import annotations

import torch

from mkd.models.base import ARCHS
from mkd.models.students.wordlevel import MLPHeads, WordStudent, lstm, run_lstm


@ARCHS.register("bilstm")
class BiLSTMStudent(WordStudent):
    """hidden_size is the BiLSTM's output width (both directions together)."""

    arch = "bilstm"

    def build_layers(self) -> None:
        self.encoder = lstm(self.embedding_dim, self.hidden_size, self.num_layers, self.dropout_p)
        width = 2 * self.encoder.hidden_size
        in_dims = {t: 4 * width if s.is_pair else width for t, s in self.specs.items()}
        self.heads = MLPHeads(self.specs, in_dims, self.hidden_size, self.dropout_p)

    def sentence(self, batch: dict[str, torch.Tensor], side: str = "") -> torch.Tensor:
        x, mask = self.embed(batch, side)
        return run_lstm(self.encoder, x, mask)[1]

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h1 = self.sentence(batch)
        if not self.specs[task].is_pair:
            return self.heads(task, h1)
        h2 = self.sentence(batch, "_b")
        return self.heads(task, torch.cat([h1, h2, h1 * h2, (h1 - h2).abs()], dim=-1))
