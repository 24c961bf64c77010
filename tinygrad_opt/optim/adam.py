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
too: eps sits outside the square root, next to the uncorrected v. PyTorch adds eps to
the bias-corrected root instead (the formula option `eps_inside_correction=True`, which
preset "torch" sets):

    m, v as above
    w ← w - lr/(1 - beta1^t)·m / (sqrt(v)/sqrt(1 - beta2^t) + eps)

which is this rule with eps·sqrt(1 - beta2^t) in place of eps. The two agree for large
gradients and part for small ones: at step 1, with eps 1e-7 in both, a gradient of 1e-6
moves w by 0.240·lr in Keras' form and by 0.909·lr in PyTorch's, 3.8 times as far
(`tests/test_optim_rules.py::test_the_eps_placements_the_docstrings_quote`).

AMSGrad (`amsgrad=True`; Reddi, Kale & Kumar 2018, "On the convergence of Adam and
beyond") divides by the largest v seen so far instead of the current one, so a
coordinate's step never grows because its gradients became smaller:

    v_max ← max(v_max, v)           and v_max in place of v in the update

Weight decay: see weight_decay.py; with `decoupled_weight_decay=True` this is AdamW
(adamw.py, which only changes the defaults).

State: m, v (first and second moments), zeros; v_max with amsgrad. m and v are flushed
to 0 where they underflow (underflow.py).
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7); preset "torch":
PyTorch's (eps=1e-8, eps_inside_correction=True); preset "paper": Kingma & Ba's
(eps=1e-8, Keras' formula).
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def step_size(lr, beta1, beta2, t):
    """alpha_t = lr·sqrt(1 - beta2^t) / (1 - beta1^t): the bias correction, for both paths."""
    return lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)


def adam_reference(w, g, m, v, t, lr, beta1, beta2, eps, v_max=None,
                   eps_inside_correction=False):
    """The rule in numpy, one line per formula line (in place)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    flush(m)                                       # underflow.py: subnormals to 0
    flush(v)
    if v_max is not None:                          # AMSGrad
        np.maximum(v_max, v, out=v_max)
        v = v_max
    if eps_inside_correction:                      # PyTorch's
        w -= lr / (1 - beta1 ** t) * m / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)
    else:
        alpha_t = step_size(lr, beta1, beta2, t)
        w -= alpha_t * m / (np.sqrt(v) + eps)


def _adam_loops(w, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, alpha_t, eps,
                tiny):
    for i in prange(w.size):
        m[i] = flushed(beta1 * m[i] + one_minus_beta1 * g[i], tiny)
        v[i] = flushed(beta2 * v[i] + one_minus_beta2 * g[i] * g[i], tiny)
        w[i] -= alpha_t * m[i] / (np.sqrt(v[i]) + eps)


def _adam_general_loops(w, g, m, v, v_max, beta1, one_minus_beta1, beta2,
                        one_minus_beta2, step, root_bc2, eps, amsgrad, tiny):
    """AMSGrad and eps inside the correction. Keras': step = alpha_t, root_bc2 = 1;
    PyTorch's: step = lr/(1 - beta1^t), root_bc2 = sqrt(1 - beta2^t)."""
    for i in prange(w.size):
        m[i] = flushed(beta1 * m[i] + one_minus_beta1 * g[i], tiny)
        v[i] = flushed(beta2 * v[i] + one_minus_beta2 * g[i] * g[i], tiny)
        s = v[i]
        if amsgrad:
            if v[i] > v_max[i]:
                v_max[i] = v[i]
            s = v_max[i]
        w[i] -= step * m[i] / (np.sqrt(s) / root_bc2 + eps)


_adam_kernel = serial_or_parallel(_adam_loops)
_adam_general_kernel = serial_or_parallel(_adam_general_loops)


class Adam(Optimizer):
    """Adam: momentum on the gradient, RMSprop's scaling, and bias correction."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, amsgrad=False,
                             eps_inside_correction=False),
               "torch": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False,
                             eps_inside_correction=True),
               "paper": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False,
                             eps_inside_correction=False)}
    added_since = ("eps_inside_correction",)

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None, amsgrad=None,
                 eps_inside_correction=None, preset=None, nonfinite="raise",
                 learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair(type(self).__name__, betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, amsgrad=amsgrad,
                         eps_inside_correction=eps_inside_correction, **decay)

    def init_state(self, w, h):
        names = ("m", "v", "v_max") if h["amsgrad"] else ("m", "v")
        return {k: np.zeros_like(w) for k in names}

    def validate(self, lr, beta1, beta2, eps, amsgrad, eps_inside_correction, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)

    def reference_update(self, w, g, state, h):
        adam_reference(w, g, state["m"], state["v"], self.t, h["lr"], h["beta1"],
                       h["beta2"], h["eps"], state.get("v_max"), h["eps_inside_correction"])

    def kernel_update(self, w, g, state, h):
        adam_kernel_update(w, g, state, self.t, h["lr"], h["beta1"], h["beta2"], h["eps"],
                           h["amsgrad"], h["eps_inside_correction"])


def adam_kernel_update(w, g, state, t, lr, beta1, beta2, eps, amsgrad,
                       eps_inside_correction):
    """The fused update, for Adam, AdamW and Muon's AdamW part."""
    f = w.dtype.type
    if not (eps_inside_correction or amsgrad):      # the article's path
        _adam_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                     state["v"].reshape(-1), f(beta1), f(1 - beta1), f(beta2), f(1 - beta2),
                     f(step_size(lr, beta1, beta2, t)), f(eps), threshold(w.dtype))
        return
    if eps_inside_correction:
        step, root_bc2 = lr / (1 - beta1 ** t), math.sqrt(1 - beta2 ** t)
    else:
        step, root_bc2 = step_size(lr, beta1, beta2, t), 1.0
    v_max = state.get("v_max", state["v"])
    _adam_general_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                         state["v"].reshape(-1), v_max.reshape(-1), f(beta1), f(1 - beta1),
                         f(beta2), f(1 - beta2), f(step), f(root_bc2), f(eps), amsgrad,
                         threshold(w.dtype))
