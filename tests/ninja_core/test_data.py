from __future__ import annotations

from pathlib import Path

import pytest

from ninja_core import data as data_mod
from ninja_core.data import DEFAULT_DATA, DataError, build_vocab, load_dataset, read_words


def test_bundled_names_are_most_frequent_first() -> None:
    words = read_words()
    assert len(words) > 20_000
    assert words[:3] == ["emma", "liam", "olivia"]  # SSA 2017, both sexes merged
    assert all(w.isalpha() and w.islower() and w.isascii() for w in words)


def test_vocab_has_separator_first_then_sorted_chars() -> None:
    vocab = build_vocab(["bca", "d"])
    assert vocab.chars == (".", "a", "b", "c", "d")
    assert load_dataset().vocab.size == 27


def test_splits_come_from_the_shuffled_list() -> None:
    ds = load_dataset()
    words = read_words()
    n1 = int(0.8 * len(words))
    # the seed notebook split the unshuffled list: then the test split would be the rarest names
    first_test_word = ds.vocab.decode(ds.Yte[: ds.Yte.tolist().index(0)].tolist())
    assert first_test_word not in words[n1:][:10]
    total = len(ds.Xtr) + len(ds.Xdev) + len(ds.Xte)
    assert total == sum(len(w) + 1 for w in words)
    assert 0.75 < len(ds.Xtr) / total < 0.85


def test_contexts_start_with_dots() -> None:
    ds = load_dataset(block_size=3)
    assert ds.Xtr.shape[1] == 3
    assert ds.Xtr[0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(("content", "expected"), [
    ("", "empty"),
    ("\n\n  \n", "only blank lines"),
    ("anna\nbob\nst.ella\n", "line 3"),
    ("anna\nmary jane\n", "line 2"),
])
def test_bad_word_lists_name_the_file_and_line(tmp_path: Path, content: str, expected: str) -> None:
    f = tmp_path / "words.txt"
    f.write_text(content)
    with pytest.raises(DataError) as err:
        read_words(f)
    assert str(f) in str(err.value) and expected in str(err.value)


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_words(tmp_path / "nope.txt")
    big = tmp_path / "big.txt"
    big.write_text("abc\n" * 100)
    monkeypatch.setattr(data_mod, "MAX_DATA_BYTES", 50)
    with pytest.raises(DataError, match="over the limit"):
        read_words(big)


def test_any_word_list_can_replace_the_default(tmp_path: Path) -> None:
    f = tmp_path / "w.txt"
    f.write_text("\n".join(["xyz", "zyx", "yy"] * 20))
    ds = load_dataset(f)
    assert ds.vocab.chars == (".", "x", "y", "z")
    assert DEFAULT_DATA.exists()
