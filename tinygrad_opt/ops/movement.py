"""Ops that move elements without arithmetic: reshape and permute (transpose)."""
import numpy as np

from ..autograd import Function


class ReshapeFn(Function):
    @staticmethod
    def forward(ctx, a, shape):
        try:
            out = a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into {shape}") from None
        ctx.save_for_backward(a.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        (shape,) = ctx.saved
        return g.reshape(shape)


class PermuteFn(Function):
    @staticmethod
    def forward(ctx, a, axes):
        if sorted(a_ % max(a.ndim, 1) for a_ in axes) != list(range(a.ndim)):
            raise ValueError(f"permute: axes {axes} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        ctx.save_for_backward(axes)
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        (axes,) = ctx.saved
        return np.transpose(g, np.argsort(axes))
