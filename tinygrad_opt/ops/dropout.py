"""Inverted dropout with a counter-based random mask.

    keep_i = h(key, i) >= rate * 2**32,   out_i = x_i * keep_i / (1 - rate)

where h(key, i) is a 32-bit hash of the element index: Wellons' "lowbias32" mixer
applied to key + i * golden (all arithmetic modulo 2**32). No generator state is
advanced, so

- the same key gives the same mask, in the numpy reference and the kernel alike;
- backward recomputes the mask instead of storing it (the same function, applied to g);
- a layer only has to remember a seed and a call counter to be reproducible.

32-bit integer arithmetic keeps the kernel vectorisable (a 64-bit hash, or a conversion
to float, is not on AVX2).
"""
import numpy as np

from ..jit import jit, prange, serial_or_parallel, use_reference
from ..autograd import Function

_GOLDEN = 0x9E3779B9
_M1, _M2 = 0x7FEB352D, 0x846CA68B
_MASK32 = 0xFFFFFFFF


def lowbias32(z):
    """Wellons' 32-bit integer hash, on a Python int or a numpy uint32 array."""
    if isinstance(z, int):
        z = ((z ^ (z >> 16)) * _M1) & _MASK32
        z = ((z ^ (z >> 15)) * _M2) & _MASK32
        return z ^ (z >> 16)
    z = (z ^ (z >> np.uint32(16))) * np.uint32(_M1)   # uint32 arrays wrap modulo 2**32
    z = (z ^ (z >> np.uint32(15))) * np.uint32(_M2)
    return z ^ (z >> np.uint32(16))


def dropout_key(seed, call):
    """The 32-bit mask key of a layer's `call`-th training forward pass."""
    return lowbias32((lowbias32(int(seed) & _MASK32) + int(call) * _GOLDEN) & _MASK32)


def keep_threshold(rate):
    """Elements whose hash is >= this are kept: a fraction 1 - rate of them."""
    return min(int(round(rate * 2.0 ** 32)), _MASK32)


# --- numpy reference ----------------------------------------------------------------------
def dropout_reference(x, rate, key):
    i = np.arange(x.size, dtype=np.uint32)
    keep = lowbias32(np.uint32(key) + i * np.uint32(_GOLDEN)) >= np.uint32(keep_threshold(rate))
    return x * keep.reshape(x.shape) * x.dtype.type(1.0 / (1.0 - rate))


# --- Numba kernel -------------------------------------------------------------------------
def _element_hash(key, i):
    """lowbias32(key + i * golden) for one element, in uint32 arithmetic: the mask hash,
    shared by this kernel and the fused block's (ops/fused.py)."""
    z = np.uint32(key + np.uint32(i) * np.uint32(_GOLDEN))
    z = np.uint32((z ^ (z >> np.uint32(16))) * np.uint32(_M1))
    z = np.uint32((z ^ (z >> np.uint32(15))) * np.uint32(_M2))
    return np.uint32(z ^ (z >> np.uint32(16)))


element_hash = jit(_element_hash, inline=True)


def _dropout_loops(x, threshold, scale, key, out):
    xf, of = x.reshape(-1), out.reshape(-1)
    zero = out.dtype.type(0)
    for i in prange(xf.size):
        kept = element_hash(key, i) >= threshold
        of[i] = xf[i] * (scale if kept else zero)  # as the reference: NaN * 0 is NaN


_kernel = serial_or_parallel(_dropout_loops)


def dropout_kernel(x, rate, key):
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    _kernel(x, np.uint32(keep_threshold(rate)), x.dtype.type(1.0 / (1.0 - rate)),
            np.uint32(key), out)
    return out


class DropoutFn(Function):
    """Differentiable inverted dropout; the mask is a function of `key` alone."""

    @staticmethod
    def forward(ctx, x, rate, key):
        ctx.save_for_backward(rate, key)
        return (dropout_reference if use_reference() else dropout_kernel)(x, rate, key)

    @staticmethod
    def backward(ctx, g):
        rate, key = ctx.saved
        return (dropout_reference if use_reference() else dropout_kernel)(g, rate, key)
