"""Prodigy (Mishchenko & Defazio 2023, "Prodigy: an expeditiously adaptive
parameter-free learner"): Adam whose step size d is estimated as it trains, as a lower
bound on the distance from the starting point w0 to a solution, so that lr stays 1:

    dlr = d·lr·(sqrt(1 - beta2^t)/(1 - beta1^t) if use_bias_correction else 1)
    over every parameter (one d for the whole model):
        numerator ← beta3·numerator + (d/d0)·dlr·⟨g, w0 - w⟩      (summed over tensors)
        m ← beta1·m + d·(1 - beta1)·g
        v ← beta2·v + d²·(1 - beta2)·g²
        s ← beta3·s + (d/d0)·dlr·g        (d/d0)·d with safeguard_warmup
    d_hat = d_coef·numerator / Σ|s|
    d ← max(d, d_hat) while d is still d0;  d_max ← max(d_max, d_hat)
    d ← min(d_max, growth_rate·d)
    w ← w - dlr·m / (sqrt(v) + d·eps)      (d the new estimate, dlr the step's)

beta3 = None means sqrt(beta2). Every sum runs over all parameters, so d is one number
for the model: the update of one tensor depends on all the others' gradients (the step
makes two passes: the statistics, then the update). A step where every s is 0 (Σ|s| =
0) changes no weight and is not counted, as in the package. Weight decay: decoupled by
default, as in the package (`decouple=True`, a name also accepted here): w ← w -
weight_decay·dlr·w in the second pass; `decoupled_weight_decay=False` is coupled
(g ← g + weight_decay·w, in both passes). Parameter groups may differ in weight decay and eps, and in lr only by setting it
to 0 (the package's rule: one lr for the d estimate); the package's `slice_p` (the
statistics on every p-th entry) is not implemented (its default, 1, is this rule).

This is the authors' package `prodigyopt` 1.1.2 (preset "paper"; neither PyTorch 2.13
nor Keras 3.15 ships Prodigy), followed to 1e-12 in float64 (tests/test_conventions.py;
the inner products differ from torch.dot's in the last bits).

State: w0 (the weights at the first step), s, m, v; s, m and v flushed where they
underflow (underflow.py). The estimate (d, d_max, the numerator) is the optimizer's.
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel, use_reference
from .hyper import pair
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold

BLOCK = 4096        # the kernels' partial sums: one per block of this many values


def prodigy_statistics_reference(w, g, state, d, d0, dlr, beta1, beta2, beta3, safeguard):
    """The first pass for one tensor, in numpy (in place): returns its terms of the
    numerator and of Σ|s|."""
    m, v, s = state["m"], state["v"], state["s"]
    numerator = (d / d0) * dlr * float(np.dot(g.reshape(-1), (state["w0"] - w).reshape(-1)))
    m *= beta1
    m += (d * (1 - beta1)) * g
    v *= beta2
    v += (d * d * (1 - beta2)) * g * g
    flush(m)                                       # underflow.py: subnormals to 0
    flush(v)
    s *= beta3
    s += ((d / d0) * d if safeguard else (d / d0) * dlr) * g
    flush(s)
    return numerator, float(np.sum(np.abs(s)))


def prodigy_update_reference(w, state, d, dlr, eps, decoupled_decay):
    """The second pass for one tensor, in numpy (in place)."""
    denom = np.sqrt(state["v"]) + d * eps
    if decoupled_decay:
        w += (-decoupled_decay * dlr) * w
    w += (-dlr) * (state["m"] / denom)


def _moments_loops(g, m, v, s, beta1, m_scale, beta2, v_scale, beta3, s_scale, tiny):
    for i in prange(g.size):
        gi = g[i]
        m[i] = flushed(m[i] * beta1 + m_scale * gi, tiny)
        v[i] = flushed(v[i] * beta2 + v_scale * gi * gi, tiny)
        s[i] = flushed(s[i] * beta3 + s_scale * gi, tiny)


def _sums_loops(w, g, w0, s, dots, abs_sums):
    """Per block of 4,096 values: ⟨g, w0 - w⟩ and Σ|s| (dots and abs_sums start at 0:
    the sums are in the arrays' dtype, as numpy's)."""
    for k in prange(dots.size):
        dot = dots[k]
        total = abs_sums[k]
        for i in range(k * 4096, min((k + 1) * 4096, w.size)):
            dot += g[i] * (w0[i] - w[i])
            total += abs(s[i])
        dots[k] = dot
        abs_sums[k] = total


def _update_loops(w, m, v, step, d_eps, decay_factor):
    for i in prange(w.size):
        wi = w[i]
        if decay_factor != 0:
            wi = wi + decay_factor * wi
        w[i] = wi + step * (m[i] / (np.sqrt(v[i]) + d_eps))


_moments_kernel = serial_or_parallel(_moments_loops)
# the partial sums may be reordered (jit.py's policy)
_sums_kernel = serial_or_parallel(_sums_loops, reassociate=True)
_update_kernel = serial_or_parallel(_update_loops)


class Prodigy(Optimizer):
    """Prodigy: Adam with a step size d estimated from ⟨g, w0 - w⟩ as it trains."""

    presets = {"paper": dict(lr=1.0, beta1=0.9, beta2=0.999, beta3=None, eps=1e-8,
                             d0=1e-6, d_coef=1.0, growth_rate=math.inf,
                             use_bias_correction=False, safeguard_warmup=False,
                             decoupled_weight_decay=True)}
    no_preset = {"keras": "Keras 3.15 ships no Prodigy; preset 'paper' is the authors' "
                          "package",
                 "torch": "PyTorch 2.13 ships no Prodigy; preset 'paper' is the authors' "
                          "package"}
    default_preset = "paper"
    state_names = ("w0", "s", "m", "v")
    GLOBAL = ("beta1", "beta2", "beta3", "d0", "d_coef", "growth_rate",
              "use_bias_correction", "safeguard_warmup", "decoupled_weight_decay")

    def __init__(self, params, lr=None, beta1=None, beta2=None, beta3=None, eps=None,
                 d0=None, d_coef=None, growth_rate=None, use_bias_correction=None,
                 safeguard_warmup=None, preset=None, nonfinite="raise", learning_rate=None,
                 betas=None, decouple=None, **decay):
        beta1, beta2 = pair("Prodigy", betas, beta1, beta2)
        if decouple is not None:                  # the package's name
            decay["decoupled_weight_decay"] = decouple
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, beta3=beta3, eps=eps, d0=d0, d_coef=d_coef,
                         growth_rate=growth_rate, use_bias_correction=use_bias_correction,
                         safeguard_warmup=safeguard_warmup, **decay)
        d0 = self.param_groups[0]["d0"]
        self.estimate = dict(d=d0, d_max=d0, numerator=0.0)

    def validate(self, lr, beta1, beta2, beta3, eps, d0, d_coef, growth_rate,
                 use_bias_correction, safeguard_warmup, **decay):
        super().validate(lr=lr, **decay)
        self._check_moments(beta1, beta2, eps)
        if beta3 is not None and (isinstance(beta3, bool) or not isinstance(
                beta3, (int, float)) or not 0 <= beta3 < 1):
            raise ValueError(f"Prodigy: beta3 must be in [0, 1) or None (sqrt(beta2)), "
                             f"got {beta3!r}")
        self._check_positive("d0", d0)
        self._check_positive("d_coef", d_coef)
        if not growth_rate >= 1:
            raise ValueError(f"Prodigy: growth_rate must be >= 1 (inf: unbounded), got "
                             f"{growth_rate}")

    def init_state(self, w, h):
        return {"w0": w.copy(), "s": np.zeros_like(w), "m": np.zeros_like(w),
                "v": np.zeros_like(w)}

    def step(self):
        """One step: the statistics of every parameter, the new d, then every update."""
        hypers = self._group_hyper()
        first = hypers[0]
        lr = max(h["lr"] for h in hypers)
        for i, h in enumerate(hypers):
            if h["lr"] not in (lr, 0.0) or any(h[k] != first[k] for k in self.GLOBAL):
                raise ValueError(f"Prodigy: param_groups[{i}] differs from group 0 in lr "
                                 f"(other than 0) or in one of {', '.join(self.GLOBAL)}; "
                                 f"d is one estimate for all groups")
        grads = [self.gradient(p, hypers[gi]) for p, gi in zip(self.params, self._group_of)]
        self._check_gradients(grads)
        if not self._all_finite(grads):
            return
        if self.t == 0:                    # w0: the weights where training starts
            for p, state in zip(self.params, self.state):
                state["w0"][...] = p.data
        reference = use_reference()
        beta1, beta2 = first["beta1"], first["beta2"]
        beta3 = math.sqrt(beta2) if first["beta3"] is None else first["beta3"]
        d, d0 = self.estimate["d"], first["d0"]
        k = self.t + 1
        correction = (math.sqrt(1 - beta2 ** k) / (1 - beta1 ** k)
                      if first["use_bias_correction"] else 1.0)
        dlr = d * lr * correction
        numerator, denominator = self.estimate["numerator"] * beta3, 0.0
        coupled = not first["decoupled_weight_decay"]
        active = []
        for p, g, state, gi in zip(self.params, grads, self.state, self._group_of):
            h = hypers[gi]
            if g is None:
                continue
            if coupled and h["weight_decay"]:
                g = g + h["weight_decay"] * p.data
            active.append((p.data, state, h))
            if h["lr"] > 0:
                terms = self._statistics(p.data, g, state, d, d0, dlr, beta1, beta2, beta3,
                                         first["safeguard_warmup"], reference)
                numerator += terms[0]
                denominator += terms[1]
        if denominator == 0:               # the package returns here: no step taken
            return
        if lr > 0:
            d_hat = first["d_coef"] * numerator / denominator
            if d == d0:
                d = max(d, d_hat)
            d_max = max(self.estimate["d_max"], d_hat)
            d = min(d_max, d * first["growth_rate"])
            self.estimate = dict(d=d, d_max=d_max, numerator=numerator)
        self.t += 1
        for w, state, h in active:
            decay = 0.0 if coupled else h["weight_decay"]
            if reference:
                prodigy_update_reference(w, state, d, dlr, h["eps"], decay)
            else:
                f = w.dtype.type
                _update_kernel(w.reshape(-1), state["m"].reshape(-1), state["v"].reshape(-1),
                               f(-dlr), f(d * h["eps"]), f(-decay * dlr))

    @staticmethod
    def _statistics(w, g, state, d, d0, dlr, beta1, beta2, beta3, safeguard, reference):
        if reference:
            return prodigy_statistics_reference(w, g, state, d, d0, dlr, beta1, beta2,
                                                beta3, safeguard)
        f, blocks = w.dtype.type, (w.size + BLOCK - 1) // BLOCK
        dots, abs_sums = np.zeros(blocks, w.dtype), np.zeros(blocks, w.dtype)
        g, s = np.ascontiguousarray(g).reshape(-1), state["s"].reshape(-1)
        s_scale = (d / d0) * d if safeguard else (d / d0) * dlr
        _moments_kernel(g, state["m"].reshape(-1), state["v"].reshape(-1), s, f(beta1),
                        f(d * (1 - beta1)), f(beta2), f(d * d * (1 - beta2)), f(beta3),
                        f(s_scale), threshold(w.dtype))
        _sums_kernel(w.reshape(-1), g, state["w0"].reshape(-1), s, dots, abs_sums)
        return (d / d0) * dlr * float(np.sum(dots)), float(np.sum(abs_sums))

    # --- saving -----------------------------------------------------------------------
    def state_dict(self):
        return dict(super().state_dict(), estimate=dict(self.estimate))

    def load_state_dict(self, state_dict):
        estimate = state_dict.get("estimate")
        if not isinstance(estimate, dict) or set(estimate) != {"d", "d_max", "numerator"} \
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                           and math.isfinite(x) for x in estimate.values()) \
                or not estimate["d"] > 0:
            raise ValueError("Prodigy.load_state_dict: no valid estimate (d > 0, d_max and "
                             "the numerator, finite numbers)")
        super().load_state_dict(state_dict)
        self.estimate = {k: float(v) for k, v in estimate.items()}
