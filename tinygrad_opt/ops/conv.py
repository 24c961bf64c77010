"""2-D convolution (cross-correlation, as in every framework), layout NCHW.

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x[n, c, i*s + p, j*s + q]

optionally followed by relu (fused: the article's Conv2D has activation='relu'). Padding is
applied to x beforehand (zeros), so the kernels only know the stride s.

Each computation comes twice: a numpy reference (`*_reference`, a few lines to read) and a
fast path (`*_kernel`: Numba loops for the memory-bound reshuffles, BLAS for the
products); tests check that the two agree.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._jit import jit, prange, serial_or_parallel, use_reference
from ..autograd import Function


def _windows(x, kh, kw, stride):
    """(N, C, H, W) -> (N, C, OH, OW, KH, KW): every receptive field, as a view."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]


# --- numpy references ---------------------------------------------------------------------
def conv2d_forward_reference(x, w, b, stride, relu):
    win = _windows(x, w.shape[2], w.shape[3], stride)
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))    # (N, OH, OW, F)
    out = out.transpose(0, 3, 1, 2) + b[None, :, None, None]     # (N, F, OH, OW)
    return np.maximum(out, 0) if relu else np.ascontiguousarray(out)


def conv2d_grad_weight_reference(x, g, kh, kw, stride):
    win = _windows(x, kh, kw, stride)
    return np.tensordot(g, win, axes=([0, 2, 3], [0, 2, 3]))    # (F, C, KH, KW)


def conv2d_grad_input_reference(g, w, x_shape, stride):
    gx = np.zeros(x_shape, dtype=g.dtype)
    oh, ow = g.shape[2], g.shape[3]
    for p in range(w.shape[2]):
        for q in range(w.shape[3]):
            # every output pixel sends g * w[:, :, p, q] back to input pixel (i*s+p, j*s+q)
            gx[:, :, p:p + stride * oh:stride, q:q + stride * ow:stride] += np.einsum(
                "nfij,fc->ncij", g, w[:, :, p, q])
    return gx


# --- fast path: Numba for the memory-bound loops, BLAS for the products --------------------
# Stride 1, the common case, runs "full width": an input plane of width W is read as one
# flat row, and output pixel (i, j) lives at k = i*W + j of a row of length
# L = (OH-1)*W + OW. Tap (p, q) of the kernel is then one contiguous slice,
# x_flat[p*W + q : p*W + q + L], and the whole batch's convolution is one matrix product
# w (F, C*KH*KW) @ cols (C*KH*KW, N*L). Columns j >= OW of a row are junk, never copied
# out. Other strides run the references.

def _im2col_loops(x, kh, kw, cols):
    """cols[(c, p, q), n, k] = x_flat[n, c, p*W + q + k] (full width, stride 1)."""
    n_batch, n_in, h, wd = x.shape
    span = cols.shape[2]
    for n in prange(n_batch):
        for c in range(n_in):
            xf = x[n, c].reshape(-1)
            for p in range(kh):
                for q in range(kw):
                    row, off = cols[(c * kh + p) * kw + q, n], p * wd + q
                    for k in range(span):
                        row[k] = xf[off + k]


def _crop_bias_relu_loops(y, b, wd, relu, out):
    """out[n, f, i, j] = max(y[f, n, i*W + j] + b[f], 0 if relu): full width -> NCHW.
    (relu keeps NaN, as numpy's maximum does: `not v <= 0` is true for NaN.)"""
    n_batch, n_out, oh, ow = out.shape
    for nf in prange(n_batch * n_out):
        n, f = nf // n_out, nf % n_out
        for i in range(oh):
            for j in range(ow):
                v = y[f, n, i * wd + j] + b[f]
                out[n, f, i, j] = v if (not v <= 0 or not relu) else 0   # NaN stays


def _full_width_loops(g, wd, out):
    """out[f, n, i*W + j] = g[n, f, i, j], zeros in the junk columns: NCHW -> full width."""
    n_batch, n_out, oh, ow = g.shape
    for nf in prange(n_batch * n_out):
        n, f = nf // n_out, nf % n_out
        row = out[f, n]
        row[:] = 0
        for i in range(oh):
            for j in range(ow):
                row[i * wd + j] = g[n, f, i, j]


def _col2im_loops(gcols, kh, kw, gx):
    """gx[n, c, p*W + q + k] += gcols[(c, p, q), n, k]: the adjoint of im2col."""
    n_batch, n_in, h, wd = gx.shape
    span = gcols.shape[2]
    for n in prange(n_batch):                 # one sample's input gradient per iteration
        gx[n] = 0
        for c in range(n_in):
            gxf = gx[n, c].reshape(-1)
            for p in range(kh):
                for q in range(kw):
                    row, off = gcols[(c * kh + p) * kw + q, n], p * wd + q
                    for k in range(span):
                        gxf[off + k] += row[k]


_im2col = serial_or_parallel(_im2col_loops)
_crop_bias_relu = jit(_crop_bias_relu_loops, parallel=True)
_full_width = jit(_full_width_loops, parallel=True)
col2im = jit(_col2im_loops, parallel=True)


def window_count(size, k, stride=1):
    """How many windows of k pixels, every `stride` pixels, fit in `size` (no padding):
    a convolution's or a pooling's output size, the one formula for both."""
    return (size - k) // stride + 1


def im2col(x, kh, kw, oh, ow):
    """The full-width columns of x for a kh x kw kernel, stride 1: (C*KH*KW, N, L)."""
    n, c, h, wd = x.shape
    cols = np.empty((c * kh * kw, n, (oh - 1) * wd + ow), dtype=x.dtype)
    _im2col(x, kh, kw, cols)
    return cols


def conv2d_forward_kernel(x, w, b, stride, relu, keep=None):
    """keep: a dict that receives the columns ("cols"), for the backward pass to reuse."""
    if stride != 1:         # no workload of `make bench` has another stride: no kernel
        return conv2d_forward_reference(x, w, b, stride, relu)     # earns its lines there
    oh, ow = window_count(x.shape[2], w.shape[2]), window_count(x.shape[3], w.shape[3])
    out = np.empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    cols = im2col(x, w.shape[2], w.shape[3], oh, ow)                  # (CKK, N, L)
    y = w.reshape(w.shape[0], -1) @ cols.reshape(cols.shape[0], -1)  # (F, N*L)
    _crop_bias_relu(y.reshape(w.shape[0], x.shape[0], -1), b, x.shape[3], relu, out)
    if keep is not None:
        keep["cols"] = cols
    return out


def _full(g, wd):
    n, f, oh, ow = g.shape
    out = np.empty((f, n, (oh - 1) * wd + ow), dtype=g.dtype)
    _full_width(np.ascontiguousarray(g), wd, out)
    return out


def conv2d_grad_weight_kernel(x, g, kh, kw, stride, cols=None, gf=None):
    """cols: the forward pass's columns, gf: g at full width (each made here if None)."""
    if stride != 1 or not np.isfinite(x).all():   # (non-finite x: the full-width product
        return conv2d_grad_weight_reference(x, g, kh, kw, stride)   # also multiplies the
    gw = np.empty((g.shape[1], x.shape[1], kh, kw), dtype=x.dtype)  # junk columns' zeros
    if cols is None:
        cols = im2col(x, kh, kw, g.shape[2], g.shape[3])      # (CKK, N, L)
    if gf is None:
        gf = _full(g, x.shape[3])                            # (F, N, L)
    gw[...] = (gf.reshape(gf.shape[0], -1) @ cols.reshape(cols.shape[0], -1).T).reshape(gw.shape)
    return gw


def conv2d_grad_input_kernel(g, w, x_shape, stride, gf=None):
    if stride != 1 or not np.isfinite(w).all():   # by x, or w: 0 * inf = NaN where the
        return conv2d_grad_input_reference(g, w, x_shape, stride)   # reference has no term)
    gx = np.empty(x_shape, dtype=g.dtype)
    if gf is None:
        gf = _full(g, x_shape[3])                            # (F, N, L)
    gcols = w.reshape(w.shape[0], -1).T @ gf.reshape(gf.shape[0], -1)     # (CKK, N*L)
    col2im(gcols.reshape(-1, gf.shape[1], gf.shape[2]), w.shape[2], w.shape[3], gx)
    return gx


# --- the differentiable op ----------------------------------------------------------------
def pair(value):
    """(a, b) from an int or a pair: a size or a padding per axis (rows, columns)."""
    return (value, value) if np.isscalar(value) else tuple(value)


def check_conv_input(x_shape, w_shape, padding):
    """Raise ValueError unless x (N, C, H, W) fits a kernel w (F, C, KH, KW) after padding
    (an int, or (rows, columns))."""
    if len(x_shape) != 4:
        raise ValueError(f"Conv2D expected input of shape (N, {w_shape[1]}, H, W), "
                         f"got {x_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(f"Conv2D expected {w_shape[1]} input channels (input of shape "
                         f"(N, {w_shape[1]}, H, W)), got {x_shape[1]} in shape {x_shape}")
    ph, pw = pair(padding)
    h, w = x_shape[2] + 2 * ph, x_shape[3] + 2 * pw
    if w_shape[2] > h or w_shape[3] > w:
        raise ValueError(f"Conv2D kernel {w_shape[2]}x{w_shape[3]} is larger than the "
                         f"padded input {h}x{w} (input {x_shape}, padding {padding})")


class Conv2DFn(Function):
    """Differentiable conv2d (+ optional fused relu). Inputs: x, weight, bias."""

    @staticmethod
    def forward(ctx, x, w, b, stride=1, padding=0, relu=False):
        check_conv_input(x.shape, w.shape, padding)
        ph, pw = padding = pair(padding)
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        x = np.ascontiguousarray(x)
        keep = {}
        if use_reference():
            out = conv2d_forward_reference(x, w, b, stride, relu)
        else:
            out = conv2d_forward_kernel(x, w, b, stride, relu, keep)
        ctx.save_for_backward(x, w, out if relu else None, stride, padding, keep.get("cols"))
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, out, stride, padding, cols = ctx.saved
        if out is not None:
            g = g * (out > 0)                   # through the fused relu
        g = np.ascontiguousarray(g)
        gx = None
        if use_reference() or stride != 1:
            gw = conv2d_grad_weight_reference(x, g, w.shape[2], w.shape[3], stride)
            gb = g.sum(axis=(0, 2, 3))
            if ctx.needs_input_grad[0]:         # the first layer's input is data: skip
                gx = conv2d_grad_input_reference(g, w, x.shape, stride)
        else:                                   # g at full width once, for all three
            gf = _full(g, x.shape[3])
            gw = conv2d_grad_weight_kernel(x, g, w.shape[2], w.shape[3], stride, cols, gf)
            gb = gf.reshape(gf.shape[0], -1).sum(axis=1)   # (junk columns hold zeros)
            if ctx.needs_input_grad[0]:
                gx = conv2d_grad_input_kernel(g, w, x.shape, stride, gf)
        if gx is not None:
            ph, pw = padding
            gx = gx[:, :, ph:gx.shape[2] - ph, pw:gx.shape[3] - pw]
        return gx, gw, gb
