"""NAdam (Dozat 2016, "Incorporating Nesterov momentum into Adam").

Adam whose update looks one step ahead, as Nesterov momentum does: the next step's
momentum coefficient is applied to m, the current one to the fresh gradient. The
momentum coefficient rises from beta1/2 towards beta1 on a schedule:

    mu_t = beta1·(1 - 0.5·0.96^(t·momentum_decay))       P_t = mu_1·mu_2·…·mu_t
    m ← beta1·m + (1 - beta1)·g
    v ← beta2·v + (1 - beta2)·g²
    d = sqrt(v / (1 - beta2^t)) + eps
    w ← w - lr·(1 - mu_t)/(1 - P_t)·g/d - lr·mu_{t+1}/(1 - P_t·mu_{t+1})·m/d

PyTorch (preset "torch") and Keras share this formula and differ in the schedule:
PyTorch's momentum_decay is 0.004 (Dozat's 0.96^(0.004·t): mu_t reaches 0.9·beta1 after
9,856 steps); Keras 3 computes 0.96^t, which is momentum_decay = 1 here (mu_t is within
1% of beta1 after 96 steps; `tests/test_conventions.py::test_nadam_schedules`). Checked against both libraries' trajectories
(tests/test_conventions.py).

Weight decay (weight_decay.py): decoupled under preset "keras", coupled (L2) under "torch"
(PyTorch's NAdam also takes decoupled_weight_decay=True).
State: m, v, zeros (flushed to 0 where they underflow: underflow.py); and P_t,
multiplied up step by step as the libraries do, saved by `state_dict` ("mu_products", as
PyTorch saves its mu_product) so that a loaded run continues with the same product
without recomputing t factors.
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, momentum_decay=1.0);
preset "torch": PyTorch's (lr=0.002, eps=1e-8, momentum_decay=0.004).
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import is_number, pair
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def nadam_reference(w, g, m, v, lr, beta1, beta2, eps, mu, mu_next, product,
                    product_next, bias_correction2):
    """The rule in numpy, one line per formula line (in place)."""
    m[...] = beta1 * m + (1 - beta1) * g
    v[...] = beta2 * v + (1 - beta2) * g * g
    flush(m)                                       # underflow.py: subnormals to 0
    flush(v)
    d = np.sqrt(v / bias_correction2) + eps
    w -= lr * (1 - mu) / (1 - product) * g / d
    w -= lr * mu_next / (1 - product_next) * m / d


def _nadam_loops(w, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps,
                 g_step, m_step, bias_correction2, tiny):
    for i in prange(w.size):
        m[i] = flushed(beta1 * m[i] + one_minus_beta1 * g[i], tiny)
        v[i] = flushed(beta2 * v[i] + one_minus_beta2 * g[i] * g[i], tiny)
        d = np.sqrt(v[i] / bias_correction2) + eps
        w[i] -= g_step * g[i] / d
        w[i] -= m_step * m[i] / d


_nadam_kernel = serial_or_parallel(_nadam_loops)


class NAdam(Optimizer):
    """NAdam: Adam with Nesterov momentum and a warming momentum schedule."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, momentum_decay=1.0),
               "torch": dict(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-8,
                             momentum_decay=0.004)}
    no_preset = {"paper": "Dozat (2016) gives no complete set of defaults"}
    state_names = ("m", "v")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None,
                 momentum_decay=None, preset=None, nonfinite="raise", learning_rate=None,
                 betas=None, **decay):
        beta1, beta2 = pair("NAdam", betas, beta1, beta2)
        self._products = {}
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, momentum_decay=momentum_decay, **decay)

    def validate(self, lr, beta1, beta2, eps, momentum_decay, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)
        self._check_positive("momentum_decay", momentum_decay)

    @staticmethod
    def mu(t, beta1, momentum_decay):
        """The momentum coefficient of step t."""
        return beta1 * (1.0 - 0.5 * (0.96 ** (t * momentum_decay)))

    def schedule(self, h):
        """(mu_t, mu_{t+1}, P_t, P_t·mu_{t+1}, 1 - beta2^t) for this step. P_t is
        multiplied up step by step, in the libraries' order, from the last product known
        (a state saved without it is refused past RECOMPUTE_LIMIT steps)."""
        t, key = self.t, (h["beta1"], h["momentum_decay"])
        last_t, product = self._products.get(key, (0, 1.0))
        if last_t > t:
            last_t, product = 0, 1.0
        for s in range(last_t + 1, t + 1):
            product *= self.mu(s, *key)
        self._products[key] = (t, product)
        mu, mu_next = self.mu(t, *key), self.mu(t + 1, *key)
        return mu, mu_next, product, product * mu_next, 1 - h["beta2"] ** t

    RECOMPUTE_LIMIT = 10 ** 6      # steps P_t may be recomputed over (about 0.3 s)

    def state_dict(self):
        return dict(super().state_dict(), mu_products=[
            [beta1, decay, t, product]
            for (beta1, decay), (t, product) in sorted(self._products.items())])

    def load_state_dict(self, state_dict):
        products, t = state_dict.get("mu_products"), state_dict.get("t", 0)
        if products is None and isinstance(t, int) and t > self.RECOMPUTE_LIMIT:
            raise ValueError(f"NAdam.load_state_dict: a state of {state_dict['t']} steps "
                             f"without its momentum product (mu_products), which would be "
                             f"recomputed one factor per step")
        loaded = {}
        for entry in products or ():
            if not (isinstance(entry, (list, tuple)) and len(entry) == 4
                    and all(is_number(v) and math.isfinite(v) for v in entry)
                    and isinstance(entry[2], int)
                    and isinstance(t, int) and 0 <= entry[2] <= t and 0 < entry[3] <= 1):
                raise ValueError(f"NAdam.load_state_dict: mu_products entry {entry!r} is not "
                                 f"[beta1, momentum_decay, step, product in (0, 1]]")
            loaded[(float(entry[0]), float(entry[1]))] = (entry[2], float(entry[3]))
        super().load_state_dict(state_dict)
        self._products = loaded

    def reference_update(self, w, g, state, h):
        nadam_reference(w, g, state["m"], state["v"], h["lr"], h["beta1"], h["beta2"],
                        h["eps"], *self.schedule(h))

    def kernel_update(self, w, g, state, h):
        f = w.dtype.type
        mu, mu_next, product, product_next, bias_correction2 = self.schedule(h)
        _nadam_kernel(w.reshape(-1), g.reshape(-1), state["m"].reshape(-1),
                      state["v"].reshape(-1), f(h["beta1"]), f(1 - h["beta1"]),
                      f(h["beta2"]), f(1 - h["beta2"]), f(h["eps"]),
                      f(h["lr"] * (1 - mu) / (1 - product)),
                      f(h["lr"] * mu_next / (1 - product_next)), f(bias_correction2),
                      threshold(w.dtype))

