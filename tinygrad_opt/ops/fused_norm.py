"""Batch normalisation + relu + max-pool as one op: the tail of each of LeNet-5's
convolution blocks (conv -> batch norm -> relu -> pool).

    z = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c       (ops/norm.py)
    out = maxpool(relu(z))                                          (ops/pool.py)

Unfused these are three ops, each a pass over the convolution's output forward and again
backward, and three nodes for the engine. Fused:

- forward: per sample and channel, z of one plane is computed into a buffer that stays
  in the L1 cache, and pooled from there with relu (max(window max, 0), by ops/pool.py's
  `pool_plane_any` as in ops/fused.py: the same first-max-wins rule), recording where
  each max was;
- backward: only the recorded maxima with out > 0 receive a gradient gz = g, so the
  batch-norm sums dbeta_c = sum gz and dgamma_c = sum gz * xhat are sums over the pooled
  outputs alone (a quarter of the terms for a 2x2 pool), and the input gradient
  (ops/norm.py's formula)

      training:   dx = gamma_c / (m sqrt(var_c + eps)) * (m gz - dbeta_c - xhat dgamma_c)
      eval:       dx = gamma_c / sqrt(var_c + eps) * gz

  is written in one pass, xhat recomputed from x rather than stored.

The same terms as the three layers' kernels, so results agree to the last bits (tests
check it, gradients and NaN included). The readable path is the unfused layers:
`norm_relu_pool_reference` and `norm_relu_pool_backward_reference` chain their numpy
references. The module that uses it is `nn.BatchNormReluPool`.
"""
from typing import NamedTuple

import numpy as np

from ..jit import jit, prange, serial_or_parallel, use_reference
from ..autograd import Function
from .norm import as_channels, batchnorm_backward_reference, batchnorm_forward_reference
from .pool import (check_pool_input, maxpool2d_backward_reference,
                   maxpool2d_forward_reference, pool_plane_any, window_count)


# --- numpy references: the three layers' own, chained --------------------------------------
def norm_relu_pool_reference(x, gamma, beta, mean, var, eps, k, s):
    """(out, arg): maxpool(relu(batchnorm(x))) and where each max was."""
    z = batchnorm_forward_reference(as_channels(x), gamma, beta, mean, var, eps)[0]
    return maxpool2d_forward_reference(np.maximum(z.reshape(x.shape), 0), k, s)


def norm_relu_pool_backward_reference(x, gamma, beta, mean, var, eps, k, s, training, g):
    """(dx, dgamma, dbeta) for the output gradient g, backwards through the three."""
    z, xhat, invstd = batchnorm_forward_reference(as_channels(x), gamma, beta, mean, var,
                                                  eps)
    r = np.maximum(z.reshape(x.shape), 0)
    arg = maxpool2d_forward_reference(r, k, s)[1]
    gz = maxpool2d_backward_reference(g, arg, x.shape) * (r > 0)
    dx, dgamma, dbeta = batchnorm_backward_reference(as_channels(gz), xhat, gamma, invstd,
                                                     training)
    return dx.reshape(x.shape), dgamma, dbeta


# --- Numba kernels -------------------------------------------------------------------------
def _forward_loops(x, gamma, beta, mean, invstd, k, s, out, arg, finite):
    """out[n, c] = maxpool(relu(z[n, c])), one sample per iteration; finite[n]: whether
    every z of the sample is finite (so x, the statistics and gamma, beta were)."""
    n_batch, n_ch, h, wd = x.shape
    zero = out.dtype.type(0)
    xr = x.reshape(n_batch, n_ch, h * wd)
    for n in prange(n_batch):
        z = np.empty(h * wd, dtype=out.dtype)   # one normalised plane (in L1)
        bad = False
        for c in range(n_ch):
            mu, sd, gm, bt = mean[c], invstd[c], gamma[c], beta[c]
            xs = xr[n, c]
            for t in range(h * wd):
                z[t] = ((xs[t] - mu) * sd) * gm + bt
                bad |= z[t] - z[t] != 0         # inf - inf and NaN - NaN are NaN
            pool_plane_any(z, wd, k, s, out[n, c], arg[n, c], zero)
        finite[n] = not bad


def _sums_loops(x, g, out, arg, mean, invstd, dbeta, dgamma):
    """dbeta[c] = sum of g where out > 0, dgamma[c] = sum of g * xhat at those maxima:
    one channel per iteration, in float64."""
    n_batch, n_ch, h, wd = x.shape
    n_pool = out.shape[2] * out.shape[3]
    xr = x.reshape(n_batch, n_ch, h * wd)
    gr, outr = g.reshape(n_batch, n_ch, n_pool), out.reshape(n_batch, n_ch, n_pool)
    argr = arg.reshape(n_batch, n_ch, n_pool)
    for c in prange(n_ch):
        sg = 0.0
        sgx = 0.0
        for n in range(n_batch):
            for t in range(n_pool):
                if outr[n, c, t] > 0:
                    d = gr[n, c, t]
                    sg += d
                    sgx += d * ((xr[n, c, argr[n, c, t]] - mean[c]) * invstd[c])
        dbeta[c] = sg
        dgamma[c] = sgx


def _backward_loops(x, g, out, arg, gamma, mean, invstd, dbeta, dgamma, training, dx):
    """dx by the formula above, one sample per iteration: the dense part first, then the
    maxima's m * gz added (training), or dx = scale * gz (eval)."""
    n_batch, n_ch, h, wd = x.shape
    n_pool = out.shape[2] * out.shape[3]
    m = n_batch * h * wd
    xr, dxr = x.reshape(n_batch, n_ch, h * wd), dx.reshape(n_batch, n_ch, h * wd)
    gr, outr = g.reshape(n_batch, n_ch, n_pool), out.reshape(n_batch, n_ch, n_pool)
    argr = arg.reshape(n_batch, n_ch, n_pool)
    for n in prange(n_batch):
        for c in range(n_ch):
            scale = gamma[c] * invstd[c]
            xs, ds = xr[n, c], dxr[n, c]
            if training:
                k1 = scale / m
                mu, sd, sg, sgx = mean[c], invstd[c], dbeta[c], dgamma[c]
                for t in range(h * wd):
                    ds[t] = k1 * (-sg - ((xs[t] - mu) * sd) * sgx)
                for t in range(n_pool):
                    if outr[n, c, t] > 0:
                        ds[argr[n, c, t]] += k1 * m * gr[n, c, t]
            else:
                ds[:] = 0
                for t in range(n_pool):
                    if outr[n, c, t] > 0:
                        ds[argr[n, c, t]] += scale * gr[n, c, t]


_forward = serial_or_parallel(_forward_loops)
_sums = jit(_sums_loops, parallel=True, reassociate=True)
_backward = serial_or_parallel(_backward_loops)


class _Kernel(NamedTuple):
    """What the forward kernel leaves for the backward one."""
    out: np.ndarray         # the block's output
    arg: np.ndarray         # where each pooled maximum was, in its plane
    invstd: np.ndarray      # 1 / sqrt(var + eps) per channel
    finite: bool            # every normalised value was finite


class BatchNormReluPoolFn(Function):
    """Inputs: x (N, C, H, W), gamma (C,), beta (C,); output (N, C, PH, PW).

    Options: mean, var (C,): the batch's (training=True, the gradient then flows through
    them) or the running estimates (training=False); eps; pool_size, pool_stride.
    """

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, training, eps=1e-5, pool_size=2,
                pool_stride=None):
        s = pool_stride or pool_size
        check_pool_input(x.shape, pool_size)
        mean = np.asarray(mean, dtype=x.dtype)
        var = np.asarray(var, dtype=x.dtype)
        options = (gamma, mean, var, eps, pool_size, s, training)
        if use_reference():
            out = norm_relu_pool_reference(x, gamma, beta, mean, var, eps, pool_size, s)[0]
            ctx.save_for_backward(x, beta, options, None)
            return out
        x = np.ascontiguousarray(x)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        shape = (x.shape[0], x.shape[1], window_count(x.shape[2], pool_size, s),
                 window_count(x.shape[3], pool_size, s))
        out, arg = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int32)
        finite = np.empty(x.shape[0], dtype=np.bool_)
        _forward(x, gamma.astype(x.dtype, copy=False), beta.astype(x.dtype, copy=False),
                 mean, invstd, pool_size, s, out, arg, finite)
        ctx.save_for_backward(x, beta, options, _Kernel(out, arg, invstd, bool(finite.all())))
        return out

    @staticmethod
    def backward(ctx, g):
        x, beta, (gamma, mean, var, eps, k, s, training), fast = ctx.saved
        # The references when the forward pass ran them, or with inf or NaN in z or g: the
        # kernels sum over the pooled maxima only, where the unfused layers also multiply
        # the other positions' zero gradient by xhat (0 * inf = NaN), and g by relu's 0.
        if fast is None or not (fast.finite and np.isfinite(g).all()):
            return norm_relu_pool_backward_reference(x, gamma, beta, mean, var, eps, k, s,
                                                     training, g)
        out, arg, invstd = fast.out, fast.arg, fast.invstd
        g = np.ascontiguousarray(g, dtype=x.dtype)
        dbeta = np.empty(x.shape[1], dtype=x.dtype)
        dgamma = np.empty(x.shape[1], dtype=x.dtype)
        _sums(x, g, out, arg, mean, invstd, dbeta, dgamma)
        dx = np.empty_like(x)
        _backward(x, g, out, arg, gamma.astype(x.dtype, copy=False), mean, invstd, dbeta,
                  dgamma, training, dx)
        return dx, dgamma, dbeta
