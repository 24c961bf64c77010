"""Adam (Kingma & Ba 2014), in Keras' form.

The article's formulas:

    m_t = β1 m_{t-1} + (1 - β1) ∂L/∂w_t        v_t = β2 v_{t-1} + (1 - β2) (∂L/∂w_t)²

stop at the two moments: the update itself and the bias correction are not shown.
The whole rule, with t the step number (1 on the first step):

    m ← beta1·m + (1 - beta1)·g
    v ← beta2·v + (1 - beta2)·g²
    alpha_t = lr·sqrt(1 - beta2^t) / (1 - beta1^t)        (bias correction)
    w ← w - alpha_t·m / (sqrt(v) + eps)

This is the paper's "more efficient" ordering (end of its section 2), which Keras uses
too: eps sits outside the square root, next to the uncorrected v. PyTorch does not: it
adds eps to the bias-corrected root, w ← w - lr/(1 - beta1^t)·m / (sqrt(v/(1 - beta2^t))
+ eps), which is this rule with eps·sqrt(1 - beta2^t) in place of eps. The two agree for
large gradients and part for small ones: at step 1, with eps 1e-7 in both, a gradient of
1e-6 moves w by 0.240·lr here and by 0.909·lr in PyTorch's form, 3.8 times as far
(`tests/test_optim.py::test_the_eps_placements_the_docstrings_quote`).

State: m, v (first and second moments), zeros.
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7); preset "paper": Kingma &
Ba's (eps=1e-8).
"""
import math

import numpy as np

from .._jit import prange, serial_or_parallel
from .optimizer import Optimizer


def step_size(lr, beta1, beta2, t):
    """alpha_t = lr·sqrt(1 - beta2^t) / (1 - beta1^t): the bias correction, for both paths."""
    return lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)


def adam_reference(w, g, m, v, t, lr, beta1, beta2, eps):
    """The rule in numpy, one line per formula line (in place)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    alpha_t = step_size(lr, beta1, beta2, t)
    w -= alpha_t * m / (np.sqrt(v) + eps)


def _adam_loops(w, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, alpha_t, eps):
    for i in prange(w.size):
        m[i] = beta1 * m[i] + one_minus_beta1 * g[i]
        v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i]
        w[i] -= alpha_t * m[i] / (np.sqrt(v[i]) + eps)


_adam_kernel = serial_or_parallel(_adam_loops)


class Adam(Optimizer):
    """Adam: momentum on the gradient, RMSprop's scaling, and bias correction."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7),
               "paper": dict(eps=1e-8)}
    state_names = ("m", "v")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None, preset="keras",
                 nonfinite="raise", learning_rate=None, betas=None):
        if betas is not None:               # PyTorch's form: betas=(beta1, beta2)
            if len(betas) != 2:
                raise ValueError(f"Adam: betas must be (beta1, beta2), got {betas!r}")
            if (beta1, beta2) != (None, None) and (beta1, beta2) != tuple(betas):
                raise ValueError(f"Adam: betas={tuple(betas)} and beta1={beta1}, "
                                 f"beta2={beta2} disagree; give one form")
            beta1, beta2 = betas
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps)

    def validate(self, lr, beta1, beta2, eps):
        super().validate(lr=lr)
        self._check_range("beta1", beta1)
        self._check_range("beta2", beta2)
        self._check_positive("eps", eps)

    def reference_update(self, w, g, state):
        h = self.hyper
        adam_reference(w, g, state["m"], state["v"], self.t, h["lr"], h["beta1"],
                       h["beta2"], h["eps"])

    def kernel_update(self, w, g, state):
        h, f = self.hyper, w.dtype.type
        alpha_t = step_size(h["lr"], h["beta1"], h["beta2"], self.t)
        _adam_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                     state["v"].reshape(-1), f(h["beta1"]), f(1 - h["beta1"]), f(h["beta2"]),
                     f(1 - h["beta2"]), f(alpha_t), f(h["eps"]))
