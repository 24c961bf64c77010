"""Ops that move elements without arithmetic: reshape, permute (transpose), indexing,
concatenation and broadcasting."""
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


class IndexFn(Function):
    """a[index], numpy's indexing: slices, integers, integer and boolean arrays, None,
    Ellipsis. The gradient is scattered back with accumulation, so an element picked
    twice (a repeated index) gets the sum of both gradients. An index of slices,
    integers, None and Ellipsis alone (basic indexing) picks no element twice: its
    gradient is assigned, which is the same sum without np.add.at's slow scatter."""

    @staticmethod
    def forward(ctx, a, index):
        ctx.save_for_backward(a.shape, a.dtype, index)
        return np.asarray(a[index])

    @staticmethod
    def backward(ctx, g):
        shape, dtype, index = ctx.saved
        out = np.zeros(shape, dtype=dtype)
        if _basic(index):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out


def _basic(index):
    """True for numpy's basic indexing: each element picked at most once."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(p is None or p is Ellipsis or isinstance(p, (slice, int, np.integer))
               and not isinstance(p, (bool, np.bool_)) for p in parts)


class CatFn(Function):
    """Tensors joined along an existing axis; each gets its slice of the gradient."""

    @staticmethod
    def forward(ctx, *arrays, axis=0):
        out = np.concatenate(arrays, axis=axis)
        ctx.save_for_backward(axis, [a.shape[axis] for a in arrays])
        return out

    @staticmethod
    def backward(ctx, g):
        axis, sizes = ctx.saved
        return tuple(np.split(g, np.cumsum(sizes)[:-1], axis=axis))


class ExpandFn(Function):
    """a broadcast to `shape` (numpy's broadcast_to; -1 keeps a size). The gradient is
    summed back over the broadcast axes by autograd's unbroadcast."""

    @staticmethod
    def forward(ctx, a, shape):
        shape = tuple(a.shape[i - len(shape) + a.ndim] if n == -1 else n
                      for i, n in enumerate(shape))
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return g


class DilateFn(Function):
    """A kernel (F, C, KH, KW) spread out with `dilation - 1` zeros between its taps, to
    (F, C, (KH - 1)·d + 1, (KW - 1)·d + 1): a dilated convolution is the plain convolution
    with this kernel. The gradient reads the taps' positions back."""

    @staticmethod
    def forward(ctx, w, dilation):
        f, c, kh, kw = w.shape
        out = np.zeros((f, c, (kh - 1) * dilation + 1, (kw - 1) * dilation + 1), w.dtype)
        out[:, :, ::dilation, ::dilation] = w
        ctx.save_for_backward(dilation)
        return out

    @staticmethod
    def backward(ctx, g):
        (d,) = ctx.saved
        return np.ascontiguousarray(g[:, :, ::d, ::d])
