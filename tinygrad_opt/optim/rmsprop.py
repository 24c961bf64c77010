"""RMSprop (Hinton, Coursera lecture 6e, 2012), in Keras' form, with the momentum and
the centred form both libraries ship.

The article's formulas:

    v(w, t) := γ v(w, t-1) + (1 - γ) (∇Q_i(w))²        w := w - η / sqrt(v(w, t)) ∇Q_i(w)

have no epsilon: the first step divides by zero wherever a gradient is zero. Keras (the
article's framework) adds eps inside the square root:

    v ← rho·v + (1 - rho)·g²
    w ← w - lr·g / sqrt(v + eps)

PyTorch puts eps outside, w ← w - lr·g / (sqrt(v) + eps) (the formula option
`eps_in_sqrt=False`, which preset "torch" sets), and calls rho alpha. The two differ
wherever v is small, not only for large eps: at step 1, with rho 0.9 and eps 1e-7, a
gradient of 1e-4 moves w by 0.315·lr here and by 3.15·lr in PyTorch's form, ten times as
far; a gradient of 1 by 3.162·lr in both
(`tests/test_optim_rules.py::test_the_eps_placements_the_docstrings_quote`).

The whole rule, with both options (Graves 2013 for the centred form, "Generating
sequences with recurrent neural networks", eq. 38-40):

    v ← rho·v + (1 - rho)·g²
    centered:  ḡ ← rho·ḡ + (1 - rho)·g,   s = v - ḡ²       (a running variance)
    else:      s = v
    d = sqrt(s + eps)  if eps_in_sqrt  else  sqrt(s) + eps
    momentum = 0:   w ← w - lr·g/d
    momentum > 0, velocity_holds_lr (Keras):   b ← momentum·b + lr·g/d,   w ← w - b
    momentum > 0, PyTorch:                     b ← momentum·b + g/d,      w ← w - lr·b

The two momentum forms are one trajectory while lr is constant, and part when a
schedule changes it (as SGD's do: sgd.py).

State: v, zeros; ḡ ("g_avg") when centered; b when momentum > 0; each flushed to 0
where it underflows (underflow.py).
Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2, divided by
d with the gradient) under "torch".
Defaults: Keras' (lr=0.001, rho=0.9, eps=1e-7, momentum=0, centered=False), which are
also Hinton's rho and lr; preset "torch": PyTorch's (lr=0.01, rho=0.99, eps=1e-8,
eps_in_sqrt=False, velocity_holds_lr=False).
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def rmsprop_reference(w, g, state, lr, rho, eps, momentum=0.0, centered=False,
                      eps_in_sqrt=True, velocity_holds_lr=True):
    """The rule in numpy, one line per formula line (in place); state: v, and g_avg, b
    where the options need them."""
    v = state["v"]
    v[...] = rho * v + (1 - rho) * g * g
    flush(v)                                       # underflow.py: subnormals to 0
    s = v
    if centered:
        g_avg = state["g_avg"]
        g_avg[...] = rho * g_avg + (1 - rho) * g
        flush(g_avg)
        s = v - g_avg * g_avg
    d = np.sqrt(s + eps) if eps_in_sqrt else np.sqrt(s) + eps
    if momentum == 0:
        w -= lr * g / d
    elif velocity_holds_lr:
        b = state["b"]
        b[...] = momentum * b + lr * g / d
        flush(b)
        w -= b
    else:
        b = state["b"]
        b[...] = momentum * b + g / d
        flush(b)
        w -= lr * b


def _rmsprop_loops(w, g, v, lr, rho, one_minus_rho, eps, tiny):
    """Keras' plain form (the article's)."""
    for i in prange(w.size):
        v[i] = flushed(rho * v[i] + one_minus_rho * g[i] * g[i], tiny)
        w[i] -= lr * g[i] / np.sqrt(v[i] + eps)


def _rmsprop_general_loops(w, g, v, g_avg, b, lr, rho, one_minus_rho, eps, momentum,
                           centered, eps_in_sqrt, velocity_holds_lr, tiny):
    """Every option; g_avg and b are read only where centered / momentum > 0."""
    for i in prange(w.size):
        v[i] = flushed(rho * v[i] + one_minus_rho * g[i] * g[i], tiny)
        s = v[i]
        if centered:
            g_avg[i] = flushed(rho * g_avg[i] + one_minus_rho * g[i], tiny)
            s = v[i] - g_avg[i] * g_avg[i]
        if eps_in_sqrt:
            d = np.sqrt(s + eps)
        else:
            d = np.sqrt(s) + eps
        if momentum == 0:
            w[i] -= lr * g[i] / d
        elif velocity_holds_lr:
            b[i] = flushed(momentum * b[i] + lr * g[i] / d, tiny)
            w[i] -= b[i]
        else:
            b[i] = flushed(momentum * b[i] + g[i] / d, tiny)
            w[i] -= lr * b[i]


_rmsprop_kernel = serial_or_parallel(_rmsprop_loops)
_rmsprop_general_kernel = serial_or_parallel(_rmsprop_general_loops)


class RMSprop(Optimizer):
    """RMSprop: steps divided by a running root mean square of the gradients."""

    _options = dict(momentum=0.0, centered=False)
    presets = {"keras": dict(lr=0.001, rho=0.9, eps=1e-7, **_options, eps_in_sqrt=True,
                             velocity_holds_lr=True),
               "torch": dict(lr=0.01, rho=0.99, eps=1e-8, **_options, eps_in_sqrt=False,
                             velocity_holds_lr=False)}
    no_preset = {"paper": "Hinton's lecture gives Keras' lr and rho, and no eps"}
    added_since = ("momentum", "centered", "eps_in_sqrt", "velocity_holds_lr")

    def __init__(self, params, lr=None, rho=None, eps=None, momentum=None, centered=None,
                 eps_in_sqrt=None, velocity_holds_lr=None, preset=None, nonfinite="raise",
                 learning_rate=None, alpha=None, **decay):
        if alpha is not None:               # PyTorch's name for rho
            if rho is not None and rho != alpha:
                raise ValueError(f"RMSprop: alpha={alpha} and rho={rho} disagree; give one")
            rho = alpha
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, rho=rho, eps=eps,
                         momentum=momentum, centered=centered, eps_in_sqrt=eps_in_sqrt,
                         velocity_holds_lr=velocity_holds_lr, **decay)

    @staticmethod
    def _names(h):
        return ["v"] + ["g_avg"] * h["centered"] + ["b"] * (h["momentum"] > 0)

    def init_state(self, w, h):
        return {k: np.zeros_like(w) for k in self._names(h)}

    def validate(self, lr, rho, eps, momentum, centered, eps_in_sqrt, velocity_holds_lr,
                 **decay):
        super().validate(lr=lr, **decay)
        self._check_range("rho", rho)
        self._check_positive("eps", eps)
        self._check_range("momentum", momentum)

    def _state(self, w, state, h):
        """The state the options need, made on first use where a schedule turned
        momentum on (OneCycleLR cycles it) or a loaded group turned centered on."""
        for k in self._names(h):
            if k not in state:
                state[k] = np.zeros_like(w)
        return state

    def reference_update(self, w, g, state, h):
        rmsprop_reference(w, g, self._state(w, state, h), h["lr"], h["rho"], h["eps"],
                          h["momentum"], h["centered"], h["eps_in_sqrt"],
                          h["velocity_holds_lr"])

    def kernel_update(self, w, g, state, h):
        f, state = w.dtype.type, self._state(w, state, h)
        plain = h["eps_in_sqrt"] and h["momentum"] == 0 and not h["centered"]
        if plain:                           # the article's path
            _rmsprop_kernel(w.reshape(-1), g.reshape(-1), state["v"].reshape(-1),
                            f(h["lr"]), f(h["rho"]), f(1 - h["rho"]), f(h["eps"]),
                            threshold(w.dtype))
            return
        v = state["v"].reshape(-1)
        _rmsprop_general_kernel(w.reshape(-1), g.reshape(-1), v,
                                state.get("g_avg", state["v"]).reshape(-1),
                                state.get("b", state["v"]).reshape(-1), f(h["lr"]),
                                f(h["rho"]), f(1 - h["rho"]), f(h["eps"]),
                                f(h["momentum"]), h["centered"], h["eps_in_sqrt"],
                                h["velocity_holds_lr"], threshold(w.dtype))
