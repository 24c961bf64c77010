"""Rprop (Riedmiller & Braun 1993, "A direct adaptive method for faster backpropagation
learning: the RPROP algorithm"), in PyTorch's form.

The article, introducing RMSprop as its descendant (it spells it RPPROP): "RPPROP uses
the gradient sign, adapting the step size individually for each weight. In this
algorithm, the two gradients are first compared for signs. If they have the same sign,
we're going in the right direction, increasing the step size by a small fraction. If
they have opposite signs, we must decrease the step size. Then we limit the step size
and can now go for the weight update." In formulas, each weight keeps a step size Δ of
its own; the sign of the gradient alone sets the direction, and the sign's history
sets Δ:

    s = sign(g · g_prev)
    factor = etaplus where s > 0,  etaminus where s < 0,  1 where s = 0
    Δ ← clip(Δ · factor, step_size_min, step_size_max)
    g ← 0 where factor = etaminus            (the sign flipped: no step, and no memory
                                              of this gradient next time)
    w ← w - sign(g) · Δ
    g_prev ← g

Δ starts at lr for every weight (set once, at the first step: a later change of lr, a
schedule's included, does not reach it). This is PyTorch 2.13's `torch.optim.Rprop`
line for line (its "Rprop-" variant: no weight backtracking after a sign change), which
`tests/test_conventions.py` follows to 1e-12 in float64 (PyTorch zeroes g where the
factor equals etaminus; with 0 < etaminus < 1 < etaplus, which both refuse otherwise,
that is where the sign flipped). Keras 3.15 ships no Rprop, hence no "keras" preset;
the default is "torch". Rprop was made for full-batch learning: on minibatches the signs
of successive gradients are noisy, which is what RMSprop's running average repairs (the
article's point).

State: prev (the last gradient kept), zeros; step_size (Δ), lr at the first step.
Defaults (preset "torch", PyTorch's): lr=0.01, etaminus=0.5, etaplus=1.2,
step_size_min=1e-6, step_size_max=50; `etas=(etaminus, etaplus)` and
`step_sizes=(min, max)` as PyTorch names them. Preset "paper": Riedmiller & Braun's
(Δ0 = lr = 0.1, the same etas and bounds).
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .optimizer import Optimizer


def rprop_reference(w, g, prev, step_size, etaminus, etaplus, step_size_min, step_size_max):
    """The rule in numpy, one line per formula line (in place)."""
    s = np.sign(g * prev)
    factor = np.where(s > 0, etaplus, np.where(s < 0, etaminus, np.where(s == 0, 1.0, s)))
    step_size[...] = np.clip(step_size * factor.astype(w.dtype), step_size_min,
                             step_size_max)
    g = np.where(factor == etaminus, 0, g).astype(w.dtype)
    w -= np.sign(g) * step_size
    prev[...] = g


def _rprop_loops(w, g, prev, step_size, etaminus, etaplus, step_size_min, step_size_max):
    one, zero = w.dtype.type(1), w.dtype.type(0)
    for i in prange(w.size):
        p = g[i] * prev[i]
        if p > 0:
            factor = etaplus
        elif p < 0:
            factor = etaminus
        elif p == 0:
            factor = one
        else:                                   # NaN: s = sign(NaN) = NaN, as numpy's
            factor = p
        d = step_size[i] * factor
        if d == d:                              # clip, NaN passing through as np.clip's
            d = min(max(d, step_size_min), step_size_max)
        step_size[i] = d
        gi = g[i]
        if p < 0:                               # factor = etaminus: the sign flipped
            gi = zero
        w[i] -= np.sign(gi) * d
        prev[i] = gi


_rprop_kernel = serial_or_parallel(_rprop_loops)


class Rprop(Optimizer):
    """Rprop: a step size per weight, grown while the gradient's sign holds, cut when it
    flips; the step's direction is the sign of the gradient."""

    _bounds = dict(etaminus=0.5, etaplus=1.2, step_size_min=1e-6, step_size_max=50.0)
    presets = {"torch": dict(lr=0.01, **_bounds), "paper": dict(lr=0.1, **_bounds)}
    no_preset = {"keras": "Keras 3.15 ships no Rprop"}
    default_preset = "torch"

    def __init__(self, params, lr=None, etaminus=None, etaplus=None, step_size_min=None,
                 step_size_max=None, preset=None, nonfinite="raise", learning_rate=None,
                 etas=None, step_sizes=None, **decay):
        etaminus, etaplus = pair("Rprop", etas, etaminus, etaplus, "etas",
                                 ("etaminus", "etaplus"))
        step_size_min, step_size_max = pair("Rprop", step_sizes, step_size_min,
                                            step_size_max, "step_sizes",
                                            ("step_size_min", "step_size_max"))
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, etaminus=etaminus,
                         etaplus=etaplus, step_size_min=step_size_min,
                         step_size_max=step_size_max, **decay)

    def init_state(self, w, h):
        return {"prev": np.zeros_like(w), "step_size": np.full_like(w, h["lr"])}

    def validate(self, lr, etaminus, etaplus, step_size_min, step_size_max, **decay):
        super().validate(lr=lr, **decay)
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Rprop: expected 0 < etaminus < 1 < etaplus, got etaminus "
                             f"{etaminus}, etaplus {etaplus}")
        if not 0.0 <= step_size_min <= step_size_max:
            raise ValueError(f"Rprop: expected 0 <= step_size_min <= step_size_max, got "
                             f"{step_size_min} and {step_size_max}")

    def reference_update(self, w, g, state, h):
        rprop_reference(w, g, state["prev"], state["step_size"], h["etaminus"],
                        h["etaplus"], h["step_size_min"], h["step_size_max"])

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        _rprop_kernel(w.reshape(-1), g.reshape(-1), state["prev"].reshape(-1),
                      state["step_size"].reshape(-1), f(h["etaminus"]), f(h["etaplus"]),
                      f(h["step_size_min"]), f(h["step_size_max"]))
