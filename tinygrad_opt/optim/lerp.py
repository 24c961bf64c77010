"""Interpolation as torch.lerp rounds it, which the rules that follow PyTorch or a
PyTorch package (Adamax, Adafactor, Schedule-Free, SOAP) reproduce:

    lerp(a, b, weight) = a + weight·(b - a)          where |weight| < 0.5
                       = b - (b - a)·(1 - weight)    otherwise

The two forms are the same number in exact arithmetic; in floating point each is the
more accurate on its side of 0.5, and a trajectory that must match PyTorch's to 1e-12
must round as it does.
"""
from ..jit import jit


def lerp(a, b, weight):
    """The references' form: a new array (weight a Python number)."""
    return a + weight * (b - a) if abs(weight) < 0.5 else b - (b - a) * (1 - weight)


def _lerp_one(a, b, weight, small):
    """The kernels' form, for one value (small: |weight| < 0.5, decided by the caller)."""
    return a + weight * (b - a) if small else b - (b - a) * (1 - weight)


lerp_one = jit(_lerp_one, inline=True)
