"""The BiLSTM student (Tang et al.'s, `bilstm`: one layer, last states, a ReLU layer a task) served from
numpy and one compiled kernel (mkd.serving.lstm_kernels): words -> ids (mkd.serving.fast_words' regex
batches, or tokie for a subword vocabulary, each only where exact) -> each text's recurrence over its
own words -> the task's head. Offered where numba is installed; the bench gates it against PyTorch like
the static student's numpy path (numpy_server.check_logits: logits within 1e-4, else no figure).
Memory: the two directions' input-projection tables, vocabulary x 4 x units float32 each (a 30,000-word
vocabulary at 48 units a direction: 23 MB each).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mkd.serving.fast_tokens import Encoder, fast_ids
from mkd.serving.lstm_kernels import KERNEL
from mkd.serving.numpy_server import AUG_MASK, NumpyServer


class BiLSTMNumpy(NumpyServer):
    """A one-layer `bilstm` student's logits from raw texts: `logits(task, columns)`."""

    kind = "BiLSTM student"

    def __init__(self, weights: dict[str, np.ndarray], pairs: dict[str, bool], encoder: Encoder,
                 tokenizer_info: dict[str, Any] | None = None, mask: str = AUG_MASK, kernel: Any = KERNEL) -> None:
        self.encoder, self.tokenizer_info, self.mask, self.kernel = encoder, tokenizer_info or {}, mask, kernel
        self.pairs = pairs
        table = np.asarray(weights["embedding.weight"], np.float64)
        self.directions = []
        for suffix in ("", "_reverse"):  # the input projection of every word, both biases in it: made once
            w_ih, w_hh = (np.asarray(weights[f"encoder.weight_{k}_l0{suffix}"], np.float64) for k in ("ih", "hh"))
            bias = weights[f"encoder.bias_ih_l0{suffix}"] + weights[f"encoder.bias_hh_l0{suffix}"]
            self.directions.append((np.ascontiguousarray(table @ w_ih.T + bias, np.float32),
                                    np.ascontiguousarray(w_hh.T, np.float32)))
        self.width = self.directions[0][1].shape[0]
        self.heads = {t: [(np.ascontiguousarray(weights[f"heads.heads.{t}.{i}.weight"].T, np.float32),
                           np.asarray(weights[f"heads.heads.{t}.{i}.bias"], np.float32)) for i in (1, 4)]
                      for t in pairs}

    @classmethod
    def from_model(cls, model: Any, check_texts: Sequence[str], kernel: Any = KERNEL) -> BiLSTMNumpy | None:
        """From a loaded BiLSTM student (None where this path does not serve it: another architecture, more
        than one layer, or no kernel); its tokenizer checked on `check_texts` (see fast_ids)."""
        from mkd.models.students.vocab import UNK_ID, WordVocab, word_tokenizer

        if kernel is None or getattr(model, "arch", None) != "bilstm" or model.encoder.num_layers != 1:
            return None
        weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        tok = model.tokens
        if isinstance(tok, WordVocab):  # its tokenizer.json reads the augmentation's mask itself
            tokenizer_json, unk, mask = word_tokenizer(tok.words, model.max_length).to_str(), UNK_ID, AUG_MASK
        else:
            tokenizer_json, unk, mask = tok.tokenizer.backend_tokenizer.to_str(), tok.unk_id, tok.mask
        encoder, info = fast_ids(tokenizer_json, model.max_length, unk, check_texts)
        return cls(weights, {t: s.is_pair for t, s in model.specs.items()}, encoder, info, mask, kernel)

    def sentences(self, texts: list[str]) -> np.ndarray:
        """(n, 2 * width): each text's [forward last state, backward first state]."""
        ragged = self.encoder(self.with_mask(texts))
        starts = np.zeros(len(ragged.lengths) + 1, dtype=np.int64)
        np.cumsum(ragged.lengths, out=starts[1:])
        out = np.empty((len(texts), 2 * self.width), np.float32)
        (forward, recurrent_f), (backward, recurrent_b) = self.directions
        self.kernel(ragged.ids, starts, forward, recurrent_f, backward, recurrent_b, out)
        return out

    def batch_logits(self, task: str, columns: Sequence[Sequence[str]]) -> np.ndarray:
        n = len(columns[0])
        if self.pairs[task]:
            both = self.sentences([*columns[0], *columns[1]])
            h1, h2 = both[:n], both[n:]
            x = np.concatenate([h1, h2, h1 * h2, np.abs(h1 - h2)], axis=1)
        else:
            x = self.sentences(list(columns[0]))
        (w1, b1), (w2, b2) = self.heads[task]
        x = x @ w1
        x += b1
        np.maximum(x, 0.0, out=x)
        return x @ w2 + b2
