"""GELU (Hendrycks & Gimpel 2016), as PyTorch defines it:

    exact ("none"):   y = x · Φ(x) = 0.5·x·(1 + erf(x / sqrt(2)))
                      dy/dx = Φ(x) + x·φ(x),       φ(x) = exp(-x²/2) / sqrt(2π)
    "tanh":           u = sqrt(2/π)·(x + 0.044715·x³)
                      y = 0.5·x·(1 + tanh(u))
                      dy/dx = 0.5·(1 + tanh(u)) + 0.5·x·(1 - tanh(u)²)·sqrt(2/π)·(1 + 3·0.044715·x²)

numpy has no erf: the reference applies Python's `math.erf` element by element (slow,
and readable); the kernel is the same formula compiled, elementwise in parallel. In
float32 the kernel's erf and exp are ops/vecmath.py's (within 8 ulp and 1 ulp of the
C library's; its loops vectorise, which the C library's calls kept them from).
"""
import math

import numpy as np

from ..autograd import Function
from ..jit import prange, serial_or_parallel, use_reference
from .vecmath import erf32, exp32

_C = math.sqrt(2 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _erf_array(z):
    return _erf(z).astype(z.dtype)


def gelu_reference(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(_C * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1 + _erf_array(x / math.sqrt(2)))


def gelu_backward_reference(x, g, approximate="none"):
    if approximate == "tanh":
        t = np.tanh(_C * (x + 0.044715 * x * x * x))
        return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _C * (1 + 3 * 0.044715 * x * x))
    cdf = 0.5 * (1 + _erf_array(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return g * (cdf + x * pdf)


def _forward_loops(x, y, tanh_form, c, float32):
    """c: the constants (1/2, 1, 3, sqrt(2/π), 0.044715, sqrt(2), sqrt(2π)) in x's dtype,
    so that float32 is computed in float32, as the reference computes it. float32: x is
    float32, and erf is vecmath's."""
    half, one, three, root_2_pi, k, root_2, root_tau = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in prange(x.size):
        v = x[i]
        if tanh_form:
            y[i] = half * v * (one + np.tanh(root_2_pi * (v + k * v * v * v)))
        elif float32:
            y[i] = half * v * (one + erf32(v / root_2))
        else:
            y[i] = half * v * (one + math.erf(v / root_2))


def _backward_loops(x, g, dx, tanh_form, c, float32):
    half, one, three, root_2_pi, k, root_2, root_tau = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in prange(x.size):
        v = x[i]
        if tanh_form:
            t = np.tanh(root_2_pi * (v + k * v * v * v))
            dx[i] = g[i] * (half * (one + t) + half * v * (one - t * t) * root_2_pi
                            * (one + three * k * v * v))
        elif float32:
            cdf = half * (one + erf32(v / root_2))
            pdf = exp32(-half * v * v) / root_tau
            dx[i] = g[i] * (cdf + v * pdf)
        else:
            cdf = half * (one + math.erf(v / root_2))
            pdf = np.exp(-half * v * v) / root_tau
            dx[i] = g[i] * (cdf + v * pdf)


def _constants(dtype):
    return np.array([0.5, 1.0, 3.0, _C, 0.044715, math.sqrt(2), math.sqrt(2 * math.pi)],
                    dtype=dtype)


_forward_kernel = serial_or_parallel(_forward_loops)
_backward_kernel = serial_or_parallel(_backward_loops)


class GELUFn(Function):
    """Input x (any shape); option approximate: "none" (erf) or "tanh"."""

    @staticmethod
    def forward(ctx, x, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got "
                             f"{approximate!r}")
        ctx.save_for_backward(x, approximate)
        if use_reference():
            return gelu_reference(x, approximate)
        flat = np.ascontiguousarray(x).reshape(-1)
        y = np.empty_like(flat)
        _forward_kernel(flat, y, approximate == "tanh", _constants(flat.dtype),
                        flat.dtype == np.float32)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x, approximate = ctx.saved
        if use_reference():
            return gelu_backward_reference(x, g, approximate)
        flat = np.ascontiguousarray(x).reshape(-1)
        dx = np.empty_like(flat)
        _backward_kernel(flat, np.ascontiguousarray(g, dtype=x.dtype).reshape(-1), dx,
                         approximate == "tanh", _constants(flat.dtype),
                         flat.dtype == np.float32)
        return dx.reshape(x.shape)
