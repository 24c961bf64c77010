"""AdaDelta (Zeiler 2012), in Keras' form.

The article's formulas:

    s_t  = ρ s_{t-1} + (1 - ρ) g_t'²            <- should be g_t², the raw gradient
    x_t  = x_{t-1} - g_t'
    g_t' = sqrt(Δx_{t-1} + ε) / sqrt(s_t + ε) ⊙ g_t
    Δx_t = ρ Δx_{t-1} + (1 - ρ) g_t'²

accumulate the *rescaled* gradient in their first line, a typo: Zeiler's s accumulates
the raw gradient g. In order, with u the accumulator of squared updates (the article's
Δx):

    s ← rho·s + (1 - rho)·g²
    d ← sqrt(u + eps) / sqrt(s + eps) · g        (u: its value before this step)
    u ← rho·u + (1 - rho)·d²
    w ← w - lr·d

Zeiler's method has no learning rate (lr = 1). Keras multiplies d by lr = 0.001, which
makes every step a thousand times shorter: that is the article's weak AdaDelta row.

State: s (squared gradients) and u (squared updates), zeros; flushed to 0 where they
underflow (underflow.py).
Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2, rescaled with
the gradient) under "torch" and "paper".
Defaults: Keras' (lr=0.001, rho=0.95, eps=1e-7); preset "paper": Zeiler's (lr=1.0,
rho=0.95, eps=1e-6); preset "torch": PyTorch's (lr=1.0, rho=0.9, eps=1e-6), the same
formula.
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def adadelta_reference(w, g, s, u, lr, rho, eps):
    """The rule in numpy, one line per formula line (in place)."""
    s[...] = rho * s + (1 - rho) * g * g
    flush(s)                                       # underflow.py: subnormals to 0
    d = np.sqrt(u + eps) / np.sqrt(s + eps) * g
    u[...] = rho * u + (1 - rho) * d * d
    flush(u)
    w -= lr * d


def _adadelta_loops(w, g, s, u, lr, rho, one_minus_rho, eps, tiny):
    for i in prange(w.size):
        s[i] = flushed(rho * s[i] + one_minus_rho * g[i] * g[i], tiny)
        d = np.sqrt(u[i] + eps) / np.sqrt(s[i] + eps) * g[i]
        u[i] = flushed(rho * u[i] + one_minus_rho * d * d, tiny)
        w[i] -= lr * d


_adadelta_kernel = serial_or_parallel(_adadelta_loops)


class Adadelta(Optimizer):
    """AdaDelta: steps scaled by the ratio of RMS update to RMS gradient."""

    presets = {"keras": dict(lr=0.001, rho=0.95, eps=1e-7),
               "torch": dict(lr=1.0, rho=0.9, eps=1e-6),
               "paper": dict(lr=1.0, rho=0.95, eps=1e-6)}
    state_names = ("s", "u")

    def __init__(self, params, lr=None, rho=None, eps=None, preset=None,
                 nonfinite="raise", learning_rate=None, **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, rho=rho, eps=eps,
                         **decay)

    def validate(self, lr, rho, eps, **decay):
        super().validate(lr=lr, **decay)
        self._check_range("rho", rho)
        self._check_positive("eps", eps)

    def reference_update(self, w, g, state, h):
        adadelta_reference(w, g, state["s"], state["u"], h["lr"], h["rho"], h["eps"])

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        _adadelta_kernel(w.reshape(-1), g.reshape(-1), state["s"].reshape(-1),
                         state["u"].reshape(-1), f(h["lr"]), f(h["rho"]), f(1 - h["rho"]),
                         f(h["eps"]), threshold(w.dtype))
