"""Batches: a seeded shuffle each epoch, any batch size, and the full-batch regime."""


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
