"""2-D convolution (cross-correlation, as in every framework), layout NCHW.

    out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * x[n, c, i*s + p, j*s + q]

optionally followed by relu (fused: the article's Conv2D has activation='relu'). Padding is
applied to x beforehand (zeros), so the kernels only know the stride s.

Each computation comes twice: a numpy reference (`*_reference`, a few lines to read) and a
fast path (`*_kernel`: direct Numba loops over each sample's planes, described below);
tests check that the two agree.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..jit import jit, prange, serial_or_parallel, use_reference
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


# --- fast path: direct loops (Numba), stride 1 ------------------------------------------
# Stride 1, the common case, runs "full width": an input plane of width W is read as one
# flat row, and output pixel (i, j) lives at t = i*W + j of a row of length
# span = (OH-1)*W + OW. Tap (c, p, q) of the kernel is then one contiguous slice,
# x_flat[c, p*W + q : p*W + q + span], and the convolution of a plane is a few long
# multiply-adds over one buffer that stays in the L1 cache. Positions t with j >= OW
# ("junk": they wrap around the row's end) are computed and never copied out. Other
# strides run the references.
#
# These loops replaced im2col + BLAS (columns of C*KH*KW rows written out for the whole
# batch, then one matrix product). For LeNet-5's two convolutions at batch 64, medians of
# 40 calls, ms, im2col + BLAS against these loops, alternately twice (2026-11-29): 1 -> 6
# channels on 32x32, 5x5: forward 1.16-1.59 against 0.20-0.33, weight gradient
# 1.92-2.06 against 0.26-0.38; 6 -> 16 channels on 14x14: forward 1.03-1.04 against
# 0.44, weight gradient 1.44 against 0.51, input gradient 0.83-0.84 against 0.57-0.58.
# The columns are 25-150 times the input, and writing them out cost more than the
# arithmetic.

def _row_taps(ya, yb, xf, wa, wb, off, span):
    """ya[t] += sum over q of wa[q] * xf[off + q + t] for t < span, and yb likewise with
    wb: one kernel row of two filters at once, up to five taps per pass (each pass loads
    the x values once for both filters, and loads and stores each y once instead of once
    a tap; the terms are added in the order of q, as tap by tap)."""
    kw, q = wa.size, 0
    while q + 5 <= kw:
        a0, a1, a2, a3, a4 = wa[q], wa[q + 1], wa[q + 2], wa[q + 3], wa[q + 4]
        b0, b1, b2, b3, b4 = wb[q], wb[q + 1], wb[q + 2], wb[q + 3], wb[q + 4]
        x0, x1, x2 = xf[off + q:], xf[off + q + 1:], xf[off + q + 2:]
        x3, x4 = xf[off + q + 3:], xf[off + q + 4:]
        for t in range(span):
            v0, v1, v2, v3, v4 = x0[t], x1[t], x2[t], x3[t], x4[t]
            ya[t] = ((((ya[t] + a0 * v0) + a1 * v1) + a2 * v2) + a3 * v3) + a4 * v4
            yb[t] = ((((yb[t] + b0 * v0) + b1 * v1) + b2 * v2) + b3 * v3) + b4 * v4
        q += 5
    while q + 3 <= kw:
        a0, a1, a2, b0, b1, b2 = wa[q], wa[q + 1], wa[q + 2], wb[q], wb[q + 1], wb[q + 2]
        x0, x1, x2 = xf[off + q:], xf[off + q + 1:], xf[off + q + 2:]
        for t in range(span):
            v0, v1, v2 = x0[t], x1[t], x2[t]
            ya[t] = ((ya[t] + a0 * v0) + a1 * v1) + a2 * v2
            yb[t] = ((yb[t] + b0 * v0) + b1 * v1) + b2 * v2
        q += 3
    while q < kw:
        a0, b0, x0 = wa[q], wb[q], xf[off + q:]
        for t in range(span):
            ya[t] += a0 * x0[t]
            yb[t] += b0 * x0[t]
        q += 1


def _row_dots(ga, gb, xf, off, span, kw, sa, sb):
    """sa[q] = sum over t < span of ga[t] * xf[off + q + t], and sb likewise with gb, for
    q < kw: the weight gradient's dot products for one kernel row of two filters, up to
    five taps per pass over the rows (each x value loaded once for both filters)."""
    zero, q = ga.dtype.type(0), 0
    while q + 5 <= kw:
        x0, x1, x2 = xf[off + q:], xf[off + q + 1:], xf[off + q + 2:]
        x3, x4 = xf[off + q + 3:], xf[off + q + 4:]
        a0 = a1 = a2 = a3 = a4 = b0 = b1 = b2 = b3 = b4 = zero
        for t in range(span):
            u, v = ga[t], gb[t]
            v0, v1, v2, v3, v4 = x0[t], x1[t], x2[t], x3[t], x4[t]
            a0 += u * v0
            a1 += u * v1
            a2 += u * v2
            a3 += u * v3
            a4 += u * v4
            b0 += v * v0
            b1 += v * v1
            b2 += v * v2
            b3 += v * v3
            b4 += v * v4
        sa[q], sa[q + 1], sa[q + 2], sa[q + 3], sa[q + 4] = a0, a1, a2, a3, a4
        sb[q], sb[q + 1], sb[q + 2], sb[q + 3], sb[q + 4] = b0, b1, b2, b3, b4
        q += 5
    while q < kw:
        x0 = xf[off + q:]
        a0 = b0 = zero
        for t in range(span):
            a0 += ga[t] * x0[t]
            b0 += gb[t] * x0[t]
        sa[q], sb[q] = a0, b0
        q += 1


row_taps, row_dots = jit(_row_taps, inline=True), jit(_row_dots, inline=True)


def _forward_loops(x, w, b, relu, out):
    """out[n, f] = relu(b[f] + sum over c, p of the row taps), one sample per iteration,
    two filters at a time (an odd last filter is paired with itself, one copy dropped)."""
    n_batch, n_in, h, wd = x.shape
    n_out, kh = w.shape[0], w.shape[2]
    oh, ow = out.shape[2], out.shape[3]
    span = (oh - 1) * wd + ow
    xr = x.reshape(n_batch, n_in, h * wd)
    for n in prange(n_batch):
        y = np.empty((2, span), dtype=out.dtype)     # two output planes at full width
        for fa in range(0, n_out, 2):
            fb = min(fa + 1, n_out - 1)
            y[0, :] = b[fa]
            y[1, :] = b[fb]
            for c in range(n_in):
                for p in range(kh):
                    row_taps(y[0], y[1], xr[n, c], w[fa, c, p], w[fb, c, p], p * wd, span)
            for e in range(fb - fa + 1):            # crop (and relu: NaN stays NaN)
                for i in range(oh):
                    for j in range(ow):
                        v = y[e, i * wd + j]
                        out[n, fa + e, i, j] = v if (not v <= 0 or not relu) else 0


def _grad_weight_loops(x, g, kh, kw, part, bias_part):
    """part[n, f, (c, p, q)] = sum over i, j of g[n, f, i, j] * x[n, c, i + p, j + q] and
    bias_part[n, f] = sum of g[n, f]: one sample per iteration, summed over samples by the
    caller in a fixed order (so the result does not depend on the threads)."""
    n_batch, n_in, h, wd = x.shape
    n_out, oh, ow = g.shape[1], g.shape[2], g.shape[3]
    span = (oh - 1) * wd + ow
    xr = x.reshape(n_batch, n_in, h * wd)
    zero = g.dtype.type(0)
    for n in prange(n_batch):
        gf = np.zeros((n_out, span), dtype=g.dtype)  # g[n] at full width, junk columns 0
        for f in range(n_out):
            total = zero
            for i in range(oh):
                for j in range(ow):
                    gf[f, i * wd + j] = g[n, f, i, j]
                    total += g[n, f, i, j]
            bias_part[n, f] = total
        for fa in range(0, n_out, 2):
            fb = min(fa + 1, n_out - 1)
            for c in range(n_in):
                for p in range(kh):
                    at = (c * kh + p) * kw
                    row_dots(gf[fa], gf[fb], xr[n, c], p * wd, span, kw, part[n, fa, at:],
                             part[n, fb, at:])


def _grad_input_loops(g, w, gx):
    """gx[n, c, p*W + u] += sum over f, q of w[f, c, p, q] * g_full[n, f, u - q]: the
    forward pass's row taps run backwards (the kernel row reversed, over g at full width
    with KW-1 zeros on each side), one sample per iteration, two channels at a time."""
    n_batch, n_in, h, wd = gx.shape
    n_out, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    oh, ow = g.shape[2], g.shape[3]
    span, pad = (oh - 1) * wd + ow, kw - 1
    for n in prange(n_batch):
        gp = np.zeros((n_out, span + 2 * pad), dtype=g.dtype)
        for f in range(n_out):
            for i in range(oh):
                for j in range(ow):
                    gp[f, pad + i * wd + j] = g[n, f, i, j]
        y = np.empty((2, h * wd), dtype=g.dtype)     # two input planes' gradients
        for ca in range(0, n_in, 2):
            cb = min(ca + 1, n_in - 1)
            y[:] = 0
            for f in range(n_out):
                for p in range(kh):
                    row_taps(y[0, p * wd:], y[1, p * wd:], gp[f], w[f, ca, p, ::-1],
                             w[f, cb, p, ::-1], 0, span + pad)
            for e in range(cb - ca + 1):
                gx[n, ca + e] = y[e].reshape(h, wd)


_forward = serial_or_parallel(_forward_loops)
# reassociate: the weight gradient's sums are dot products, which LLVM vectorises only when
# it may reorder the additions (`make bench`'s LeNet block rows; docs/performance.md)
_grad_weight = serial_or_parallel(_grad_weight_loops, reassociate=True)
_grad_input = serial_or_parallel(_grad_input_loops)


def window_count(size, k, stride=1):
    """How many windows of k pixels, every `stride` pixels, fit in `size` (no padding):
    a convolution's or a pooling's output size, the one formula for both."""
    return (size - k) // stride + 1


def conv2d_forward_kernel(x, w, b, stride, relu):
    if stride != 1:         # no workload of `make bench` has another stride: no kernel
        return conv2d_forward_reference(x, w, b, stride, relu)     # earns its lines there
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    oh, ow = window_count(x.shape[2], w.shape[2]), window_count(x.shape[3], w.shape[3])
    out = np.empty((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    _forward(x, w, b.astype(x.dtype, copy=False), relu, out)
    return out


def conv2d_grad_weight_bias_kernel(x, g, kh, kw, stride=1):
    """(gw, gb). The references where the loops cannot: another stride, or non-finite x
    (the full-width sums also multiply the junk positions' zeros by x: 0 * inf = NaN)."""
    if stride != 1 or not np.isfinite(x).all():
        return conv2d_grad_weight_reference(x, g, kh, kw, stride), g.sum(axis=(0, 2, 3))
    x, g = np.ascontiguousarray(x), np.ascontiguousarray(g)
    part = np.empty((x.shape[0], g.shape[1], x.shape[1] * kh * kw), dtype=x.dtype)
    bias_part = np.empty((x.shape[0], g.shape[1]), dtype=x.dtype)
    _grad_weight(x, g, kh, kw, part, bias_part)
    return (part.sum(axis=0).reshape(g.shape[1], x.shape[1], kh, kw),
            bias_part.sum(axis=0))


def conv2d_grad_weight_kernel(x, g, kh, kw, stride):
    return conv2d_grad_weight_bias_kernel(x, g, kh, kw, stride)[0]


def conv2d_grad_input_kernel(g, w, x_shape, stride):
    if stride != 1 or not np.isfinite(w).all():   # (non-finite w: 0 * inf = NaN where the
        return conv2d_grad_input_reference(g, w, x_shape, stride)   # reference has no term)
    gx = np.empty(x_shape, dtype=g.dtype)
    _grad_input(np.ascontiguousarray(g), np.ascontiguousarray(w), gx)
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
        if ph or pw:    # zeros, then x into the middle: one write, where np.pad makes more
            n, c, h, wd = x.shape
            xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=x.dtype)
            xp[:, :, ph:ph + h, pw:pw + wd] = x
            x = xp
        x = np.ascontiguousarray(x)
        if use_reference():
            out = conv2d_forward_reference(x, w, b, stride, relu)
        else:
            out = conv2d_forward_kernel(x, w, b, stride, relu)
        ctx.save_for_backward(x, w, out if relu else None, stride, padding)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, out, stride, padding = ctx.saved
        if out is not None:
            g = g * (out > 0)                   # through the fused relu
        g = np.ascontiguousarray(g)
        gx = None
        if use_reference():
            gw = conv2d_grad_weight_reference(x, g, w.shape[2], w.shape[3], stride)
            gb = g.sum(axis=(0, 2, 3))
        else:
            gw, gb = conv2d_grad_weight_bias_kernel(x, g, w.shape[2], w.shape[3], stride)
        if ctx.needs_input_grad[0]:             # the first layer's input is data: skip
            grad_input = (conv2d_grad_input_reference if use_reference()
                          else conv2d_grad_input_kernel)
            gx = grad_input(g, w, x.shape, stride)
        if gx is not None:
            ph, pw = padding
            gx = gx[:, :, ph:gx.shape[2] - ph, pw:gx.shape[3] - pw]
        return gx, gw, gb
