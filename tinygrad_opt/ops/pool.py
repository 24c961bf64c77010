"""2-D max pooling, layout NCHW, windows of size k x k every s pixels (floor mode):

    out[n, c, i, j] = max_{p, q < k} x[n, c, i*s + p, j*s + q]

The forward pass also returns, per output, the flat index (row * W + col) of the
winning input pixel in its (n, c) plane: backward sends each gradient there. On ties the
first pixel in row-major window order wins, in the reference and in the kernel alike;
NaN counts as the largest value (numpy's argmax: the first NaN of a window wins).
"""
import numpy as np

from ..jit import jit, prange, use_reference
from ..autograd import Function
from .conv import _windows, window_count


# --- numpy references ---------------------------------------------------------------------
def maxpool2d_forward_reference(x, k, s):
    n, c, h, wd = x.shape
    win = _windows(x, k, k, s)                              # (N, C, OH, OW, k, k)
    oh, ow = win.shape[2], win.shape[3]
    flat = win.reshape(n, c, oh, ow, k * k)
    best = flat.argmax(axis=-1)                             # first max in window order
    out = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0]
    rows = np.arange(oh)[:, None] * s + best // k
    cols = np.arange(ow)[None, :] * s + best % k
    return out, (rows * wd + cols).astype(np.int32)


def maxpool2d_backward_reference(g, arg, x_shape):
    n, c, h, wd = x_shape
    gx = np.zeros((n * c, h * wd), dtype=g.dtype)
    planes = np.repeat(np.arange(n * c), arg[0, 0].size)
    np.add.at(gx, (planes, arg.reshape(-1)), g.reshape(-1))  # overlapping windows add
    return gx.reshape(x_shape)


# --- Numba kernels ------------------------------------------------------------------------
def _nan_or_bigger(v, best):
    """Whether v replaces best as a window's maximum, as numpy's argmax decides: v is
    larger, or v is the window's first NaN."""
    return (v > best) | ((v != v) & (best == best))


def _has_nan(y):
    """Whether the flat array y holds a NaN: an OR over it, which vectorises. Kernels
    check each plane and take the NaN-aware comparison only where one is found: the
    NaN-aware comparison does not vectorise (`make bench`'s fused block row)."""
    found = False
    for t in range(y.size):
        found |= y[t] != y[t]
    return found


def _pool_plane(y, wd, k, s, o, a, floor):
    """One plane y (flat, rows of width wd), any k x k pool with stride s, NaN counting
    as the largest value: o[i, j] = max(max of the window at (i*s, j*s), floor) (floor
    0 is a relu, -inf none), a[i, j] = where the window's max was."""
    ph, pw = o.shape
    for i in range(ph):
        for j in range(pw):
            best_at = (i * s) * wd + j * s
            best = y[best_at]
            for u in range(k):
                for v in range(k):
                    at = (i * s + u) * wd + j * s + v
                    val = y[at]
                    bigger = nan_or_bigger(val, best)
                    best = val if bigger else best
                    best_at = at if bigger else best_at
            o[i, j] = best if not best <= floor else floor     # NaN stays NaN
            a[i, j] = best_at


nan_or_bigger, has_nan = jit(_nan_or_bigger, inline=True), jit(_has_nan, inline=True)
pool_plane = jit(_pool_plane, inline=True)


def _pool2x2(y, wd, o, a, floor):
    """The article's 2x2 pool with stride 2 of one plane without NaN, written out:
    o[i, j] = max(max of y's window at (2i, 2j), floor), a[i, j] = where that max was.
    Worth its lines: it vectorises, where the general loop does not (`make bench`'s
    maxpool2d row; docs/performance.md)."""
    ph, pw = o.shape
    for i in range(ph):
        top = 2 * i * wd                        # flat index of the window's top row
        r0, r1 = y[top:top + 2 * pw], y[top + wd:top + wd + 2 * pw]
        oi, ai = o[i], a[i]
        for j in range(pw):
            best, best_at = r0[2 * j], top + 2 * j
            val = r0[2 * j + 1]                 # the first max wins; selects, not
            bigger = val > best                 # branches: random data defeats branch
            best = val if bigger else best      # prediction
            best_at = top + 2 * j + 1 if bigger else best_at
            val = r1[2 * j]
            bigger = val > best
            best = val if bigger else best
            best_at = top + wd + 2 * j if bigger else best_at
            val = r1[2 * j + 1]
            bigger = val > best
            best = val if bigger else best
            best_at = top + wd + 2 * j + 1 if bigger else best_at
            oi[j] = best if not best <= floor else floor
            ai[j] = best_at


def _pool_plane_any(y, wd, k, s, o, a, floor):
    """Pool one flat plane: the written-out 2x2 scan where it applies and the plane has no
    NaN, the general NaN-aware scan otherwise. The one entry of every pooling kernel."""
    if k == 2 and s == 2 and not has_nan(y):
        pool2x2(y, wd, o, a, floor)
    else:
        pool_plane(y, wd, k, s, o, a, floor)


pool2x2 = jit(_pool2x2, inline=True)
pool_plane_any = jit(_pool_plane_any, inline=True)


def _maxpool2d_forward_loops(x, k, s, out, arg):
    n_batch, n_ch, h, wd = x.shape
    floor = x.dtype.type(-np.inf)                # no relu: max(m, -inf) = m
    for nc in prange(n_batch * n_ch):            # one (n, c) plane per iteration
        n, c = nc // n_ch, nc % n_ch
        pool_plane_any(x[n, c].reshape(-1), wd, k, s, out[n, c], arg[n, c], floor)


def _maxpool2d_backward_loops(g, arg, gx):
    n_batch, n_ch, oh, ow = g.shape
    wd = gx.shape[3]
    for nc in prange(n_batch * n_ch):
        n, c = nc // n_ch, nc % n_ch
        gx[n, c] = 0
        for i in range(oh):
            for j in range(ow):
                a = arg[n, c, i, j]
                gx[n, c, a // wd, a % wd] += g[n, c, i, j]


_forward_kernel = jit(_maxpool2d_forward_loops, parallel=True)
_backward_kernel = jit(_maxpool2d_backward_loops, parallel=True)


def maxpool2d_forward_kernel(x, k, s):
    n, c, h, wd = x.shape
    shape = (n, c, window_count(h, k, s), window_count(wd, k, s))
    out, arg = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int32)
    _forward_kernel(x, k, s, out, arg)
    return out, arg


def maxpool2d_backward_kernel(g, arg, x_shape):
    gx = np.empty(x_shape, dtype=g.dtype)
    _backward_kernel(np.ascontiguousarray(g), arg, gx)
    return gx


def check_pool_input(shape, pool_size, layer="MaxPool2D"):
    """Raise ValueError unless an input of `shape` (N, C, H, W) holds a pooling window."""
    if len(shape) != 4:
        raise ValueError(f"{layer} expected input of shape (N, C, H, W), got {shape}")
    if pool_size > shape[2] or pool_size > shape[3]:
        raise ValueError(f"{layer} window {pool_size}x{pool_size} is larger than the "
                         f"input {shape[2]}x{shape[3]} (shape {shape})")


class MaxPool2DFn(Function):
    @staticmethod
    def forward(ctx, x, pool_size=2, stride=None):
        s = stride or pool_size
        check_pool_input(x.shape, pool_size)
        fwd = maxpool2d_forward_reference if use_reference() else maxpool2d_forward_kernel
        out, arg = fwd(np.ascontiguousarray(x), pool_size, s)
        ctx.save_for_backward(arg, x.shape)
        return out

    @staticmethod
    def backward(ctx, g):
        arg, x_shape = ctx.saved
        bwd = maxpool2d_backward_reference if use_reference() else maxpool2d_backward_kernel
        return bwd(g, arg, x_shape)


class AvgPool2DFn(Function):
    """The mean of each k x k window every s pixels (floor mode), in numpy: the forward
    averages strided window views, the backward hands each window's gradient / k² to
    its k² pixels (overlapping windows add)."""

    @staticmethod
    def forward(ctx, x, pool_size=2, stride=None):
        k, s = pool_size, stride or pool_size
        check_pool_input(x.shape, k, "AvgPool2D")
        ctx.save_for_backward(x.shape, k, s)
        return np.ascontiguousarray(_windows(x, k, k, s).mean(axis=(-2, -1)))

    @staticmethod
    def backward(ctx, g):
        shape, k, s = ctx.saved
        gx = np.zeros(shape, dtype=g.dtype)
        oh, ow = g.shape[2], g.shape[3]
        share = g / (k * k)
        for p in range(k):
            for q in range(k):
                gx[:, :, p:p + s * oh:s, q:q + s * ow:s] += share
        return gx
