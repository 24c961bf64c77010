"""Elementwise ops. Binary ops broadcast like numpy; the engine sums their gradients back
to each input's shape (`autograd.unbroadcast`)."""
import numpy as np

from ..autograd import Function


def _broadcast_check(name, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast "
                         f"(each axis, aligned from the right, must be equal or 1)") from None


class AddFn(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_check("add", a, b)
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class SubFn(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_check("sub", a, b)
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, -g


class MulFn(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_check("mul", a, b)
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return g * b, g * a


class DivFn(Function):
    @staticmethod
    def forward(ctx, a, b):
        _broadcast_check("div", a, b)
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        return g / b, -g * a / (b * b)


class NegFn(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return -g


class PowFn(Function):
    """a ** p for a scalar exponent p: d/da = p * a ** (p - 1)."""

    @staticmethod
    def forward(ctx, a, exponent):
        ctx.save_for_backward(a, exponent)
        return a ** a.dtype.type(exponent)

    @staticmethod
    def backward(ctx, g):
        a, p = ctx.saved
        return g * a.dtype.type(p) * a ** a.dtype.type(p - 1)


class ExpFn(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out


class LogFn(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g / a


class ReLUFn(Function):
    """max(a, 0); the gradient at exactly 0 is taken as 0."""

    @staticmethod
    def forward(ctx, a):
        out = np.maximum(a, 0)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * (out > 0)


class SqrtFn(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g / (2 * out)


class AbsFn(Function):
    """|a|; the gradient at exactly 0 is taken as 0 (numpy's sign)."""

    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved
        return g * np.sign(a)


class TanhFn(Function):
    @staticmethod
    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * (1 - out * out)


class SigmoidFn(Function):
    """1 / (1 + exp(-a)), computed without overflow for large |a|."""

    @staticmethod
    def forward(ctx, a):
        e = np.exp(-np.abs(a))                     # never overflows
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out * (1 - out)


class ClipFn(Function):
    """a limited to [low, high] (either may be None); the gradient passes where a is
    strictly inside, as numpy's clip would have it unchanged."""

    @staticmethod
    def forward(ctx, a, low=None, high=None):
        inside = np.ones(a.shape, dtype=bool)
        if low is not None:
            inside &= a > low
        if high is not None:
            inside &= a < high
        ctx.save_for_backward(inside)
        return np.clip(a, low, high)

    @staticmethod
    def backward(ctx, g):
        (inside,) = ctx.saved
        return g * inside


class WhereFn(Function):
    """cond ? a : b, elementwise with broadcasting; cond (an option) gets no gradient."""

    @staticmethod
    def forward(ctx, a, b, cond):
        cond = np.asarray(cond, dtype=bool)
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        (cond,) = ctx.saved
        return np.where(cond, g, 0), np.where(cond, 0, g)


class CastFn(Function):
    """a in another float dtype (float32 or float64); the gradient comes back in a's."""

    @staticmethod
    def forward(ctx, a, dtype=np.float32):
        ctx.save_for_backward(a.dtype)
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        (dtype,) = ctx.saved
        return g.astype(dtype)
