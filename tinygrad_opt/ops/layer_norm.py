"""Layer normalisation (Ba, Kiros & Hinton 2016) over the last axis, as PyTorch defines
it, for each row x of D values:

    mu = mean_j x_j            var = mean_j (x_j - mu)²          (biased, as PyTorch)
    xhat_j = (x_j - mu) / sqrt(var + eps)
    y_j = weight_j · xhat_j + bias_j

and backward, with gy the gradient of y:

    d bias_j = sum over rows of gy_j          d weight_j = sum over rows of gy_j · xhat_j
    gx_j = gy_j · weight_j
    dx_j = (gx_j - mean_k gx_k - xhat_j · mean_k (gx_k · xhat_k)) / sqrt(var + eps)

(the chain rule through mu and var, which depend on every x of the row). The kernels
compute each row in one pass each way, rows in parallel (each row's outputs are its
own); the backward kernel also sums the weight and bias gradients, one partial sum per
fixed block of rows. The kernels may reorder a sum's additions (so that they vectorise)
and numpy adds pairwise, so the two paths differ in the last bits, as two BLAS products
would; each is the same from run to run.
"""
import numpy as np

from ..autograd import Function
from ..jit import prange, serial_or_parallel, use_reference


def layer_norm_reference(x, weight, bias, eps):
    """x (R, D) -> (y, xhat, invstd (R, 1)), in numpy, one line per formula line."""
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * invstd
    return xhat * weight + bias, xhat, invstd


def layer_norm_backward_reference(gy, xhat, invstd, weight):
    """(dx, d weight, d bias) for rows (R, D)."""
    gx = gy * weight
    dx = (gx - gx.mean(axis=1, keepdims=True)
          - xhat * (gx * xhat).mean(axis=1, keepdims=True)) * invstd
    return dx, (gy * xhat).sum(axis=0), gy.sum(axis=0)


def _forward_loops(x, weight, bias, eps, y, xhat, invstd):
    rows, d = x.shape
    for r in prange(rows):
        total = 0.0
        for j in range(d):
            total += x[r, j]
        mu = total / d
        sq = 0.0
        for j in range(d):
            sq += (x[r, j] - mu) * (x[r, j] - mu)
        inv = 1 / np.sqrt(sq / d + eps)
        invstd[r, 0] = inv
        for j in range(d):
            xhat[r, j] = (x[r, j] - mu) * inv
            y[r, j] = xhat[r, j] * weight[j] + bias[j]


def _backward_loops(gy, xhat, invstd, weight, dx, dw_parts, db_parts):
    """dx row by row; d weight and d bias as one partial sum per block of rows
    (dw_parts, db_parts: (blocks, D), zeros), the blocks fixed by the shape alone, so
    the sums do not depend on the thread count."""
    rows, d = gy.shape
    blocks = dw_parts.shape[0]
    per = (rows + blocks - 1) // blocks
    for b in prange(blocks):
        for r in range(b * per, min(rows, (b + 1) * per)):
            s1 = 0.0
            s2 = 0.0
            for j in range(d):
                gx = gy[r, j] * weight[j]
                s1 += gx
                s2 += gx * xhat[r, j]
            m1, m2 = s1 / d, s2 / d
            inv = invstd[r, 0]
            for j in range(d):
                dx[r, j] = (gy[r, j] * weight[j] - m1 - xhat[r, j] * m2) * inv
                dw_parts[b, j] += gy[r, j] * xhat[r, j]
                db_parts[b, j] += gy[r, j]


_forward_kernel = serial_or_parallel(_forward_loops, parallel_from=1 << 14,
                                     reassociate=True)
_backward_kernel = serial_or_parallel(_backward_loops, parallel_from=1 << 14,
                                      reassociate=True)
BLOCKS = 16                                 # the backward's partial sums of d weight, d bias


def check_layer_norm(x_shape, weight_shape, bias_shape):
    d = x_shape[-1] if len(x_shape) else None
    if not len(x_shape) or weight_shape != (d,) or bias_shape != (d,):
        raise ValueError(f"layer_norm: weight and bias must be of shape (D,) for input "
                         f"(..., D); got input {x_shape}, weight {weight_shape}, bias "
                         f"{bias_shape}")


class LayerNormFn(Function):
    """Inputs: x (..., D), weight (D,), bias (D,); option eps. Output: x's shape."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps=1e-5):
        check_layer_norm(x.shape, weight.shape, bias.shape)
        rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
        weight, bias = weight.astype(x.dtype, copy=False), bias.astype(x.dtype, copy=False)
        if use_reference():
            y, xhat, invstd = layer_norm_reference(rows, weight, bias, eps)
        else:
            y, xhat = np.empty_like(rows), np.empty_like(rows)
            invstd = np.empty((len(rows), 1), dtype=x.dtype)
            _forward_kernel(rows, weight, bias, x.dtype.type(eps), y, xhat, invstd)
        ctx.save_for_backward(xhat, invstd, weight, x.shape)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, weight, shape = ctx.saved
        gy = np.ascontiguousarray(g.reshape(xhat.shape), dtype=xhat.dtype)
        if use_reference():
            dx, dw, db = layer_norm_backward_reference(gy, xhat, invstd, weight)
        else:
            dx = np.empty_like(gy)
            blocks = min(BLOCKS, len(gy))
            dw, db = (np.zeros((blocks, gy.shape[1]), dtype=gy.dtype) for _ in range(2))
            _backward_kernel(gy, xhat, invstd, weight, dx, dw, db)
            dw, db = dw.sum(axis=0), db.sum(axis=0)
        return dx.reshape(shape), dw, db
