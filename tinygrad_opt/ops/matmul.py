"""Matrix product, with numpy's rules: 1-D operands are promoted (and the added axis
removed again), leading axes broadcast as batch axes; and `LinearFn`, the dense layer's
x @ w + b."""
import numpy as np

from ..jit import jit, use_reference
from ..autograd import Function, Outer


class MatMulFn(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
        k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply: last "
                             f"axis of the first ({k_a}) != "
                             f"{'first' if b.ndim == 1 else 'second-to-last'} axis of the "
                             f"second ({k_b})")
        ctx.save_for_backward(a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        a2 = a[None, :] if a.ndim == 1 else a     # (n,) -> (1, n)
        b2 = b[:, None] if b.ndim == 1 else b     # (n,) -> (n, 1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2 if b.ndim > 1 else -1)
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        ga = g @ np.swapaxes(b2, -1, -2)
        if a2.ndim == 2 and a2.shape[0] == 1 and b.ndim == 2 and not use_reference():
            gb = Outer(a2[0], g[0])         # one row: an outer product, kept factored
        elif a2.ndim == 2 and a2.shape[0] == 1:
            gb = a2.T * g                   # an outer product: BLAS is slow at K = 1
        else:
            gb = np.swapaxes(a2, -1, -2) @ g
        if a.ndim == 1:
            ga = ga[..., 0, :]
        if b.ndim == 1:
            gb = gb[..., 0]
        return ga, gb


def rows_product(a, b, rows=256):
    """aᵀ @ b for a (K, M), b (K, N): BLAS products over blocks of at most `rows` rows,
    added in order. OpenBLAS gives other last bits with 1 thread than with 2 at some
    shapes; the dense layer's weight gradient over full-batch GD's chunks of 1,000
    images, (1000 x 5408)ᵀ @ (1000 x 256), is one, and over blocks of 256 rows it is
    not, so `make mnist`'s numbers do not depend on its workers' thread count
    (tests/test_kernels.py runs both counts). Other shapes still may: docs/protocol.md.
    K <= rows: the one product."""
    if len(a) <= rows:
        return a.T @ b
    out = a[:rows].T @ b[:rows]
    for start in range(rows, len(a), rows):
        out += a[start:start + rows].T @ b[start:start + rows]
    return out


def linear_reference(x, w, b):
    return x @ w + b


def _linear_one_row_loops(x, w, b, out):
    """out = b + sum over i of x[i] * w[i, :], row by row (for one sample, it reads w once
    in its stored order, where BLAS's matrix-vector product was slower: `make bench`'s
    one-sample step row). Every row is read, also where x[i] is 0: skipping those rows
    was faster still, but a row of w holding inf or NaN would then count as zero where
    numpy's product gives NaN, hiding it."""
    out[:] = b
    for i in range(x.size):
        for j in range(out.size):
            out[j] += x[i] * w[i, j]


_linear_one_row = jit(_linear_one_row_loops)


class LinearFn(Function):
    """The dense layer's op, y = x @ w + b for x (N, K), w (K, M), b (M,): one op where
    MatMulFn and AddFn would be two, each with its own bookkeeping (per step, at batch 1).

        d x = g @ w^T        d w = x^T @ g        d b = sum_n g
    """

    @staticmethod
    def forward(ctx, x, w, b):
        ctx.save_for_backward(x, w)
        if x.shape[0] != 1 or use_reference() or not x.dtype == w.dtype == b.dtype:
            return linear_reference(x, w, b)        # BLAS; or the plain numpy reference
        out = np.empty((1, w.shape[1]), dtype=w.dtype)
        _linear_one_row(x[0], w, b, out[0])
        return out

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved
        gx = g @ w.T if ctx.needs_input_grad[0] else None
        if x.shape[0] == 1 and not use_reference():
            gw = Outer(x[0], g[0])          # one sample: kept factored (autograd.Outer)
        else:
            gw = rows_product(x, g)
        return gx, gw, g.sum(axis=0)


class TorchLinearFn(Function):
    """PyTorch's linear, y = x @ weight.T + bias, weight stored (out, in), for x of any
    leading axes (..., in): they are flattened into one, so that each way is one 2-D
    BLAS product (a (batch, time, in) input as one (batch·time, in) matrix) instead of a
    product per leading index and a sum over them for the weight's gradient.

        d x = g @ weight        d weight = gᵀ @ x        d bias = sum of g over rows

    bias None: no bias (its gradient None)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.ndim < 1 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear expected input (..., {weight.shape[-1]}) for a weight "
                             f"of shape {weight.shape}, got {x.shape}")
        rows = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(rows, weight, x.shape)
        y = rows @ weight.T
        if bias is not None:
            y += bias
        return y.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        rows, weight, shape = ctx.saved
        g = g.reshape(-1, weight.shape[0])
        gx = (g @ weight).reshape(shape) if ctx.needs_input_grad[0] else None
        if len(ctx.needs_input_grad) == 2:          # no bias
            return gx, g.T @ rows
        return gx, g.T @ rows, g.sum(axis=0)
