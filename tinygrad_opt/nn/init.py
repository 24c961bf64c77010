"""Initialisation as in Keras (the article's framework): Glorot-uniform kernels, zero biases."""
import numpy as np


def as_generator(rng):
    """A numpy Generator from a seed (int), a Generator, or None (seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def glorot_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)
