"""Optimizer state that underflows is set to zero, in the reference and the kernel alike.

A state that decays where a weight's gradient stays zero (a momentum m ← β·m, a moving
average of g²) passes through its dtype's subnormal numbers on its way to 0: in float32,
magnitudes below 2^-126 ≈ 1.18e-38 (`np.finfo(np.float32).tiny`). Processors compute
with those on a slow path (on Intel, a microcode assist per operation), so an update
over a state with many of them runs many times slower than over the same state with
none (the article's model trained with Adam holds about 200,000 of them after an epoch;
docs/performance.md has the kernel timed both ways). Every rule therefore flushes each
state it decays, one formula line more in each:

    m ← flush(m)          flush(x) = 0 where |x| < tiny, else x        (NaN stays NaN)

and the kernels apply the same test to each new value before they store it, so the two
paths stay equal. This is the flush-to-zero a processor's FTZ mode would do, applied to
the optimizer's state only: the forward and backward passes, numpy and the tests of
subnormal arithmetic are left as IEEE 754 defines them.

What it can change. A flushed value was below 1.18e-38 in float32: in Adam's update
lr·m/(sqrt(v) + eps) a flushed m moved a weight by less than lr·1.18e-38/eps, which
changes no float32 weight of magnitude above about 2e-24 for lr <= 1 and eps >= 1e-7;
a flushed v changed sqrt(v) + eps by less than 1.1e-19, below half a float32 spacing of
any eps above 2e-12. tests/test_underflow.py trains a network both ways and compares
the weights bit for bit. In float64 the threshold is 2.2e-308, which no trajectory of
the tests comes near: the golden trajectories against PyTorch and Keras are unchanged.

`keep_subnormals()` turns the flush off inside a `with` block (the tests and `make
bench` compare the two).
"""
from contextlib import contextmanager

import numpy as np

from ..jit import jit

_enabled = True


def threshold(dtype):
    """The magnitude below which a state value of `dtype` is set to 0: the smallest
    normal number (0 while keep_subnormals() is on: then nothing is below it)."""
    return np.dtype(dtype).type(np.finfo(dtype).tiny if _enabled else 0)


def flush(x):
    """The reference's line: x's values of magnitude below threshold(x.dtype) set to 0,
    in place."""
    x[np.abs(x) < threshold(x.dtype)] = 0


def _flushed(x, tiny):
    """The kernels' test, for one value: 0 when |x| < tiny, else x (x - x is +0 for a
    finite x, in x's dtype, as the reference's 0)."""
    return x - x if abs(x) < tiny else x


flushed = jit(_flushed, inline=True)


@contextmanager
def keep_subnormals():
    """Inside this block no rule flushes its state (IEEE 754's gradual underflow, as
    PyTorch computes by default on CPU); the previous setting comes back on exit."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous
