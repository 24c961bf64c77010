"""The article's first block as one op: conv2d (stride 1) + bias + relu + max-pool + dropout.

    out = dropout(maxpool(relu(conv(x, w) + b)))

Unfused, these are four ops, each a full pass over the largest activation of the model
(N x 32 x 26 x 26, 5.5 MB in float32) forward and again backward. Fused, that activation
never reaches memory:

- forward: per sample and filter, bias + the convolution of one plane is computed into a
  small buffer that stays in the L1 cache, in the "full width" layout of `conv.py`
  (output pixel (i, j) at i*W + j, so each kernel tap is one long contiguous multiply-add
  that vectorises); the pool then reads its windows from that buffer, applies relu and
  the dropout mask, and records where each window's max was;
- backward: only the recorded maxima receive a gradient, so the weight gradient is a sum
  over the pooled outputs alone: gw[f, c, p, q] += d * x[n, c, (i, j) + (p, q)], with
  (i, j) the recorded position and d the gradient let through dropout and relu. That is
  a quarter of the terms of the dense convolution gradient for a 2x2 pool, with nothing
  materialised. The input gradient, when wanted, scatters d * w the same way.

It computes what the unfused layers compute: the same terms (the bias is added first,
so sums can differ in the last bit), the same first-max-wins rule, and the same dropout
hash of the same element index (tests check that the two agree, gradients included). The
readable path is the unfused layers: `conv_pool_dropout_reference` and
`conv_pool_dropout_backward_reference` chain their numpy references.
"""
from typing import NamedTuple

import numpy as np

from ..jit import jit, prange, serial_or_parallel, use_reference
from ..autograd import Function
from .conv import (check_conv_input, conv2d_forward_reference, conv2d_grad_input_reference,
                   conv2d_grad_weight_reference)
from .dropout import dropout_reference, element_hash, keep_threshold
from .pool import (check_pool_input, maxpool2d_backward_reference,
                   maxpool2d_forward_reference, pool_plane_any, window_count)


def conv_pool_dropout_reference(x, w, b, pool_size=2, pool_stride=None, rate=0.0, key=0):
    """The block's forward pass from the three layers' numpy references."""
    y = conv2d_forward_reference(x, w, b, 1, True)
    y = maxpool2d_forward_reference(y, pool_size, pool_stride or pool_size)[0]
    return dropout_reference(y, rate, key) if rate > 0 else y


def conv_pool_dropout_backward_reference(x, w, b, g, pool_size=2, pool_stride=None,
                                         rate=0.0, key=0):
    """The block's gradients (input, weight, bias) for the output gradient g, from the
    three layers' numpy references, backwards: dropout, max-pool, relu, conv."""
    y = conv2d_forward_reference(x, w, b, 1, True)                  # relu(conv + b)
    arg = maxpool2d_forward_reference(y, pool_size, pool_stride or pool_size)[1]
    if rate > 0:
        g = dropout_reference(g, rate, key)          # the same mask, applied to g
    g = maxpool2d_backward_reference(g, arg, y.shape) * (y > 0)
    return (conv2d_grad_input_reference(g, w, x.shape, 1),
            conv2d_grad_weight_reference(x, g, w.shape[2], w.shape[3], 1),
            g.sum(axis=(0, 2, 3)))


def _conv3x3(xf, w, bias, wd, y):
    """y[t] = bias + sum over the 9 taps of w[p, q] * xf[t + p*W + q]: the article's
    single-channel 3x3 convolution of one plane, all nine taps in one pass (one pass over
    y instead of nine; the same sums in the same order)."""
    span = y.size
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = (w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1],
                                          w[1, 2], w[2, 0], w[2, 1], w[2, 2])
    x0, x1, x2 = xf[0:span], xf[1:1 + span], xf[2:2 + span]
    x3, x4, x5 = xf[wd:wd + span], xf[wd + 1:wd + 1 + span], xf[wd + 2:wd + 2 + span]
    x6, x7, x8 = (xf[2 * wd:2 * wd + span], xf[2 * wd + 1:2 * wd + 1 + span],
                  xf[2 * wd + 2:2 * wd + 2 + span])
    for t in range(span):
        y[t] = ((((((((bias + w0 * x0[t]) + w1 * x1[t]) + w2 * x2[t]) + w3 * x3[t])
                  + w4 * x4[t]) + w5 * x5[t]) + w6 * x6[t]) + w7 * x7[t]) + w8 * x8[t]


conv3x3 = jit(_conv3x3, inline=True)


def _forward_loops(x, w, b, k, s, use_dropout, threshold, scale, key, out, arg):
    n_batch, n_in, h, wd = x.shape
    n_out, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    ph, pw = out.shape[2], out.shape[3]
    span = ((ph - 1) * s + k - 1) * wd + (pw - 1) * s + k   # the conv outputs pooled
    zero = out.dtype.type(0)
    xr = x.reshape(n_batch, n_in, h * wd)       # flat planes: a tap is one slice
    for n in prange(n_batch):                   # one sample per iteration
        y = np.empty(span, dtype=out.dtype)     # one conv plane, full width (in L1)
        for f in range(n_out):                  # pass 1: bias + the convolution
            # Any other shape, tap by tap (correct, and tested against the references;
            # `nn.ConvPoolDropout` runs such shapes as the three layers, which are faster
            # there since the convolution has direct loops of its own: `make bench`).
            if n_in == 1 and kh == 3 and kw == 3:
                conv3x3(xr[n, 0], w[f, 0], b[f], wd, y)       # the article's layer
            else:
                for t in range(span):
                    y[t] = b[f]
                for c in range(n_in):
                    for p in range(kh):
                        for q in range(kw):
                            wv = w[f, c, p, q]
                            xs = xr[n, c, p * wd + q:p * wd + q + span]
                            for t in range(span):
                                y[t] += wv * xs[t]
            pool_plane_any(y, wd, k, s, out[n, f], arg[n, f], zero)   # pass 2: max-
                                                # pool and relu; the conv output (r, c)
                                                # of each max is recorded as r*W + c
            if use_dropout:                     # pass 3: the hash of ops/dropout.py
                o = out[n, f].reshape(-1)
                first = (n * n_out + f) * ph * pw   # flat index of out[n, f, 0, 0]
                for t in range(ph * pw):        # (its own loop: it vectorises)
                    kept = element_hash(key, first + t) >= threshold
                    o[t] = o[t] * (scale if kept else zero)     # NaN * 0 stays NaN


def _tap_offsets(n_in, h, wd, kh, kw):
    """Flat offset of tap (c, p, q) from the top-left input pixel of a window."""
    offs = np.empty(n_in * kh * kw, dtype=np.int64)
    for c in range(n_in):
        for p in range(kh):
            for q in range(kw):
                offs[(c * kh + p) * kw + q] = (c * h + p) * wd + q
    return offs


tap_offsets = jit(_tap_offsets, inline=True)


def _grad_params_loops(x, g, out, arg, scale, kh, kw, gw, gb):
    """gw[f, c, p, q] = sum over pooled outputs of d * x[n, c, at + p*W + q]; gb[f] = sum d.
    One filter per iteration: each sum is accumulated by one thread, in a fixed order."""
    n_batch, n_in, h, wd = x.shape
    n_out, n_pool = g.shape[1], g.shape[2] * g.shape[3]
    offs = tap_offsets(n_in, h, wd, kh, kw)
    nine = n_in == 1 and kh == 3 and kw == 3    # the article's layer: see below
    xr = x.reshape(n_batch, -1)
    gr, outr = g.reshape(n_batch, n_out, n_pool), out.reshape(n_batch, n_out, n_pool)
    argr, gwr = arg.reshape(n_batch, n_out, n_pool), gw.reshape(n_out, -1)
    for f in prange(n_out):
        acc = np.zeros(offs.size)               # float64 accumulators
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = 0.0
        total = 0.0
        ds, ats = np.empty(n_pool, dtype=g.dtype), np.empty(n_pool, dtype=np.int32)
        for n in range(n_batch):
            xn, gp, op, ap = xr[n], gr[n, f], outr[n, f], argr[n, f]
            m = 0                               # first the outputs that pass dropout and
            for t in range(n_pool):             # relu, listed without a branch (random
                ds[m], ats[m] = gp[t] * scale, ap[t]        # data defeats branch
                m += op[t] > 0                  # prediction)
            for e in range(m):                  # then their sums
                total += ds[e]
            if nine:                            # one channel, 3x3: the nine sums written
                for e in range(m):              # out stay in registers (the same sums;
                    d, at = ds[e], ats[e]       # make bench's fused block row)
                    a0 += d * xn[at]
                    a1 += d * xn[at + 1]
                    a2 += d * xn[at + 2]
                    a3 += d * xn[at + wd]
                    a4 += d * xn[at + wd + 1]
                    a5 += d * xn[at + wd + 2]
                    a6 += d * xn[at + 2 * wd]
                    a7 += d * xn[at + 2 * wd + 1]
                    a8 += d * xn[at + 2 * wd + 2]
            else:
                for e in range(m):
                    for u in range(offs.size):
                        acc[u] += ds[e] * xn[ats[e] + offs[u]]
        if nine:
            acc[0], acc[1], acc[2], acc[3], acc[4] = a0, a1, a2, a3, a4
            acc[5], acc[6], acc[7], acc[8] = a5, a6, a7, a8
        for u in range(offs.size):
            gwr[f, u] = acc[u]
        gb[f] = total


def _grad_input_loops(g, out, arg, w, scale, gx):
    """gx[n, c, at + p*W + q] += d * w[f, c, p, q], one sample per iteration."""
    n_batch, n_in, h, wd = gx.shape
    n_out, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    n_pool = g.shape[2] * g.shape[3]
    offs = tap_offsets(n_in, h, wd, kh, kw)
    gr, outr = g.reshape(n_batch, n_out, n_pool), out.reshape(n_batch, n_out, n_pool)
    argr, wr, gxr = arg.reshape(n_batch, n_out, n_pool), w.reshape(n_out, -1), gx.reshape(
        n_batch, -1)
    for n in prange(n_batch):
        gxn = gxr[n]
        gxn[:] = 0
        for f in range(n_out):
            gp, op, ap = gr[n, f], outr[n, f], argr[n, f]
            for t in range(n_pool):
                if not op[t] > 0:
                    continue
                d = gp[t] * scale
                for u in range(offs.size):
                    gxn[ap[t] + offs[u]] += d * wr[f, u]


_forward_kernel = serial_or_parallel(_forward_loops)   # parallel from 42 MNIST images up
_grad_params_kernel = serial_or_parallel(_grad_params_loops)
_grad_input_kernel = serial_or_parallel(_grad_input_loops)


class _Kernel(NamedTuple):
    """What the forward kernel leaves for the backward one."""
    out: np.ndarray         # the block's output
    arg: np.ndarray         # where each pooled maximum was, in its plane
    scale: object           # dropout's 1 / (1 - rate), in the output's dtype (1 without)
    finite: bool            # x, w and b held no NaN or inf


class ConvPoolDropoutFn(Function):
    """Inputs: x (N, C, H, W), weight (F, C, KH, KW), bias (F,); output (N, F, PH, PW).

    Options: pool_size, pool_stride, rate (0 for no dropout), key (the dropout key).
    """

    @staticmethod
    def forward(ctx, x, w, b, pool_size=2, pool_stride=None, rate=0.0, key=0):
        if use_reference():             # the three layers' references, chained
            ctx.save_for_backward(None, x, w, b, (pool_size, pool_stride, rate, key))
            return conv_pool_dropout_reference(x, w, b, pool_size, pool_stride, rate, key)
        check_conv_input(x.shape, w.shape, 0)
        s = pool_stride or pool_size
        n, c, h, wd = x.shape
        oh, ow = window_count(h, w.shape[2]), window_count(wd, w.shape[3])
        check_pool_input((n, w.shape[0], oh, ow), pool_size)
        dtype = np.result_type(x, w)
        x = np.ascontiguousarray(x, dtype=dtype)
        w = np.ascontiguousarray(w, dtype=dtype)
        shape = (n, w.shape[0], window_count(oh, pool_size, s),
                 window_count(ow, pool_size, s))
        out, arg = np.empty(shape, dtype=dtype), np.empty(shape, dtype=np.int32)
        scale = dtype.type(1.0 / (1.0 - rate))
        b = b.astype(dtype, copy=False)
        _forward_kernel(x, w, b, pool_size, s, rate > 0,
                        np.uint32(keep_threshold(rate)), scale, np.uint32(key), out, arg)
        finite = bool(np.isfinite(x).all() and np.isfinite(w).all() and np.isfinite(b).all())
        ctx.save_for_backward(_Kernel(out, arg, scale if rate > 0 else dtype.type(1.0), finite),
                              x, w, b, (pool_size, s, rate, key))
        return out

    @staticmethod
    def backward(ctx, g):
        fast, x, w, b, options = ctx.saved
        # The references when the forward pass ran them, or with inf or NaN in x, w or g:
        # the kernels sum over the pooled maxima only, where the unfused layers also
        # multiply the other positions' zero gradient by x (0 * inf = NaN). The checks are
        # one pass over g and x each (docs/performance.md: their cost).
        if fast is None or not (fast.finite and np.isfinite(g).all()):
            gx, gw, gb = conv_pool_dropout_backward_reference(x, w, b, g, *options)
            return (gx if ctx.needs_input_grad[0] else None), gw, gb
        out, arg, scale = fast.out, fast.arg, fast.scale
        g = np.ascontiguousarray(g, dtype=out.dtype)
        gw, gb = np.empty_like(w), np.empty(w.shape[0], dtype=out.dtype)
        _grad_params_kernel(x, g, out, arg, scale, w.shape[2], w.shape[3], gw, gb)
        gx = None
        if ctx.needs_input_grad[0]:
            gx = np.empty_like(x)
            _grad_input_kernel(g, out, arg, w, scale, gx)
        return gx, gw, gb
