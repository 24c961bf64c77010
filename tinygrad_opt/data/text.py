"""Text for character-level language models: Jane Austen's six novels (shipped, checked
against their SHA-256 sums at every load, nothing downloaded), or a plain-text file of
your own, as integer arrays of character ids, and random windows of them as batches.

    corpus = load("austen")            # tinygrad_opt.data.load, as for MNIST
    x, y = corpus.batch(32, 128, rng)  # (32, 128) ids, and the next character of each
    corpus.decode(x[0])                # back to text
    corpus.batches(32, 128, steps=100) # 100 such batches a pass, for Trainer.fit

The validation text is the last tenth of each book (of the file), never trained on: a
model is scored on passages it has not seen, from every book. The vocabulary is every
character of the whole text, sorted, so that the validation text is encodable too.
"""
import gzip
import hashlib
import os
from dataclasses import dataclass, field

import numpy as np

from .idx import DataError

AUSTEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "austen")
AUSTEN_BOOKS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice",
                "sensesensibility")
MAX_TEXT_BYTES = 1 << 30            # a file of one's own is read whole: at most 1 GiB


@dataclass
class TextCorpus:
    """A text as character ids: `train` and `val` (int64 arrays), the sorted `vocab`."""
    name: str
    train: np.ndarray
    val: np.ndarray
    vocab: list
    _index: dict = field(default=None, repr=False)

    def __post_init__(self):
        self._index = {c: i for i, c in enumerate(self.vocab)}

    @property
    def vocab_size(self):
        return len(self.vocab)

    def encode(self, text):
        """The ids of `text`'s characters; ValueError naming a character not in vocab."""
        try:
            return np.array([self._index[c] for c in text], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} is not in the {self.name} "
                             f"vocabulary") from None

    def decode(self, ids):
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.vocab)):
            raise ValueError(f"id {int(ids[(ids < 0) | (ids >= len(self.vocab))][0])} "
                             f"outside the vocabulary of {len(self.vocab)}")
        return "".join(self.vocab[i] for i in ids)

    def batch(self, batch_size, context, rng, split="train"):
        """`batch_size` windows of `context` ids at random places of `split` ("train" or
        "val"), drawn from `rng` (a numpy Generator or a seed), and the same windows one
        character later: (x, y), each (batch_size, context) int64."""
        return windows(self._split(split), batch_size, context, rng)

    def batches(self, batch_size, context, steps, seed=0, split="train"):
        """`steps` batches of random windows per pass, for `Trainer.fit` (one pass, one
        epoch): `TextBatches`. The training split's windows go on from pass to pass
        (one stream, seeded); the validation split's are the same at every pass, so
        that epochs are scored on the same text."""
        return TextBatches(self._split(split), batch_size, context, steps, seed,
                           fresh=split != "train")

    def _split(self, split):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return self.train if split == "train" else self.val


class TextBatches:
    """A re-iterable of `steps` (x, y) batches of windows of `ids` (see TextCorpus.
    batches): each pass draws from one Generator seeded with `seed`, made afresh at
    every pass when `fresh` (the same windows each time), kept across passes if not."""

    def __init__(self, ids, batch_size, context, steps, seed=0, fresh=False):
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
        windows(ids, 1, context, 0)                 # refuses a text shorter than a window
        self.ids, self.batch_size, self.context = ids, batch_size, context
        self.steps, self.seed, self.fresh = int(steps), seed, fresh
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __iter__(self):
        rng = np.random.default_rng(self.seed) if self.fresh else self.rng
        for _ in range(self.steps):
            yield windows(self.ids, self.batch_size, self.context, rng)


def windows(ids, batch_size, context, rng):
    """Random windows of `ids`: x = ids[s:s + context], y = ids[s + 1:s + context + 1]."""
    if context < 1 or batch_size < 1:
        raise ValueError(f"batch_size and context must be >= 1, got {batch_size}, {context}")
    if len(ids) < context + 1:
        raise ValueError(f"a text of {len(ids)} characters is shorter than one window of "
                         f"{context} and the character after it")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    starts = rng.integers(0, len(ids) - context, size=batch_size)
    offsets = starts[:, None] + np.arange(context)
    return ids[offsets], ids[offsets + 1]


def _split(texts, val_fraction):
    """(train text, val text): the last `val_fraction` of each text held out."""
    train, val = [], []
    for t in texts:
        cut = len(t) - int(round(len(t) * val_fraction))
        train.append(t[:cut])
        val.append(t[cut:])
    return "".join(train), "".join(val)


def _corpus(name, texts, val_fraction):
    vocab = sorted(set("".join(texts)))
    train, val = _split(texts, val_fraction)
    index = {c: i for i, c in enumerate(vocab)}
    as_ids = lambda s: np.fromiter((index[c] for c in s), dtype=np.int64, count=len(s))  # noqa: E731
    return TextCorpus(name, as_ids(train), as_ids(val), vocab)


def load_austen(data_dir=None):
    """Jane Austen's six novels (see the README beside them), each checked against its
    SHA-256 sum, the last tenth of each the validation text. Raises DataError naming a
    missing or altered file."""
    folder = data_dir or AUSTEN_DIR
    sums = _sums(os.path.join(folder, "SHA256SUMS.txt"))
    texts = []
    for book in AUSTEN_BOOKS:
        path = os.path.join(folder, book + ".txt.gz")
        try:
            with gzip.open(path, "rb") as f:
                raw = f.read(MAX_TEXT_BYTES + 1)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: cannot be read ({e})") from None
        if hashlib.sha256(raw).hexdigest() != sums.get(book + ".txt"):
            raise DataError(f"{path}: its text does not match its SHA-256 sum in "
                            f"SHA256SUMS.txt (altered or truncated)")
        texts.append(raw.decode("utf-8"))
    return _corpus("austen", texts, 0.1)


def _sums(path):
    try:
        with open(path, encoding="ascii") as f:
            return {name: digest for digest, name in (line.split() for line in f if line.strip())}
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from None


def load_text(path, val_fraction=0.1, context=1):
    """A plain-text file of one's own (UTF-8) as a TextCorpus, its last `val_fraction`
    the validation text. Raises DataError naming the file when it is not a regular file,
    not text (not UTF-8, or holding NUL bytes), larger than 1 GiB, or too short for one
    window of `context` characters (and the next) in both splits."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a file")
    with open(path, "rb") as f:
        raw = f.read(MAX_TEXT_BYTES + 1)
    if len(raw) > MAX_TEXT_BYTES:
        raise DataError(f"{path}: larger than {MAX_TEXT_BYTES >> 30} GiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if "\0" in text:
        raise DataError(f"{path}: holds NUL bytes: not plain text")
    corpus = _corpus(os.path.basename(path), [text], val_fraction)
    shortest = min(len(corpus.train), len(corpus.val))
    if shortest < context + 1:
        raise DataError(f"{path}: {len(text)} characters leave {shortest} in a split, "
                        f"fewer than one window of {context} and the character after it")
    return corpus
