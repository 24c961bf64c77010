"""RMSprop (Hinton, Coursera lecture 6e, 2012), in Keras' form.

The article's formulas:

    v(w, t) := γ v(w, t-1) + (1 - γ) (∇Q_i(w))²        w := w - η / sqrt(v(w, t)) ∇Q_i(w)

have no epsilon: the first step divides by zero wherever a gradient is zero. Keras (the
article's framework) adds eps inside the square root:

    v ← rho·v + (1 - rho)·g²
    w ← w - lr·g / sqrt(v + eps)

(PyTorch, preset "torch", puts eps outside: w ← w - lr·g / (sqrt(v) + eps), and calls
rho alpha. The two differ wherever v is small, not only
for large eps: at step 1, with rho 0.9 and eps 1e-7, a gradient of 1e-4 moves w by
0.315·lr here and by 3.15·lr in PyTorch's form, ten times as far; a gradient of 1 by
3.162·lr in both. `tests/test_optim.py::test_the_eps_placements_the_docstrings_quote`.)

State: v (the running mean of squared gradients), zeros.
Weight decay (optimizer.py): decoupled under preset "keras", coupled (L2, divided by
sqrt(v) with the gradient) under "torch".
Defaults: Keras' (lr=0.001, rho=0.9, eps=1e-7), which are also Hinton's rho and lr;
preset "torch": PyTorch's (lr=0.01, rho=0.99, eps=1e-8).
"""
import numpy as np

from .._jit import prange, serial_or_parallel
from .optimizer import Optimizer


def rmsprop_reference(w, g, v, lr, rho, eps, torch_form=False):
    """The rule in numpy, one line per formula line (in place)."""
    v[...] = rho * v + (1 - rho) * g * g
    if torch_form:
        w -= lr * g / (np.sqrt(v) + eps)
    else:
        w -= lr * g / np.sqrt(v + eps)


def _rmsprop_loops(w, g, v, lr, rho, one_minus_rho, eps, torch_form):
    for i in prange(w.size):
        v[i] = rho * v[i] + one_minus_rho * g[i] * g[i]
        if torch_form:
            w[i] -= lr * g[i] / (np.sqrt(v[i]) + eps)
        else:
            w[i] -= lr * g[i] / np.sqrt(v[i] + eps)


_rmsprop_kernel = serial_or_parallel(_rmsprop_loops)


class RMSprop(Optimizer):
    """RMSprop: steps divided by a running root mean square of the gradients."""

    presets = {"keras": dict(lr=0.001, rho=0.9, eps=1e-7),
               "torch": dict(lr=0.01, rho=0.99, eps=1e-8)}
    no_preset = {"paper": "Hinton's lecture gives Keras' lr and rho, and no eps"}
    state_names = ("v",)

    def __init__(self, params, lr=None, rho=None, eps=None, preset=None,
                 nonfinite="raise", learning_rate=None, **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, rho=rho, eps=eps,
                         **decay)

    def validate(self, lr, rho, eps, **decay):
        super().validate(lr=lr, **decay)
        self._check_range("rho", rho)
        self._check_positive("eps", eps)

    def reference_update(self, w, g, state, h):
        rmsprop_reference(w, g, state["v"], h["lr"], h["rho"], h["eps"],
                          self.preset == "torch")

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        _rmsprop_kernel(w.reshape(-1), g.reshape(-1), state["v"].reshape(-1), f(h["lr"]),
                        f(h["rho"]), f(1 - h["rho"]), f(h["eps"]), self.preset == "torch")
