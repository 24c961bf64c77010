"""Text data for language models: Jane Austen's novels (shipped, checked), a text of
one's own, character ids and random windows."""
import gzip
import os
import shutil

import numpy as np
import pytest

from tinygrad_opt.data import DataError, load, load_text, windows
from tinygrad_opt.data.text import AUSTEN_BOOKS, AUSTEN_DIR


@pytest.fixture(scope="module")
def austen():
    return load("austen")


def test_austen_is_six_books_with_the_last_tenth_of_each_held_out(austen):
    texts = []
    for book in AUSTEN_BOOKS:
        with gzip.open(os.path.join(AUSTEN_DIR, book + ".txt.gz"), "rb") as f:
            texts.append(f.read().decode("utf-8"))
    assert austen.vocab == sorted(set("".join(texts))) and austen.vocab_size == 81
    cuts = [len(t) - round(len(t) / 10) for t in texts]
    assert austen.decode(austen.train) == "".join(t[:c] for t, c in zip(texts, cuts))
    assert austen.decode(austen.val) == "".join(t[c:] for t, c in zip(texts, cuts))
    assert 3_900_000 < len(austen.train) + len(austen.val) < 4_100_000
    assert austen.train.dtype == np.int64


def test_an_altered_book_is_refused_naming_it(tmp_path):
    folder = tmp_path / "austen"
    shutil.copytree(AUSTEN_DIR, folder)
    with gzip.open(folder / "emma.txt.gz", "rb") as f:
        text = f.read()
    with gzip.open(folder / "emma.txt.gz", "wb") as f:
        f.write(text.replace(b"Emma", b"Amme", 1))
    with pytest.raises(DataError, match=r"emma.txt.gz: its text does not match its SHA-256"):
        load("austen", data_dir=str(folder))
    (folder / "persuasion.txt.gz").unlink()
    shutil.copy(os.path.join(AUSTEN_DIR, "emma.txt.gz"), folder / "emma.txt.gz")
    with pytest.raises(DataError, match=r"persuasion.txt.gz: cannot be read"):
        load("austen", data_dir=str(folder))


def test_encode_decode_and_their_refusals(austen):
    text = "It is a truth universally acknowledged"
    assert austen.decode(austen.encode(text)) == text
    with pytest.raises(ValueError, match=r"character '€' is not in the austen vocabulary"):
        austen.encode("5 €")
    with pytest.raises(ValueError, match=r"id 81 outside the vocabulary of 81"):
        austen.decode([3, 81])


def test_windows_are_seeded_and_the_targets_are_the_next_characters(austen):
    x, y = austen.batch(8, 64, 0)
    assert x.shape == y.shape == (8, 64)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    again = austen.batch(8, 64, np.random.default_rng(0))
    np.testing.assert_array_equal(x, again[0])
    assert not np.array_equal(x, austen.batch(8, 64, 1)[0])
    vx, _ = austen.batch(4, 64, 0, split="val")
    assert austen.decode(vx[0]) in austen.decode(austen.val)
    with pytest.raises(ValueError, match="shorter than one window of 10"):
        windows(np.arange(5), 2, 10, 0)


def test_a_text_of_ones_own_and_what_is_not_one(tmp_path):
    good = tmp_path / "poem.txt"
    good.write_text("Shall I compare thee to a summer's day?\n" * 20, encoding="utf-8")
    corpus = load_text(str(good), context=16)
    assert corpus.decode(corpus.train) + corpus.decode(corpus.val) == good.read_text()
    assert len(corpus.val) == round(len(good.read_text()) / 10)
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=r"data.bin: not UTF-8 text"):
        load_text(str(binary))
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"text\0more text" * 10)
    with pytest.raises(DataError, match=r"nul.txt: holds NUL bytes"):
        load_text(str(nul))
    short = tmp_path / "short.txt"
    short.write_text("a few words")
    with pytest.raises(DataError, match=r"short.txt: 11 characters leave 1 in a split, "
                                        r"fewer than one window of 8"):
        load_text(str(short), context=8)
    with pytest.raises(DataError, match="not a file"):
        load_text(str(tmp_path))


def test_batches_for_the_trainer_go_on_in_training_and_repeat_in_validation(austen):
    train = austen.batches(4, 16, steps=3, seed=0)
    first, second = list(train), list(train)
    assert len(train) == 3 and len(first) == 3
    assert not np.array_equal(first[0][0], second[0][0])    # the stream goes on
    stream = np.random.default_rng(0)
    for x, y in first + second:                             # ... as one Generator
        want_x, want_y = austen.batch(4, 16, stream)
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)
    val = austen.batches(4, 16, steps=2, seed=5, split="val")
    a, b = list(val), list(val)
    assert all(np.array_equal(p[0], q[0]) for p, q in zip(a, b))
    with pytest.raises(ValueError, match="split must be 'train' or 'val', got 'test'"):
        austen.batches(4, 16, 2, split="test")
    with pytest.raises(ValueError, match="steps must be a whole number >= 1, got 0"):
        austen.batches(4, 16, 0)
