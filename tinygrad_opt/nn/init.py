"""Initialisation: Keras' default (the article's framework) is Glorot-uniform kernels and zero
biases; Glorot (Xavier) and He (Kaiming) normal and uniform are offered too."""
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


def glorot_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """N(0, 2 / (fan_in + fan_out)), truncated at 2 standard deviations as Keras does
    (drawn again beyond them)."""
    return _truncated_normal(shape, np.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def he_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """U(-limit, limit), limit = sqrt(6 / fan_in) (He et al. 2015, for relu layers)."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """N(0, 2 / fan_in), truncated at 2 standard deviations as Keras does."""
    return _truncated_normal(shape, np.sqrt(2.0 / fan_in), rng, dtype)


def _truncated_normal(shape, std, rng, dtype):
    """Keras' truncated normal: a draw beyond 2 std is drawn again; Keras divides the
    std by 0.8796, the std of a unit normal truncated at ±2, to keep the variance."""
    std = std / 0.87962566103423978
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return (out * std).astype(dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
                "he_uniform": he_uniform, "he_normal": he_normal,
                "xavier_uniform": glorot_uniform, "xavier_normal": glorot_normal,
                "kaiming_uniform": he_uniform, "kaiming_normal": he_normal}


def initializer(name):
    """The initialiser called `name` (Keras' and PyTorch's names both)."""
    try:
        return INITIALIZERS[name]
    except KeyError:
        raise ValueError(f"unknown initialiser {name!r}; known: "
                         f"{', '.join(INITIALIZERS)}") from None
