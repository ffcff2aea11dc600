"""Word-level tokenization for the LSTM students: lowercase words, a vocabulary from the transfer set.

Word vectors (GloVe, spaCy) are keyed by lowercased, Penn-Treebank-like tokens, so the split keeps
clitics apart ("don't" -> "do", "n't"; "it's" -> "it", "'s") to find more of them. The augmentation's
mask token is read as <unk>: a word-level student has no mask of its own (MKD.md, stage 2).

The split IS a Hugging Face `tokenizers` pipeline (normalizer + pre-tokenizer), so the tokenizer.json
that an export ships (`word_tokenizer`) cannot tokenize differently from training.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from mkd.data.encode import AUG_MASK
from mkd.errors import MkdError
from mkd.io import write_text

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
VOCAB_FILE = "vocab.txt"
SPACE = r"\s\x1c-\x1f"
"""Python's whitespace (str.isspace): Unicode White_Space plus the four information separators."""
TOKEN_PATTERN = rf"<unk>|\w+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|\w+|-{{2,}}|\.{{3}}|[^\w{SPACE}]"


@lru_cache(maxsize=1)
def _pipeline() -> tuple[Any, Any]:
    """(normalizer, pre-tokenizer): the mask and blank texts become <unk>, lowercase, then the pattern's
    matches are the tokens (whitespace dropped)."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence([normalizers.Replace(AUG_MASK, f" {UNK} "),
                                       normalizers.Replace(Regex(rf"\A[{SPACE}]*\z"), UNK), normalizers.Lowercase()])
    return normalizer, pre_tokenizers.Split(Regex(TOKEN_PATTERN), behavior="removed", invert=True)


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens; each AUG_MASK becomes <unk>."""
    normalizer, split = _pipeline()
    return [piece for piece, _ in split.pre_tokenize_str(normalizer.normalize_str(text))]


def word_tokenizer(words: Sequence[str], max_length: int) -> Any:
    """A `tokenizers.Tokenizer` giving exactly WordVocab.ids (truncated to max_length, padded with <pad>);
    only an empty string differs: it gives no token, where mkd reads one <unk>."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    normalizer, split = _pipeline()
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, split
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=PAD_ID, pad_token=PAD)
    return tokenizer


class WordVocab:
    """id <-> word, with <pad> = 0 and <unk> = 1; one word a line in vocab.txt."""

    def __init__(self, words: Sequence[str]) -> None:
        if list(words[:2]) != [PAD, UNK]:
            raise ValueError(f"a vocabulary starts with {PAD} and {UNK}")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("a vocabulary lists each word once")

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None) -> WordVocab:
        """Words seen at least min_count times, most frequent first (ties alphabetical: deterministic)."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(tokenize(text))
        counts.pop(UNK, None)
        kept = sorted((w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK)),
                      key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept[:max_size]])

    def __len__(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    def ids(self, text: str, max_length: int) -> list[int]:
        """Token ids truncated to max_length; an empty text is one <unk> so no row is empty."""
        found = [self.index.get(w, UNK_ID) for w in tokenize(text)[:max_length]]
        return found or [UNK_ID]

    def encode_texts(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        return [self.ids(t, max_length) for t in texts]

    def save(self, folder: Path) -> None:
        write_text(Path(folder) / VOCAB_FILE, "\n".join(self.words) + "\n")

    @classmethod
    def load(cls, folder: Path) -> WordVocab:
        path = Path(folder) / VOCAB_FILE
        if not path.is_file():
            raise MkdError(f"{folder} has no word vocabulary ({VOCAB_FILE})", "retrain or restore that model folder")
        words = path.read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        try:
            return cls(words)
        except ValueError as e:
            raise MkdError(f"{path} is not a valid vocabulary ({e})", "retrain or restore that model folder") from None
