"""Reductions: sum, max and min over an axis (or all axes), and log-softmax."""
import numpy as np

from ..autograd import Function


def _expand(g, shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes, ready to broadcast to `shape`."""
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


class SumFn(Function):
    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        ctx.save_for_backward(a.shape, axis, keepdims)
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        shape, axis, keepdims = ctx.saved
        return np.broadcast_to(_expand(g, shape, axis, keepdims), shape)


class MaxFn(Function):
    """Max over an axis. Where several elements tie for the max, the gradient is split
    equally between them (so the result does not depend on which one numpy reports)."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        out = np.asarray(a.max(axis=axis, keepdims=keepdims))
        ctx.save_for_backward(a, out, axis, keepdims)
        return out

    @staticmethod
    def backward(ctx, g):
        a, out, axis, keepdims = ctx.saved
        mask = a == _expand(out, a.shape, axis, keepdims)
        count = mask.sum(axis=axis, keepdims=True)
        return mask * (_expand(g, a.shape, axis, keepdims) / count)


class MinFn(Function):
    """Min over an axis; ties split the gradient equally, as MaxFn's do."""

    @staticmethod
    def forward(ctx, a, axis=None, keepdims=False):
        out = np.asarray(a.min(axis=axis, keepdims=keepdims))
        ctx.save_for_backward(a, out, axis, keepdims)
        return out

    backward = staticmethod(MaxFn.backward)


class LogSoftmaxFn(Function):
    """log(softmax(a)) along `axis`, as a - max - log(sum(exp(a - max))): no overflow.

        d/da = g - softmax(a) * sum(g)   (along the axis)
    """

    @staticmethod
    def forward(ctx, a, axis=-1):
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out, axis)
        return out

    @staticmethod
    def backward(ctx, g):
        out, axis = ctx.saved
        return g - np.exp(out) * g.sum(axis=axis, keepdims=True)
