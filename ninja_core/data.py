"""Words, vocabulary, the (context -> next character) dataset and its splits."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "names.txt"
MAX_DATA_BYTES = 10 * 1024 * 1024  # a word list bigger than this is almost surely the wrong file
MAX_WORD_CHARS = 64
SEPARATOR = "."  # index 0: marks both the start context and the end of a word
SPLIT_SEED = 42  # the words are shuffled once with this seed before the 80/10/10 split


class DataError(ValueError):
    """The word list cannot be used; the message names the file and, where it applies, the line."""


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # chars[0] == "."; the sorted characters of the data follow

    @property
    def size(self) -> int:
        return len(self.chars)

    @property
    def stoi(self) -> dict[str, int]:
        return {ch: i for i, ch in enumerate(self.chars)}

    def decode(self, indices: list[int]) -> str:
        return "".join(self.chars[i] for i in indices)


@dataclass(frozen=True)
class Dataset:
    path: str
    words: tuple[str, ...]
    vocab: Vocab
    block_size: int
    Xtr: torch.Tensor  # (N_train, block_size) int64 contexts
    Ytr: torch.Tensor  # (N_train,) int64 next-character targets
    Xdev: torch.Tensor
    Ydev: torch.Tensor
    Xte: torch.Tensor
    Yte: torch.Tensor


def read_words(path: str | Path | None = None) -> list[str]:
    """Read a word list, one word per line; every problem is a DataError naming file and line."""
    p = Path(path) if path is not None else DEFAULT_DATA
    if not p.exists():
        raise DataError(f"{p}: no such file")
    if not p.is_file():
        raise DataError(f"{p}: not a regular file")
    size = p.stat().st_size
    if size > MAX_DATA_BYTES:
        raise DataError(f"{p}: {size} bytes is over the limit of {MAX_DATA_BYTES} bytes")
    if size == 0:
        raise DataError(f"{p}: the file is empty; expected one word per line")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    words: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        word = line.strip()
        if not word:
            continue
        if SEPARATOR in word:
            raise DataError(f"{p}, line {lineno}: {word!r} contains {SEPARATOR!r}, which is the word separator")
        if any(ch.isspace() for ch in word):
            raise DataError(f"{p}, line {lineno}: {word!r} contains white space; expected one word per line")
        if len(word) > MAX_WORD_CHARS:
            raise DataError(f"{p}, line {lineno}: a word of {len(word)} characters is over the limit of {MAX_WORD_CHARS}")
        words.append(word)
    if not words:
        raise DataError(f"{p}: only blank lines; expected one word per line")
    return words


def build_vocab(words: list[str] | tuple[str, ...]) -> Vocab:
    return Vocab(chars=(SEPARATOR, *sorted(set("".join(words)))))


def build_xy(words: list[str] | tuple[str, ...], vocab: Vocab, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    stoi = vocab.stoi
    X: list[list[int]] = []
    Y: list[int] = []
    for w in words:
        context = [0] * block_size
        for ch in w + SEPARATOR:
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = [*context[1:], ix]
    return torch.tensor(X, dtype=torch.long).view(-1, block_size), torch.tensor(Y, dtype=torch.long)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, block_size: int) -> Dataset:
    words = read_words(path)
    vocab = build_vocab(words)
    # Shuffle a copy and split *that* copy (the seed notebook split the unshuffled list).
    shuffled = list(words)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    n1, n2 = int(0.8 * len(shuffled)), int(0.9 * len(shuffled))
    Xtr, Ytr = build_xy(shuffled[:n1], vocab, block_size)
    Xdev, Ydev = build_xy(shuffled[n1:n2], vocab, block_size)
    Xte, Yte = build_xy(shuffled[n2:], vocab, block_size)
    if len(Xtr) == 0:
        raise DataError(f"{path}: too few words to build a training split")
    return Dataset(path, tuple(words), vocab, block_size, Xtr, Ytr, Xdev, Ydev, Xte, Yte)


def load_dataset(path: str | Path | None = None, block_size: int = 3) -> Dataset:
    """Load (and cache) a word list as a dataset; the default is the bundled US baby names."""
    p = Path(path) if path is not None else DEFAULT_DATA
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = 0  # read_words reports the missing file with its name
    return _load(str(p), mtime, block_size)
