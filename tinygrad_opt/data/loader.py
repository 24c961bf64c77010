"""Batches: a seeded shuffle each epoch, any batch size, and the full-batch regime."""
import numpy as np


def batch_indices(n, batch_size, rng):
    """Index arrays covering 0..n-1 once, in a random order drawn from `rng`.

    batch_size None (or >= n) gives one batch of everything: gradient descent.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None (full batch), got {batch_size}")
    order = rng.permutation(n)
    size = n if batch_size is None else min(batch_size, n)
    return [order[i:i + size] for i in range(0, n, size)]


def chunks(indices, chunk_size):
    """Split one (large) batch into chunks of at most chunk_size, to bound memory."""
    return [indices[i:i + chunk_size] for i in range(0, len(indices), chunk_size)]


class DataLoader:
    """Batches of (inputs, targets), as PyTorch's DataLoader gives them: iterate it once
    an epoch (each pass starts afresh, so `Trainer.fit` takes it as its data).

    Args:
        data: an (inputs, targets) pair of arrays (the first axis the samples), or a
            dataset object (len(ds), ds[i] -> (input, target)).
        batch_size: samples per batch. shuffle: a new order every epoch, drawn from a
            generator seeded with `seed` (the same seed, the same orders).
        drop_last: leave out the last batch when it is smaller than batch_size.
    """

    def __init__(self, data, batch_size=1, shuffle=False, drop_last=False, seed=0):
        if isinstance(data, tuple) and len(data) == 2:
            inputs, targets = (np.asarray(a) for a in data)
            if len(inputs) != len(targets):
                raise ValueError(f"DataLoader: {len(inputs)} inputs for {len(targets)} "
                                 f"targets")
            self._get = lambda index: (inputs[index], targets[index])
            self.n = len(inputs)
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            self._get = lambda index: tuple(
                np.stack([np.asarray(data[int(i)][k]) for i in index]) for k in (0, 1))
            self.n = len(data)
        else:
            raise TypeError(f"DataLoader takes (inputs, targets) arrays or a dataset "
                            f"(len and [i]), got {type(data).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a whole number >= 1, got "
                             f"{batch_size!r}")
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        full, rest = divmod(self.n, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for i in range(len(self)):
            yield self._get(order[i * self.batch_size:(i + 1) * self.batch_size])
