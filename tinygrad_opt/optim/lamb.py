"""LAMB (You et al. 2019, "Large batch optimization for deep learning: training BERT in
76 minutes"), in Keras' form: Adam's step for each parameter tensor, rescaled by the
trust ratio ||w|| / ||update|| of that tensor, so that every layer moves by the same
fraction of its own size whatever the scale of its gradients:

    m ← m + (1 - beta1)·(g - m)
    v ← v + (1 - beta2)·(g² - v)
    update = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
    ratio = ||w|| / ||update||      (1 where either norm is 0; norms over the tensor)
    w ← w - ratio·lr·update

This is Keras 3.15's `keras.optimizers.Lamb` line for line (tests/test_conventions.py
follows its trajectories to 1e-12 in float64); its weight decay is Keras' decoupled
w ← w - lr·weight_decay·w before the step, as for every Keras rule (weight_decay.py),
so the norm ||w|| is taken after it. PyTorch 2.13 ships no LAMB, hence no "torch"
preset.

The paper's Algorithm 2 puts the weight decay inside the update instead, so that it is
rescaled with it (the formula option `decay_in_ratio=True`, preset "paper"):

    update = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps) + weight_decay·w
    w ← w - (||w|| / ||update||)·lr·update

with the paper's BERT settings (beta1 0.9, beta2 0.999, eps 1e-6, weight_decay 0.01;
lr, which the paper scales with the batch size, Keras' 0.001) and its scaling function
φ the identity. No library ships that form to compare with: tests/test_optim_rules.py
checks it against a transcription of the algorithm, element by element in plain Python.

The kernel computes m, v and the update elementwise in one parallel pass, the two norms
as the reference does (numpy's sums, so both paths see the same ratio), then the step
in a second pass.

State: m, v, zeros; flushed to 0 where they underflow (underflow.py).
Defaults: Keras' (lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7).
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import pair
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def trust_ratio(w, update):
    """||w|| / ||update||, or 1 where either is 0 (numpy's sums, for both paths)."""
    w_norm, u_norm = np.sqrt(np.sum(w * w)), np.sqrt(np.sum(update * update))
    return w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0


def lamb_reference(w, g, m, v, t, lr, beta1, beta2, eps, decay_in_ratio=0.0):
    """The rule in numpy, one line per formula line (in place); decay_in_ratio: the
    paper's weight decay, inside the update (0: Keras' form)."""
    m += (g - m) * (1 - beta1)
    v += (g * g - v) * (1 - beta2)
    flush(m)                                       # underflow.py: subnormals to 0
    flush(v)
    update = (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    if decay_in_ratio:
        update += decay_in_ratio * w                # the paper's form
    ratio = trust_ratio(w, update)
    w -= ratio * lr * update


def _moments_loops(g, m, v, update, one_minus_beta1, one_minus_beta2, bias_correction1,
                   bias_correction2, eps, tiny, w, decay):
    for i in prange(g.size):
        m[i] = flushed(m[i] + (g[i] - m[i]) * one_minus_beta1, tiny)
        v[i] = flushed(v[i] + (g[i] * g[i] - v[i]) * one_minus_beta2, tiny)
        u = (m[i] / bias_correction1) / (np.sqrt(v[i] / bias_correction2) + eps)
        if decay != 0:
            u += decay * w[i]
        update[i] = u


def _step_loops(w, update, step):
    for i in prange(w.size):
        w[i] -= step * update[i]


_moments_kernel = serial_or_parallel(_moments_loops)
_step_kernel = serial_or_parallel(_step_loops)


class Lamb(Optimizer):
    """LAMB: Adam's step scaled, tensor by tensor, by ||w|| / ||step||."""

    presets = {"keras": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7,
                             decay_in_ratio=False),
               "paper": dict(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-6,
                             decay_in_ratio=True, weight_decay=0.01)}
    no_preset = {"torch": "PyTorch 2.13 ships no LAMB"}
    added_since = ("decay_in_ratio",)
    state_names = ("m", "v")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None,
                 decay_in_ratio=None, preset=None, nonfinite="raise", learning_rate=None,
                 betas=None, **decay):
        beta1, beta2 = pair("Lamb", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, decay_in_ratio=decay_in_ratio, **decay)

    def validate(self, lr, beta1, beta2, eps, decay_in_ratio, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)

    def weight_decay_of(self, w, h):
        """In the paper's form the decay is part of the update (inside the ratio)."""
        return 0.0 if h["decay_in_ratio"] else h["weight_decay"]

    def _in_ratio(self, h):
        return h["weight_decay"] if h["decay_in_ratio"] else 0.0

    def reference_update(self, w, g, state, h):
        lamb_reference(w, g, state["m"], state["v"], self.t, h["lr"], h["beta1"],
                       h["beta2"], h["eps"], self._in_ratio(h))

    def kernel_update(self, w, g, state, h):
        f, t = w.dtype.type, self.t
        update = np.empty_like(w)
        _moments_kernel(g.reshape(-1), state["m"].reshape(-1), state["v"].reshape(-1),
                        update.reshape(-1), f(1 - h["beta1"]), f(1 - h["beta2"]),
                        f(1 - h["beta1"] ** t), f(1 - h["beta2"] ** t), f(h["eps"]),
                        threshold(w.dtype), w.reshape(-1), f(self._in_ratio(h)))
        _step_kernel(w.reshape(-1), update.reshape(-1), f(trust_ratio(w, update) * h["lr"]))
