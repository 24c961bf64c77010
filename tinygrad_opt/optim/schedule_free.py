"""Schedule-Free SGD and AdamW (Defazio, Yang, Mehta, Mishchenko, Khaled & Cutkosky 2024,
"The road less scheduled"): no learning-rate schedule, and no step count to choose in
advance. Three sequences: z takes plain (or Adam-normalised) gradient steps, x is a
running average of the z's, and the gradient is taken at y, between the two:

    y = (1 - beta1)·z + beta1·x          where the gradient g is taken (train mode)
    z ← z - lr_t·g
    x ← (1 - c)·x + c·z                  c = w_t / sum of w_i up to t
    w_t = t^r · (max lr so far)^weight_lr_power
    lr_t = lr·min(1, t / warmup_steps)   (the warm-up: the package's only schedule)

The model's parameters hold y while training and x for evaluation: `opt.train()` and
`opt.eval()` switch them (y = x + (1 - beta1)(z - x); x = y + (1 - 1/beta1)(z - y)), and
`step()` refuses to run in eval mode, as the authors' package does; the optimizer starts
in eval mode, so call `opt.train()` before the first step (the Trainer calls both at
the right moments: train() before each epoch, eval() around each evaluation, and leaves
the model holding x when `fit` returns). In y alone the update reads

    y ← lerp(y, z, c) + lr_t·(beta1·(1 - c) - 1)·g,   z ← z - lr_t·g

which is how the package computes it (torch.lerp's rounding), and this rule too. For
AdamWScheduleFree, g is first divided by Adam's bias-corrected root (no first moment:
the averaging plays its part):

    v ← beta2·v + (1 - beta2)·g²;   g ← g / (sqrt(v / (1 - beta2^t)) + eps)

Weight decay: SGDScheduleFree adds weight_decay·y to the gradient (coupled, at y);
AdamWScheduleFree adds it after the normalisation (`decoupled_weight_decay=True`, the
package's form; False puts it in g before v, the L2 form). Both follow the trajectories
of the authors' package `schedulefree` 1.4.1 (its single-tensor code; preset "paper":
Keras 3.15 and PyTorch 2.13 ship no Schedule-Free rule) to 1e-12 in float64,
train/eval switches included (tests/test_conventions.py).

State: z (a copy of the weights at the first step) and, for AdamW, v (flushed where it
underflows, underflow.py); per group, the sum of the averaging weights and the largest
lr so far; and the mode.
"""
import numpy as np

from ..jit import prange, serial_or_parallel
from .hyper import check_whole, pair
from .lerp import lerp, lerp_one
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold


def sgd_schedule_free_reference(y, g, z, lr, momentum, c):
    """One step in numpy, one line per formula line (in place)."""
    y[...] = lerp(y, z, c)
    y += g * (lr * (momentum * (1 - c) - 1))
    z -= g * lr


def adamw_schedule_free_reference(y, g, z, v, t, lr, beta1, beta2, eps, c, weight_decay):
    """One step in numpy, one line per formula line (in place); weight_decay is the
    package's (added to the normalised gradient at y)."""
    v *= beta2
    v += (1 - beta2) * g * g
    flush(v)                                       # underflow.py: subnormals to 0
    g = g / (np.sqrt(v / (1 - beta2 ** t)) + eps)
    if weight_decay:
        g = g + weight_decay * y
    sgd_schedule_free_reference(y, g, z, lr, beta1, c)


def _sgd_loops(y, g, z, lr, factor, c, small):
    for i in prange(y.size):
        yi = lerp_one(y[i], z[i], c, small)
        y[i] = yi + g[i] * factor
        z[i] -= g[i] * lr


def _adamw_loops(y, g, z, v, lr, factor, c, small, beta2, one_minus_beta2,
                 bias_correction2, eps, weight_decay, tiny):
    for i in prange(y.size):
        vi = flushed(v[i] * beta2 + one_minus_beta2 * g[i] * g[i], tiny)
        v[i] = vi
        gi = g[i] / (np.sqrt(vi / bias_correction2) + eps) + weight_decay * y[i]
        yi = lerp_one(y[i], z[i], c, small)
        y[i] = yi + gi * factor
        z[i] -= gi * lr


_sgd_kernel = serial_or_parallel(_sgd_loops)
_adamw_kernel = serial_or_parallel(_adamw_loops)


class _ScheduleFree(Optimizer):
    """What the two rules share: the averaging weight, the warm-up, the two modes."""

    no_preset = {"keras": "Keras 3.15 ships no Schedule-Free rule; preset 'paper' is the "
                          "authors' package",
                 "torch": "PyTorch 2.13 ships no Schedule-Free rule; preset 'paper' is the "
                          "authors' package"}
    default_preset = "paper"
    momentum_key = "beta1"

    def __init__(self, params, preset, nonfinite, learning_rate, **hyper):
        super().__init__(params, preset, nonfinite, learning_rate, **hyper)
        self.training = False
        self.averaging = [dict(weight_sum=0.0, lr_max=-1.0) for _ in self.param_groups]

    def validate(self, lr, warmup_steps, r, weight_lr_power, **rest):
        super().validate(lr=lr, **rest)
        check_whole(f"{type(self).__name__}: warmup_steps", warmup_steps, low=0)

    def add_param_group(self, group):
        super().add_param_group(group)
        if hasattr(self, "averaging"):
            self.averaging.append(dict(weight_sum=0.0, lr_max=-1.0))

    def init_state(self, w, h):
        return {"z": w.copy(), **{k: np.zeros_like(w) for k in self.state_names if k != "z"}}

    # --- the two modes ----------------------------------------------------------------
    def _move(self, weight_of):
        """Every parameter that has taken a step: p ← lerp(p, z, weight)."""
        if self.t == 0:
            return
        for p, state, gi in zip(self.params, self.state, self._group_of):
            weight = weight_of(self.param_groups[gi][self.momentum_key])
            p.data[...] = lerp(p.data, state["z"], weight)

    def train(self):
        """The parameters to y, where gradients are taken (no-op in train mode)."""
        if not self.training:
            self._move(lambda beta: 1 - beta)
            self.training = True
        return self

    def eval(self):
        """The parameters to x, the average, for evaluation and saving (no-op in eval
        mode)."""
        if self.training:
            self._move(lambda beta: 1 - 1 / beta)
            self.training = False
        return self

    # --- the step ---------------------------------------------------------------------
    def step(self):
        if not self.training:
            raise RuntimeError(f"{type(self).__name__}: step() in eval mode; call "
                               f"opt.train() before training and opt.eval() before "
                               f"evaluating (the parameters hold a different point in "
                               f"each)")
        super().step()

    def begin_step(self, hypers):
        """Each group's lr after the warm-up and its averaging weight c for this step."""
        if self.t == 1:                    # z starts where the weights are now
            for p, state in zip(self.params, self.state):
                state["z"][...] = p.data
        k, out = self.t - 1, []
        for h, avg in zip(hypers, self.averaging):
            lr = h["lr"] * ((k + 1) / h["warmup_steps"] if k < h["warmup_steps"] else 1.0)
            avg["lr_max"] = max(lr, avg["lr_max"])
            weight = (k + 1) ** h["r"] * avg["lr_max"] ** h["weight_lr_power"]
            avg["weight_sum"] += weight
            c = weight / avg["weight_sum"] if avg["weight_sum"] else 0.0
            out.append(dict(h, scheduled_lr=lr, c=c))
        return out

    # --- saving -----------------------------------------------------------------------
    def state_dict(self):
        return dict(super().state_dict(), training=self.training,
                    averaging=[dict(a) for a in self.averaging])

    def load_state_dict(self, state_dict):
        name = type(self).__name__
        averaging = state_dict.get("averaging")
        training = state_dict.get("training")
        if not isinstance(training, bool) or not isinstance(averaging, list) \
                or len(averaging) != len(self.param_groups) or not all(
                    isinstance(a, dict) and set(a) == {"weight_sum", "lr_max"} and all(
                        isinstance(x, (int, float)) and not isinstance(x, bool)
                        and np.isfinite(x) for x in a.values()) for a in averaging):
            raise ValueError(f"{name}.load_state_dict: no valid Schedule-Free state (the "
                             f"mode and, per group, weight_sum and lr_max)")
        super().load_state_dict(state_dict)
        self.training = training
        self.averaging = [{k: float(v) for k, v in a.items()} for a in averaging]


class SGDScheduleFree(_ScheduleFree):
    """Schedule-Free SGD: plain steps on z, their running average x, gradients at y."""

    presets = {"paper": dict(lr=1.0, momentum=0.9, warmup_steps=0, r=0.0,
                             weight_lr_power=2.0)}
    momentum_key = "momentum"
    state_names = ("z",)

    def __init__(self, params, lr=None, momentum=None, warmup_steps=None, r=None,
                 weight_lr_power=None, preset=None, nonfinite="raise", learning_rate=None,
                 **decay):
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, momentum=momentum,
                         warmup_steps=warmup_steps, r=r, weight_lr_power=weight_lr_power,
                         **decay)

    def validate(self, momentum, **rest):
        super().validate(**rest)
        if not 0 < momentum < 1:
            raise ValueError(f"SGDScheduleFree: momentum must be in (0, 1), got {momentum}")

    def reference_update(self, w, g, state, h):
        sgd_schedule_free_reference(w, g, state["z"], h["scheduled_lr"], h["momentum"],
                                    h["c"])

    def kernel_update(self, w, g, state, h):
        f, lr, c = w.dtype.type, h["scheduled_lr"], h["c"]
        _sgd_kernel(w.reshape(-1), g.reshape(-1), state["z"].reshape(-1), f(lr),
                    f(lr * (h["momentum"] * (1 - c) - 1)), f(c), abs(c) < 0.5)


class AdamWScheduleFree(_ScheduleFree):
    """Schedule-Free AdamW: Adam-normalised steps on z, their average x, gradients at y."""

    presets = {"paper": dict(lr=0.0025, beta1=0.9, beta2=0.999, eps=1e-8, warmup_steps=0,
                             r=0.0, weight_lr_power=2.0, decoupled_weight_decay=True)}
    state_names = ("z", "v")

    def __init__(self, params, lr=None, beta1=None, beta2=None, eps=None, warmup_steps=None,
                 r=None, weight_lr_power=None, preset=None, nonfinite="raise",
                 learning_rate=None, betas=None, **decay):
        beta1, beta2 = pair("AdamWScheduleFree", betas, beta1, beta2)
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr, beta1=beta1,
                         beta2=beta2, eps=eps, warmup_steps=warmup_steps, r=r,
                         weight_lr_power=weight_lr_power, **decay)

    def validate(self, beta1, beta2, eps, **rest):
        super().validate(**rest)
        self._check_moments(beta1, beta2, eps)
        if beta1 == 0:
            raise ValueError("AdamWScheduleFree: beta1 must be in (0, 1), got 0.0 (eval() "
                             "divides by it)")

    def weight_decay_of(self, w, h):
        """The package's decay (decoupled) is added at y after the normalisation, inside
        the update; the coupled form goes through the gradient as for every rule."""
        return 0.0 if h["decoupled_weight_decay"] else h["weight_decay"]

    def _decay(self, h):
        return h["weight_decay"] if h["decoupled_weight_decay"] else 0.0

    def reference_update(self, w, g, state, h):
        adamw_schedule_free_reference(w, g, state["z"], state["v"], self.t, h["scheduled_lr"],
                                      h["beta1"], h["beta2"], h["eps"], h["c"],
                                      self._decay(h))

    def kernel_update(self, w, g, state, h):
        f, lr, c = w.dtype.type, h["scheduled_lr"], h["c"]
        _adamw_kernel(w.reshape(-1), g.reshape(-1), state["z"].reshape(-1),
                      state["v"].reshape(-1), f(lr), f(lr * (h["beta1"] * (1 - c) - 1)),
                      f(c), abs(c) < 0.5, f(h["beta2"]), f(1 - h["beta2"]),
                      f(1 - h["beta2"] ** self.t), f(h["eps"]), f(self._decay(h)),
                      threshold(w.dtype))
