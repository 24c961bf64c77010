"""Initialisation as in Keras (the article's framework): Glorot-uniform kernels, zero biases."""
import numpy as np


_default = np.random.default_rng(0)   # what layers draw from when given no rng


def manual_seed(seed):
    """Re-seed the generator that layers draw from when given no `rng` (as torch's
    manual_seed does): two layers built after it differ from each other, and a program
    that builds them in the same order gets the same weights every run. It starts seeded
    with 0, so a program is reproducible without calling this."""
    global _default
    _default = np.random.default_rng(seed)


def as_generator(rng):
    """A numpy Generator from a seed (int), a Generator, or None (the shared default
    generator of `manual_seed`: each layer built without an rng gets new draws)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return _default if rng is None else np.random.default_rng(rng)


def default_seed():
    """A fresh 32-bit seed from the shared default generator (for Dropout's masks)."""
    return int(_default.integers(2 ** 32))


def glorot_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)
