"""RAdam (Liu et al. 2020, "On the variance of the adaptive learning rate and beyond").

Adam's adaptive step has a large variance in the first steps, when v rests on a few
gradients; warm-up hides it. RAdam estimates the length rho_t of the simple moving
average that v approximates, and while it is too short to trust, takes a plain momentum
step; after that, Adam's step multiplied by a rectification r_t that rises towards 1:

    m ← beta1·m + (1 - beta1)·g
    v ← beta2·v + (1 - beta2)·g²
    rho_inf = 2/(1 - beta2) - 1
    rho_t = rho_inf - 2·t·beta2^t/(1 - beta2^t)
    m_hat = m/(1 - beta1^t)
    if rho_t > 5:
        r_t = sqrt((rho_t - 4)(rho_t - 2)·rho_inf / ((rho_inf - 4)(rho_inf - 2)·rho_t))
        w ← w - lr·m_hat·r_t·sqrt(1 - beta2^t)/(sqrt(v) + eps)
    else:
        w ← w - lr·m_hat

This is PyTorch's RAdam (the threshold 5, and eps beside sqrt(v)); with beta2 = 0.999
the first 5 steps are momentum steps. Keras 3.15 ships no RAdam, hence no "keras"
preset: this rule's default preset is "torch".

Weight decay (weight_decay.py): coupled (L2) by default, as PyTorch's;
decoupled_weight_decay=True gives PyTorch's decoupled form.
State: m, v, zeros; flushed to 0 where they underflow (underflow.py).
Defaults (preset "torch", PyTorch's): lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8.
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def rectification(t, beta2):
    """r_t, or None while rho_t <= 5 (a momentum step)."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * (beta2 ** t) / (1 - beta2 ** t)
    if not rho_t > 5.0:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf
            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def radam_reference(w, g, m, v, t, lr, beta1, beta2, eps):
    """The rule in numpy, one line per formula line (in place)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    flush(m)                                       # underflow.py: subnormals to 0
    flush(v)
    m_hat = m / (1 - beta1 ** t)
    r_t = rectification(t, beta2)
    if r_t is not None:
        w -= m_hat * lr * (math.sqrt(1 - beta2 ** t) / (np.sqrt(v) + eps)) * r_t
    else:
        w -= m_hat * lr


def _radam_loops(w, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
                 bias_correction1, lr, root_bc2, r_t, rectified, tiny):
    for i in prange(w.size):
        m[i] = flushed(beta1 * m[i] + one_minus_beta1 * g[i], tiny)
        v[i] = flushed(beta2 * v[i] + one_minus_beta2 * g[i] * g[i], tiny)
        m_hat = m[i] / bias_correction1
        if rectified:
            w[i] -= m_hat * lr * (root_bc2 / (np.sqrt(v[i]) + eps)) * r_t
        else:
            w[i] -= m_hat * lr


_radam_kernel = serial_or_parallel(_radam_loops)


class RAdam(Optimizer):
    """RAdam: Adam with its early steps rectified (momentum steps, then a growing factor)."""

    presets = {"torch": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8)}
    no_preset = {"keras": "Keras 3.15 ships no RAdam",
                 "paper": "the paper's defaults are PyTorch's; use preset 'torch'"}
    default_preset = "torch"
    state_names = ("m", "v")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None, preset=None,
                 nonfinite="raise", learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair("RAdam", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, **decay)

    def validate(self, lr, beta1, beta2, eps, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)

    def reference_update(self, w, g, state, h):
        radam_reference(w, g, state["m"], state["v"], self.t, h["lr"], h["beta1"],
                        h["beta2"], h["eps"])

    def kernel_update(self, w, g, state, h):
        f, t = w.dtype.type, self.t
        r_t = rectification(t, h["beta2"])
        _radam_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                      state["v"].reshape(-1), f(h["beta1"]), f(1 - h["beta1"]),
                      f(h["beta2"]), f(1 - h["beta2"]), f(h["eps"]),
                      f(1 - h["beta1"] ** t), f(h["lr"]), f(math.sqrt(1 - h["beta2"] ** t)),
                      f(r_t or 0.0), r_t is not None, threshold(w.dtype))
