"""The static student served at the speed of its math: ids -> weighted bag of token vectors -> head, in numpy.

PyTorch pads a batch, gathers (batch, length, dim) vectors and masks them; here each text's vectors
are summed straight from the table over the flat ids, with no padding and no per-text Python: in one
compiled pass where numba is installed (mkd.serving.static_kernels), else by scipy's sparse-times-dense
kernel; then the rest of the head is matrix products. Token ids come
from mkd.serving.fast_tokens (tokie when it is exact on the check texts). Weights are read from a
model folder's model.safetensors (no PyTorch) or taken from a loaded StaticStudent.

The head's first layer is linear in the pooled vector, so its product with the token table is made
once, at load (`Folded`): a single-text task sums rows of (token table @ first layer) and skips that
matrix product; a pair task gets u @ W_u and v @ W_v the same way and multiplies only |u-v| and u*v
(measured: 1.53-1.63x on single-text tasks, 1.06-1.07x on snli; benchmarks/RESULTS.md). The arithmetic is
StaticStudent.sentence/forward's, in float32, summed in another order: logits agree with PyTorch to
about 1e-6 (mkd.serving.numpy_server.check_logits refuses more than its TOLERANCE).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mkd.errors import MkdError
from mkd.serving.fast_tokens import Encoder, Ragged, fast_ids
from mkd.serving.numpy_server import AUG_MASK, NumpyServer
from mkd.serving.static_kernels import KERNELS, PRIME

_NO_ROWS = np.zeros(0, np.float32)


def _or_empty(table: np.ndarray | None) -> np.ndarray:
    """A table, or an empty one where there is none (the kernels take arrays only)."""
    return np.zeros((0, 0), np.float32) if table is None else table



def _softplus(x: np.ndarray) -> np.ndarray:
    """torch's softplus (threshold 20), in float32."""
    x = x.astype(np.float32)
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0)))).astype(np.float32)


def _bag_sums(table: np.ndarray, ids: np.ndarray, starts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Row r: sum over ids[starts[r]: starts[r + 1]] of weights * table[id] (starts: n + 1 offsets into ids,
    from any first one)."""
    n, dim = len(starts) - 1, table.shape[1]
    out = np.zeros((n, dim), dtype=np.float32)
    try:  # the kernel csr_matrix @ dense runs, without building (and checking) a matrix per batch
        from scipy.sparse import _sparsetools

        _sparsetools.csr_matvecs(n, table.shape[0], dim, starts, ids, weights, table, out)
    except (ImportError, AttributeError, TypeError, ValueError):
        from scipy.sparse import csr_matrix

        a, b = int(starts[0]), int(starts[-1])
        rows = csr_matrix((weights[a:b], ids[a:b], starts - a), shape=(n, table.shape[0]))
        out = np.asarray(rows @ table, dtype=np.float32)
    return out


class StaticNumpy(NumpyServer):
    """A static student's logits from raw texts: `logits(task, columns)`."""

    kind = "static student"

    def __init__(self, weights: dict[str, np.ndarray], settings: dict[str, Any], tasks: dict[str, dict[str, Any]],
                 encoder: Encoder, tokenizer_info: dict[str, Any] | None = None, mask: str = AUG_MASK) -> None:
        self.encoder, self.tokenizer_info, self.mask = encoder, tokenizer_info or {}, mask
        self.tasks = tasks
        self.table = np.ascontiguousarray(weights["embedding.weight"], dtype=np.float32)
        self.weight = (_softplus(weights["token_weight.weight"][:, 0]) if settings.get("pooling") == "weighted"
                       else None)
        self.buckets = int(settings.get("bigram_buckets") or 0)
        self.bigram = np.ascontiguousarray(weights["bigram.weight"], np.float32) if self.buckets else None
        self.heads: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for task in tasks:
            prefix = f"heads.heads.{task}."
            layers = sorted({int(k[len(prefix):].split(".")[0]) for k in weights if k.startswith(prefix)})
            self.heads[task] = [(np.ascontiguousarray(weights[f"{prefix}{i}.weight"].T, np.float32),
                                 np.asarray(weights[f"{prefix}{i}.bias"], np.float32)) for i in layers]

        self.folded = {t: Folded(layers[0], self.table, self.bigram, tasks[t]["is_pair"], self.weight, self.buckets)
                       for t, layers in self.heads.items()}  # made once, at load

    # ---- building ---------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Any, check_texts: Sequence[str]) -> StaticNumpy:
        """From a loaded StaticStudent; its tokenizer checked on `check_texts` (see fast_ids)."""
        weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        tasks = {t: {"is_pair": s.is_pair} for t, s in model.specs.items()}
        tok = model.tokens
        encoder, info = fast_ids(tok.tokenizer.backend_tokenizer.to_str(), model.max_length, tok.unk_id, check_texts)
        return cls(weights, model.settings(), tasks, encoder, info, tok.mask)

    @classmethod
    def from_folder(cls, folder: str | Path, check_texts: Sequence[str]) -> StaticNumpy:
        """From a static student's folder (model.safetensors, mkd.json, tokenizer.json), without PyTorch."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        try:
            meta = json.loads((folder / "mkd.json").read_text(encoding="utf-8"))
            tokenizer_json = (folder / "tokenizer.json").read_text(encoding="utf-8")
            weights = load_file(str(folder / "model.safetensors"))
        except (OSError, ValueError) as e:
            raise MkdError(f"cannot read the static student in {folder} ({str(e)[:80]})",
                           "give a folder that mkd distill wrote") from None
        if meta.get("arch") != "static":
            raise MkdError(f"{folder} holds a {meta.get('arch')} model, not a static student",
                           "serve it with mkd predict --model DIR")
        settings = meta["settings"]
        tasks = {t: {"is_pair": len(s["text_fields"]) == 2 and not s.get("join")} for t, s in meta["tasks"].items()}
        unk, mask = _special(folder, tokenizer_json)
        encoder, info = fast_ids(tokenizer_json, settings["max_length"], unk, check_texts)
        return cls(weights, settings, tasks, encoder, info, mask)

    # ---- serving ----------------------------------------------------------------------------------
    def encode(self, texts: list[str]) -> Ragged:
        """Ids of raw texts; the augmentation's mask reads as the tokenizer's own (SubwordTokens)."""
        return self.encoder(self.with_mask(texts))

    def sentences(self, ragged: Ragged) -> np.ndarray:
        """(n, dim) pooled vectors: StaticStudent.sentence on unpadded ids."""
        return _Pool(ragged.ids, ragged.lengths, self.weight, self.buckets).of(self.table, self.bigram)

    def batch_logits(self, task: str, columns: Sequence[Sequence[str]]) -> np.ndarray:
        n = len(columns[0])
        fold = self.folded[task]
        ragged = self.encode([*columns[0], *columns[1]] if fold.pair else list(columns[0]))
        x = fold.first_layer(ragged, n)
        rest = self.heads[task][1:]
        for w, b in rest:
            np.maximum(x, 0.0, out=x)
            x = x @ w + b
        return x


class _Pool:
    """One batch of texts ready to be pooled from any table of the vocabulary's rows: StaticStudent.sentence
    (weighted or plain mean of token rows, plus the mean of hashed adjacent-pair rows) without padding."""

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, weight: np.ndarray | None, buckets: int) -> None:
        self.ids = ids
        self.starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.starts[1:])
        if weight is None:
            self.w, self.den = np.ones(len(ids), np.float32), lengths.astype(np.float32)
        else:
            self.w = weight[ids]
            den = np.add.reduceat(self.w, self.starts[:-1]) if len(ids) else np.zeros(0, np.float32)
            self.den = np.maximum(den, 1e-6)
        if buckets:
            keep = np.ones(max(len(ids) - 1, 0), dtype=bool)
            keep[self.starts[1:-1] - 1] = False  # a pair across two texts
            self.pairs = np.remainder(ids[:-1] * PRIME + ids[1:], buckets)[keep]
            counts = lengths - 1
            self.pstarts = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(counts, out=self.pstarts[1:])
            self.pcounts = np.maximum(counts, 1).astype(np.float32)

    def of(self, table: np.ndarray, bigram: np.ndarray | None = None, first: int = 0,
           count: int | None = None) -> np.ndarray:
        """(count, table width): texts first.. first + count - 1 (default: all), each its pooled rows of `table`
        (and of `bigram`, the hashed pairs' table)."""
        end = len(self.den) if count is None else first + count
        out = _bag_sums(table, self.ids, self.starts[first: end + 1], self.w)
        out /= self.den[first:end, None]
        if bigram is not None:
            ones = np.ones(len(self.pairs), np.float32)
            out += _bag_sums(bigram, self.pairs, self.pstarts[first: end + 1], ones) / self.pcounts[first:end, None]
        return out


class Folded:
    """A head's first layer (x @ w + b) folded into the tables: pooling is linear, so pooled @ w is the pooled
    rows of table @ w. A pair head reads [u, v, |u-v|, u*v]: its u and v blocks fold, the other two multiply."""

    def __init__(self, layer: tuple[np.ndarray, np.ndarray], table: np.ndarray, bigram: np.ndarray | None,
                 pair: bool, weight: np.ndarray | None = None, buckets: int = 0) -> None:
        w, self.bias = layer
        self.pair, dim = pair, table.shape[1]
        self.table, self.bigram = table, bigram  # a pair head also reads u and v themselves
        self.weight, self.buckets = weight, buckets
        blocks = [w[:dim], w[dim: 2 * dim]] if pair else [w]
        self.tables = [np.ascontiguousarray(table @ b, np.float32) for b in blocks]
        self.bigrams = [None if bigram is None else np.ascontiguousarray(bigram @ b, np.float32) for b in blocks]
        self.rest = np.ascontiguousarray(w[2 * dim:], np.float32) if pair else None

    def first_layer(self, ragged: Ragged, n: int, kernels: Any = KERNELS) -> np.ndarray:
        """(n, width) first-layer outputs of n texts (pairs: ragged holds the n first texts, then the n second
        ones): by the compiled kernels (mkd.serving.static_kernels) when there are, else by scipy's."""
        if kernels is not None:
            return self._compiled(kernels, ragged, n)
        pool = _Pool(ragged.ids, ragged.lengths, self.weight, self.buckets)
        return self.pair_layer(pool, n) if self.pair else self.single_layer(pool)

    def _compiled(self, kernels: Any, ragged: Ragged, n: int) -> np.ndarray:
        starts = np.zeros(len(ragged.lengths) + 1, dtype=np.int64)
        np.cumsum(ragged.lengths, out=starts[1:])
        weight = _NO_ROWS if self.weight is None else self.weight
        out = np.empty((n, len(self.bias)), np.float32)
        if not self.pair:
            kernels.single(ragged.ids, starts, weight, self.tables[0], self.buckets, _or_empty(self.bigrams[0]),
                           self.bias, out)
            return out
        assert self.rest is not None
        feats = np.empty((n, 2 * self.table.shape[1]), np.float32)
        kernels.pair(ragged.ids, starts, weight, self.table, self.tables[0], self.tables[1], self.buckets,
                     _or_empty(self.bigram), _or_empty(self.bigrams[0]), _or_empty(self.bigrams[1]), self.bias,
                     feats, out)
        out += feats @ self.rest
        return out

    def single_layer(self, pool: _Pool) -> np.ndarray:
        out = pool.of(self.tables[0], self.bigrams[0])
        out += self.bias
        return out

    def pair_layer(self, pool: _Pool, n: int) -> np.ndarray:
        """`pool` holds 2n texts: the n first ones, then the n second ones."""
        assert self.rest is not None
        both = pool.of(self.table, self.bigram)
        u, v = both[:n], both[n:]
        dim = self.table.shape[1]
        feats = np.empty((n, 2 * dim), np.float32)
        np.subtract(u, v, out=feats[:, :dim])
        np.abs(feats[:, :dim], out=feats[:, :dim])
        np.multiply(u, v, out=feats[:, dim:])
        out = feats @ self.rest
        out += pool.of(self.tables[0], self.bigrams[0], 0, n)
        out += pool.of(self.tables[1], self.bigrams[1], n, n)
        out += self.bias
        return out


def _special(folder: Path, tokenizer_json: str) -> tuple[int, str]:
    """(unknown token id, mask token) as SubwordTokens reads them from a saved tokenizer: the
    tokenizer_config's tokens; no unknown token means the pad id, no mask the unknown token."""
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}

    def token(key: str) -> str | None:
        value = config.get(key)
        return value.get("content") if isinstance(value, dict) else value

    model = json.loads(tokenizer_json).get("model", {})
    unk = token("unk_token") or model.get("unk_token")
    vocab = model.get("vocab")
    ids = vocab if isinstance(vocab, dict) else {}
    pad_id = ids.get(token("pad_token") or "", 0)
    return ids.get(unk or "", pad_id), token("mask_token") or unk or ""
