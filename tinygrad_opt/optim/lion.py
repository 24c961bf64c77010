"""Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms").

Found by a program search over update rules: the step is the sign of an interpolation
between momentum and gradient, so every coordinate moves by exactly lr (or not at all);
the momentum is updated afterwards with a slower rate:

    c = beta1·m + (1 - beta1)·g
    w ← w - lr·sign(c)
    m ← beta2·m + (1 - beta2)·g

Its steps are larger than Adam's (each coordinate moves by lr), so the paper uses a
learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger, decoupled as
AdamW's (w ← w·(1 - lr·weight_decay)).

This is Keras' Lion (the only one of the two libraries that ships it: PyTorch 2.13 has
none, hence no "torch" preset); the paper fixes beta1 and beta2 but no learning rate.
State: m, zeros.
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.99).
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .optimizer import Optimizer


def lion_reference(w, g, m, lr, beta1, beta2):
    """The rule in numpy, one line per formula line (in place)."""
    c = beta1 * m + (1 - beta1) * g
    w -= lr * np.sign(c)
    m[...] = beta2 * m + (1 - beta2) * g


def _lion_loops(w, g, m, lr, beta1, one_minus_beta1, beta2, one_minus_beta2):
    for i in prange(w.size):
        c = beta1 * m[i] + one_minus_beta1 * g[i]
        w[i] -= lr * np.sign(c)
        m[i] = beta2 * m[i] + one_minus_beta2 * g[i]


_lion_kernel = serial_or_parallel(_lion_loops)


class Lion(Optimizer):
    """Lion: the sign of interpolated momentum, a step of lr in every coordinate."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.99)}
    no_preset = {"torch": "PyTorch 2.13 ships no Lion",
                 "paper": "Chen et al. (2023) tune lr and weight decay per task"}
    state_names = ("m",)

    def __init__(self, params, lr=None, beta1=None, beta2=None, preset=None,
                 nonfinite="raise", learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair("Lion", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, **decay)

    def validate(self, lr, beta1, beta2, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2)

    def reference_update(self, w, g, state, h):
        lion_reference(w, g, state["m"], h["lr"], h["beta1"], h["beta2"])

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        _lion_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1), f(h["lr"]),
                     f(h["beta1"]), f(1 - h["beta1"]), f(h["beta2"]), f(1 - h["beta2"]))
