"""Adamax (Kingma & Ba 2014, "Adam: a method for stochastic optimization", section 7.1):
Adam with the L2 norm of its second moment replaced by the infinity norm, a running
maximum of |g| that decays by beta2 a step:

    m ← m + (1 - beta1)·(g - m)            (= beta1·m + (1 - beta1)·g, as both libraries
                                            write it: an interpolation towards g)
    u ← max(beta2·u, |g|)
    w ← w - lr/(1 - beta1^t) · m / (u + eps)

The paper has no eps (u is 0 only where every gradient so far was 0, and there m is 0
too). Keras adds it to u in the denominator, as above; PyTorch adds it to |g| inside the
maximum instead (the formula option `eps_in_max=True`, which preset "torch" sets):

    u ← max(beta2·u, |g| + eps)
    w ← w - lr/(1 - beta1^t) · m / u

The two agree while |g| is far above eps and part where it is not: a weight whose
gradient is 0 keeps u >= eps in PyTorch's form but lets u decay to 0 in Keras'.
PyTorch computes the interpolation as torch.lerp does (for a weight of 1 - beta1 at
0.5 or more it writes g - (g - m)·beta1); so does this rule. Checked against both
libraries' trajectories (tests/test_conventions.py).

Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2) under "torch".
State: m, u, zeros; flushed to 0 where they underflow (underflow.py).
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7); preset "torch": PyTorch's
(lr=0.002, eps=1e-8, eps_in_max=True). No "paper" preset: the paper has no eps.
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .lerp import lerp
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def adamax_reference(w, g, m, u, t, lr, beta1, beta2, eps, eps_in_max):
    """The rule in numpy, one line per formula line (in place)."""
    m[...] = lerp(m, g, 1 - beta1)
    u[...] = np.maximum(beta2 * u, np.abs(g) + eps if eps_in_max else np.abs(g))
    flush(m)                                       # underflow.py: subnormals to 0
    flush(u)
    if eps_in_max:                                 # PyTorch's
        w -= lr / (1 - beta1 ** t) * m / u
    else:                                          # Keras'
        w -= lr * m / ((1 - beta1 ** t) * (u + eps))


def _adamax_loops(w, g, m, u, weight, one_minus_weight, small_weight, beta2, eps_max,
                  numerator, bias_correction, eps_sum, tiny):
    """Both forms: PyTorch's numerator = lr/(1 - beta1^t), bias_correction = 1,
    eps_max = eps, eps_sum = 0; Keras' numerator = lr, bias_correction = 1 - beta1^t,
    eps_max = 0, eps_sum = eps."""
    for i in prange(w.size):
        gi = g[i]
        if small_weight:
            mi = m[i] + weight * (gi - m[i])
        else:
            mi = gi - (gi - m[i]) * one_minus_weight
        m[i] = flushed(mi, tiny)
        a = beta2 * u[i]
        b = abs(gi) + eps_max
        u[i] = flushed(a if a > b or a != a else b, tiny)
        w[i] -= numerator * m[i] / (bias_correction * (u[i] + eps_sum))


_adamax_kernel = serial_or_parallel(_adamax_loops)


class Adamax(Optimizer):
    """Adamax: Adam's step over a decaying maximum of |g| instead of a root mean square."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, eps_in_max=False),
               "torch": dict(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-8, eps_in_max=True)}
    no_preset = {"paper": "the paper's Adamax has no eps; use preset 'keras' or 'torch'"}
    state_names = ("m", "u")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None, eps_in_max=None,
                 preset=None, nonfinite="raise", learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair("Adamax", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, eps_in_max=eps_in_max, **decay)

    def validate(self, lr, beta1, beta2, eps, eps_in_max, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)

    def reference_update(self, w, g, state, h):
        adamax_reference(w, g, state["m"], state["u"], self.t, h["lr"], h["beta1"],
                         h["beta2"], h["eps"], h["eps_in_max"])

    def kernel_update(self, w, g, state, h):
        f, t, weight = w.dtype.type, self.t, 1 - h["beta1"]
        if h["eps_in_max"]:
            numerator, bias_correction = h["lr"] / (1 - h["beta1"] ** t), 1.0
            eps_max, eps_sum = h["eps"], 0.0
        else:
            numerator, bias_correction = h["lr"], 1 - h["beta1"] ** t
            eps_max, eps_sum = 0.0, h["eps"]
        _adamax_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                       state["u"].reshape(-1), f(weight), f(1 - weight), weight < 0.5,
                       f(h["beta2"]), f(eps_max), f(numerator), f(bias_correction),
                       f(eps_sum), threshold(w.dtype))
