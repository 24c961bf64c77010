"""Adagrad (Duchi, Hazan & Singer 2011), in Keras' form.

The article's formulas:

    w_t = w_{t-1} - η'_t ∂L/∂w_{t-1}        η'_t = η / sqrt(α_t + ε)

leave α_t undefined ("different learning rates at each iteration"). It is the running
sum of squared gradients, started (in Keras) at a small positive value:

    a ← a + g²
    w ← w - lr·g / sqrt(a + eps)

PyTorch puts eps outside the root (the formula option `eps_in_sqrt=False`) and starts
the sum at zero (`initial_accumulator_value=0`); preset "torch" sets both:

    a ← a + g²
    w ← w - lr·g / (sqrt(a) + eps)

State: a (the accumulator), starting at initial_accumulator_value.
Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2, divided by
sqrt(a) with the gradient) under "torch".
Defaults: Keras' (lr=0.001, initial_accumulator_value=0.1, eps=1e-7); preset "torch":
PyTorch's (lr=0.01, initial_accumulator_value=0.0, eps=1e-10). The paper's own
step size is problem-dependent; Keras' lr of 0.001 is small for Adagrad, which is
why the article's Adagrad row learns slowly.
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .optimizer import Optimizer


def adagrad_reference(w, g, a, lr, eps, eps_in_sqrt=True):
    """The rule in numpy, one line per formula line (in place)."""
    a += g * g
    if eps_in_sqrt:
        w -= lr * g / np.sqrt(a + eps)
    else:                                          # PyTorch's
        w -= lr * g / (np.sqrt(a) + eps)


def _adagrad_loops(w, g, a, lr, eps, eps_in_sqrt):
    for i in prange(w.size):
        a[i] += g[i] * g[i]
        if eps_in_sqrt:
            w[i] -= lr * g[i] / np.sqrt(a[i] + eps)
        else:
            w[i] -= lr * g[i] / (np.sqrt(a[i]) + eps)


_adagrad_kernel = serial_or_parallel(_adagrad_loops)


class Adagrad(Optimizer):
    """Adagrad: per-coordinate steps shrinking with the sum of squared gradients."""

    presets = {"keras": dict(lr=0.001, initial_accumulator_value=0.1, eps=1e-7,
                             eps_in_sqrt=True),
               "torch": dict(lr=0.01, initial_accumulator_value=0.0, eps=1e-10,
                             eps_in_sqrt=False)}
    no_preset = {"paper": "Duchi et al. (2011) leave the step size to the problem"}
    added_since = ("eps_in_sqrt",)

    def __init__(self, params, lr=None, initial_accumulator_value=None, eps=None,
                 eps_in_sqrt=None, preset=None, nonfinite="raise", learning_rate=None,
                 **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr,
                         initial_accumulator_value=initial_accumulator_value, eps=eps,
                         eps_in_sqrt=eps_in_sqrt, **decay)

    def init_state(self, w, h):
        return {"a": np.full_like(w, h["initial_accumulator_value"])}

    def validate(self, lr, initial_accumulator_value, eps, eps_in_sqrt, **decay):
        super().validate(lr=lr, **decay)
        if not initial_accumulator_value >= 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        self._check_positive("eps", eps)

    def reference_update(self, w, g, state, h):
        adagrad_reference(w, g, state["a"], h["lr"], h["eps"], h["eps_in_sqrt"])

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        _adagrad_kernel(w.reshape(-1), g.reshape(-1), state["a"].reshape(-1), f(h["lr"]),
                        f(h["eps"]), h["eps_in_sqrt"])
