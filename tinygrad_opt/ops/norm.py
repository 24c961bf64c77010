"""Batch normalisation (Ioffe & Szegedy 2015) as one op, for inputs viewed as (N, C, S):
S = H*W for images (BatchNorm2D), 1 for features (BatchNorm1D). Per channel c, over its
m = N*S values:

    training:   mean_c, var_c = the batch's mean and (biased) variance
    eval:       mean_c, var_c = the running estimates (given)
    xhat = (x - mean_c) / sqrt(var_c + eps)
    y = gamma_c * xhat + beta_c

and the backward pass, with dbeta_c = sum g, dgamma_c = sum g * xhat:

    training:   dx = gamma_c / (m * sqrt(var_c + eps)) * (m*g - dbeta_c - xhat*dgamma_c)
    eval:       dx = gamma_c / sqrt(var_c + eps) * g

(the training formula is the chain rule through the mean and the variance, which depend
on every x of the channel). One op reads the activation once each way, where the
general ops (mean, var, sub, div, ...) each made a pass and an array of their own
(`make bench`'s LeNet block rows; the figures in docs/performance.md).
"""
import numpy as np

from ..jit import prange, jit, use_reference
from ..autograd import Function


# --- numpy references ---------------------------------------------------------------------
def batch_stats_reference(x3):
    """Each channel's mean and biased variance: (C,), (C,)."""
    return x3.mean(axis=(0, 2)), x3.var(axis=(0, 2))


def batchnorm_forward_reference(x3, gamma, beta, mean, var, eps):
    """(y, xhat, invstd) for x3 (N, C, S)."""
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x3 - mean[None, :, None]) * invstd[None, :, None]
    y = xhat * gamma[None, :, None] + beta[None, :, None]
    return y, xhat, invstd


def batchnorm_backward_reference(g3, xhat, gamma, invstd, training):
    """(dx, dgamma, dbeta)."""
    dbeta = g3.sum(axis=(0, 2))
    dgamma = (g3 * xhat).sum(axis=(0, 2))
    scale = (gamma * invstd)[None, :, None]
    if not training:
        return g3 * scale, dgamma, dbeta
    m = g3.shape[0] * g3.shape[2]
    dx = scale / m * (m * g3 - dbeta[None, :, None] - xhat * dgamma[None, :, None])
    return dx, dgamma, dbeta


# --- Numba kernels: one channel per iteration, sums in float64 -----------------------------
def _stats_loops(x3, mean, var):
    n_batch, n_ch, size = x3.shape
    m = n_batch * size
    for c in prange(n_ch):
        total = 0.0
        for n in range(n_batch):
            for k in range(size):
                total += x3[n, c, k]
        mu = total / m
        squares = 0.0
        for n in range(n_batch):
            for k in range(size):
                d = x3[n, c, k] - mu
                squares += d * d
        mean[c] = mu
        var[c] = squares / m


def _forward_loops(x3, gamma, beta, mean, invstd, xhat, y):
    n_batch, n_ch, size = x3.shape
    for c in prange(n_ch):
        mu, s, gm, bt = mean[c], invstd[c], gamma[c], beta[c]
        for n in range(n_batch):
            for k in range(size):
                h = (x3[n, c, k] - mu) * s
                xhat[n, c, k] = h
                y[n, c, k] = h * gm + bt


def _backward_loops(g3, xhat, gamma, invstd, training, dx, dgamma, dbeta):
    n_batch, n_ch, size = g3.shape
    m = n_batch * size
    for c in prange(n_ch):
        sg = 0.0
        sgx = 0.0
        for n in range(n_batch):
            for k in range(size):
                sg += g3[n, c, k]
                sgx += g3[n, c, k] * xhat[n, c, k]
        dbeta[c] = sg
        dgamma[c] = sgx
        scale = gamma[c] * invstd[c]
        if training:
            k1 = scale / m
            mean_g, mean_gx = sg, sgx
            for n in range(n_batch):
                for k in range(size):
                    dx[n, c, k] = k1 * (m * g3[n, c, k] - mean_g - xhat[n, c, k] * mean_gx)
        else:
            for n in range(n_batch):
                for k in range(size):
                    dx[n, c, k] = scale * g3[n, c, k]


_stats = jit(_stats_loops, parallel=True, reassociate=True)
_forward = jit(_forward_loops, parallel=True)
_backward = jit(_backward_loops, parallel=True, reassociate=True)


def batch_stats_kernel(x3):
    mean = np.empty(x3.shape[1], dtype=x3.dtype)
    var = np.empty(x3.shape[1], dtype=x3.dtype)
    _stats(x3, mean, var)
    return mean, var


def batchnorm_forward_kernel(x3, gamma, beta, mean, var, eps):
    invstd = (1.0 / np.sqrt(var + eps)).astype(x3.dtype)
    xhat, y = np.empty_like(x3), np.empty_like(x3)
    _forward(x3, gamma, beta, mean, invstd, xhat, y)
    return y, xhat, invstd


def batchnorm_backward_kernel(g3, xhat, gamma, invstd, training):
    dx = np.empty_like(g3)
    dgamma = np.empty(g3.shape[1], dtype=g3.dtype)
    dbeta = np.empty(g3.shape[1], dtype=g3.dtype)
    _backward(g3, xhat, gamma, invstd, training, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


def as_channels(x):
    """x (N, C, ...) as a contiguous (N, C, S) array."""
    return np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)


def batch_stats(x):
    """Each channel's batch mean and biased variance of x (N, C, ...)."""
    return (batch_stats_reference if use_reference() else batch_stats_kernel)(as_channels(x))


class BatchNormFn(Function):
    """Inputs: x (N, C, ...), gamma (C,), beta (C,). Options: mean, var (C,): the batch's
    (`batch_stats`, with training=True: the gradient then flows through them) or the
    running estimates (training=False); eps."""

    @staticmethod
    def forward(ctx, x, gamma, beta, mean, var, training, eps=1e-5):
        x3 = as_channels(x)
        mean = np.asarray(mean, dtype=x.dtype)
        var = np.asarray(var, dtype=x.dtype)
        fwd = batchnorm_forward_reference if use_reference() else batchnorm_forward_kernel
        y, xhat, invstd = fwd(x3, gamma, beta, mean, var, eps)
        ctx.save_for_backward(xhat, gamma, invstd, training, x.shape)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        xhat, gamma, invstd, training, shape = ctx.saved
        g3 = np.ascontiguousarray(g).reshape(xhat.shape)
        back = batchnorm_backward_reference if use_reference() else batchnorm_backward_kernel
        dx, dgamma, dbeta = back(g3, xhat, gamma, invstd, training)
        return dx.reshape(shape), dgamma, dbeta
