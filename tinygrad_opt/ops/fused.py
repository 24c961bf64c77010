"""The article's first block as one op: conv2d (stride 1) + bias + relu + max-pool + dropout.

    out = dropout(maxpool(relu(conv(x, w) + b)))

Unfused, these are four ops, each a full pass over the largest activation of the model
(N x 32 x 26 x 26) forward and again backward. Fused:

- forward: one BLAS product y = w @ cols (the full-width layout of `conv.py`), then one
  kernel that, per output of the pool, finds the window's max of y + b, applies relu and
  the dropout mask, and records where the max was;
- backward: one kernel that sends each gradient through the dropout mask, relu and the
  recorded argmax straight into the full-width layout, then BLAS products for the weight
  (and, if needed, input) gradients.

It computes exactly what the unfused layers compute: the same sums, the same
first-max-wins rule, and the same dropout hash of the same element index (tests check
that the two agree, gradients included). The readable path is the unfused layers.
"""
import numpy as np

from .._jit import prange, serial_or_parallel
from ..autograd import Function
from .conv import check_conv_input, col2im, im2col
from .dropout import element_hash, keep_threshold
from .pool import check_pool_input, pool_output_size


def _forward_loops(y, b, wd, k, s, use_dropout, threshold, scale, key, out, arg):
    n_out, n_batch = y.shape[0], y.shape[1]
    ph, pw = out.shape[2], out.shape[3]
    zero = y.dtype.type(0)
    for nf in prange(n_batch * n_out):          # one (n, f) plane per iteration
        n, f = nf // n_out, nf % n_out
        row, bias = y[f, n], b[f]
        o, a = out[n, f].reshape(-1), arg[n, f].reshape(-1)
        for i in range(ph):                     # pass 1: bias, max-pool, relu
            for j in range(pw):
                if k == 2 and s == 2:           # the article's pool, unrolled (2x faster)
                    at = 2 * i * wd + 2 * j
                    best, best_at = row[at] + bias, at
                    for at in (at + 1, at + wd, at + wd + 1):
                        v = row[at] + bias
                        bigger = v > best
                        best = v if bigger else best
                        best_at = at if bigger else best_at
                    o[i * pw + j] = best if best > zero else zero
                    a[i * pw + j] = best_at
                    continue
                best_at = (i * s) * wd + j * s
                best = row[best_at] + bias
                for p in range(k):
                    for q in range(k):
                        at = (i * s + p) * wd + j * s + q
                        v = row[at] + bias
                        bigger = v > best               # the first max wins; selects,
                        best = v if bigger else best    # not branches: random data
                        best_at = at if bigger else best_at   # defeats branch prediction
                o[i * pw + j] = best if best > zero else zero      # relu
                a[i * pw + j] = best_at
        if use_dropout:                         # pass 2: the hash of ops/dropout.py
            first = (n * n_out + f) * ph * pw   # flat index of out[n, f, 0, 0]
            for t in range(ph * pw):            # (its own loop: it vectorises)
                kept = element_hash(key, first + t) >= threshold
                o[t] = o[t] * scale if kept else zero


def _backward_loops(g, out, arg, scale, gfull, plane_sums):
    n_batch, n_out, ph, pw = g.shape
    for nf in prange(n_batch * n_out):
        n, f = nf // n_out, nf % n_out
        row = gfull[f, n]
        row[:] = 0
        zero = gfull.dtype.type(0)
        total = zero
        for i in range(ph):
            for j in range(pw):
                passed = out[n, f, i, j] > 0    # kept by dropout and past relu (a select,
                d = g[n, f, i, j] * scale if passed else zero       # not a branch)
                row[arg[n, f, i, j]] += d
                total += d
        plane_sums[n, f] = total                # the bias gradient, plane by plane


_forward_kernel = serial_or_parallel(_forward_loops)     # parallel from a few samples up
_backward_kernel = serial_or_parallel(_backward_loops)


class ConvPoolDropoutFn(Function):
    """Inputs: x (N, C, H, W), weight (F, C, KH, KW), bias (F,); output (N, F, PH, PW).

    Options: pool_size, pool_stride, rate (0 for no dropout), key (the dropout key).
    """

    @staticmethod
    def forward(ctx, x, w, b, pool_size=2, pool_stride=None, rate=0.0, key=0):
        check_conv_input(x.shape, w.shape, 0)
        x = np.ascontiguousarray(x)
        s = pool_stride or pool_size
        n, c, h, wd = x.shape
        oh, ow = h - w.shape[2] + 1, wd - w.shape[3] + 1
        check_pool_input((n, w.shape[0], oh, ow), pool_size)
        cols = im2col(x, w.shape[2], w.shape[3], oh, ow)                  # (CKK, N, L)
        y = (w.reshape(w.shape[0], -1) @ cols.reshape(cols.shape[0], -1)).reshape(
            w.shape[0], n, -1)                                           # (F, N, L)
        shape = (n, w.shape[0], pool_output_size(oh, pool_size, s),
                 pool_output_size(ow, pool_size, s))
        out, arg = np.empty(shape, dtype=y.dtype), np.empty(shape, dtype=np.int32)
        scale = y.dtype.type(1.0 / (1.0 - rate))
        _forward_kernel(y, b.astype(y.dtype, copy=False), wd, pool_size, s, rate > 0,
                        np.uint32(keep_threshold(rate)), scale, np.uint32(key), out, arg)
        ctx.save_for_backward(x.shape, w, cols, out, arg, scale if rate > 0 else
                              y.dtype.type(1.0))
        return out

    @staticmethod
    def backward(ctx, g):
        x_shape, w, cols, out, arg, scale = ctx.saved
        gfull = np.empty((w.shape[0],) + cols.shape[1:], dtype=out.dtype)   # (F, N, L)
        plane_sums = np.empty(out.shape[:2], dtype=out.dtype)                # (N, F)
        _backward_kernel(np.ascontiguousarray(g, dtype=out.dtype), out, arg, scale, gfull,
                         plane_sums)
        g2 = gfull.reshape(w.shape[0], -1)                                   # (F, N*L)
        gw = (g2 @ cols.reshape(cols.shape[0], -1).T).reshape(w.shape)
        gb = plane_sums.sum(axis=0)
        gx = None
        if ctx.needs_input_grad[0]:
            gcols = w.reshape(w.shape[0], -1).T @ g2                         # (CKK, N*L)
            gx = np.empty(x_shape, dtype=out.dtype)
            col2im(gcols.reshape(cols.shape), w.shape[2], w.shape[3], gx)
        return gx, gw, gb
