"""Stochastic gradient descent, with optional (Nesterov) momentum, in Keras' form.

The article's formulas (gradient descent and SGD are the same rule, fed the whole data
set or a sample):

    x_new = x - α f'(x)                 w := w - η ∇Q_i(w)

Our update, with g the gradient of the loss for the current batch:

    without momentum:   w ← w - lr·g
    with momentum:      v ← momentum·v - lr·g           (lr inside the velocity, Keras)
                        w ← w + v
    Nesterov:           w ← w + momentum·v - lr·g       (with the new v)

The article gives no formula for momentum; it only says "adding a fraction of the
previous update to the current update". The form above is Keras' (the article's
framework; the formula option `velocity_holds_lr=True`). PyTorch keeps lr outside the
velocity (`velocity_holds_lr=False`, which preset "torch" sets):

    with momentum:      v ← momentum·v + g
                        w ← w - lr·v
    Nesterov:           w ← w - lr·(g + momentum·v)

For a constant lr the two are the same trajectory (Keras' v is -lr times PyTorch's).
When lr changes they part: Keras' velocity remembers the old step sizes, PyTorch's only
the gradients, so a schedule that cuts lr by 10 slows PyTorch's next step tenfold at once
and Keras' only as the old velocity decays
(`tests/test_optim_rules.py::test_momentum_conventions_part_when_lr_changes`).

State: v (the velocity), zeros, only when momentum > 0; flushed to 0 where it underflows
(underflow.py).
One sample's gradient of a dense layer's weight arrives as an outer product, in factored
form (`autograd.Outer`); plain SGD takes it so (`SGD.gradient`) and applies it without
building the array (`_sgd_outer_loops`: the same numbers, a fraction of the memory
traffic).
Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2) under "torch";
for plain SGD the two are the same step.
Defaults: Keras' (lr=0.01, momentum=0.0, nesterov=False); PyTorch's differ only in lr
(0.001); the papers give none.
"""
import numpy as np

from ..autograd import Outer
from ..jit import jit, prange, serial_or_parallel, use_reference
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def sgd_reference(w, g, v, lr, momentum, nesterov, velocity_holds_lr=True):
    """The rule in numpy, one line per formula line (in place)."""
    if momentum == 0.0:
        w -= lr * g
    elif not velocity_holds_lr:                    # PyTorch's
        v[...] = momentum * v + g
        flush(v)                                   # underflow.py: subnormals to 0
        if nesterov:
            w -= lr * (g + momentum * v)
        else:
            w -= lr * v
    else:
        v[...] = momentum * v - lr * g
        flush(v)
        if nesterov:
            w += momentum * v - lr * g
        else:
            w += v


def _sgd_loops(w, g, lr):
    for i in prange(w.size):
        w[i] -= lr * g[i]


def _sgd_momentum_loops(w, g, v, lr, momentum, nesterov, velocity_holds_lr, tiny):
    for i in prange(w.size):
        if not velocity_holds_lr:
            v[i] = flushed(momentum * v[i] + g[i], tiny)
            if nesterov:
                w[i] -= lr * (g[i] + momentum * v[i])
            else:
                w[i] -= lr * v[i]
        else:
            v[i] = flushed(momentum * v[i] - lr * g[i], tiny)
            if nesterov:
                w[i] += momentum * v[i] - lr * g[i]
            else:
                w[i] += v[i]


def _sgd_outer_loops(w, col, row, lr):
    """w -= lr * g for g = col[:, None] * row (one sample's dense-layer gradient, kept as its
    factors: autograd.Outer), without writing g: the same products, rounded the same way.
    Row i of g is zero where col[i] is (relu and dropout zero most of a layer's inputs):
    it leaves w's row as it is, and is skipped."""
    for i in range(col.size):
        if col[i] != 0:
            for j in range(row.size):
                w[i, j] -= lr * (col[i] * row[j])


_sgd_kernel = serial_or_parallel(_sgd_loops)
_sgd_momentum_kernel = serial_or_parallel(_sgd_momentum_loops)
_sgd_outer_kernel = jit(_sgd_outer_loops)   # serial: it writes only the rows of the
                                            # inputs relu and dropout left (make bench's
                                            # one-sample step)


class SGD(Optimizer):
    """SGD, momentum and Nesterov momentum (Keras' form, see the module docstring)."""

    presets = {"keras": dict(lr=0.01, momentum=0.0, nesterov=False,
                             velocity_holds_lr=True),
               "torch": dict(lr=0.001, momentum=0.0, nesterov=False,
                             velocity_holds_lr=False)}
    no_preset = {"paper": "the papers give no step size or momentum"}
    added_since = ("velocity_holds_lr",)

    def __init__(self, params, lr=None, momentum=None, nesterov=None,
                 velocity_holds_lr=None, preset=None, nonfinite="raise",
                 learning_rate=None, **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, momentum=momentum,
                         nesterov=nesterov, velocity_holds_lr=velocity_holds_lr, **decay)

    def init_state(self, w, h):
        return {"v": np.zeros_like(w)} if h["momentum"] > 0 else {}

    def validate(self, lr, momentum, nesterov, velocity_holds_lr, **decay):
        super().validate(lr=lr, **decay)
        self._check_range("momentum", momentum)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum 0.0")

    def _velocity(self, w, state, h):
        """The velocity, made on first use when a schedule turned momentum on (OneCycleLR
        cycles it)."""
        if h["momentum"] > 0 and "v" not in state:
            state["v"] = np.zeros_like(w)
        return state.get("v")

    def reference_update(self, w, g, state, h):
        self._velocity(w, state, h)
        sgd_reference(w, g, state.get("v"), h["lr"], h["momentum"], h["nesterov"],
                      h["velocity_holds_lr"])

    def gradient(self, p, h):
        """One sample's dense-layer weight gradient stays factored (an `Outer`) where
        plain SGD's kernel applies it; anywhere else (momentum, weight decay, the
        reference) it is the array."""
        g = p.stored_grad
        if isinstance(g, Outer) and (h["momentum"] > 0 or h["weight_decay"]
                                     or use_reference()):
            return p.grad
        return g

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        if isinstance(g, Outer):
            _sgd_outer_kernel(w, g.col, g.row, f(h["lr"]))
        elif h["momentum"] == 0.0:
            _sgd_kernel(w.reshape(-1), g.reshape(-1), f(h["lr"]))
        else:
            _sgd_momentum_kernel(w.reshape(-1), g.reshape(-1),
                                 self._velocity(w, state, h).reshape(-1),
                                 f(h["lr"]), f(h["momentum"]), h["nesterov"],
                                 h["velocity_holds_lr"], threshold(w.dtype))
