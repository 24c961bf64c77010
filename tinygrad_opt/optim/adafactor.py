"""Adafactor (Shazeer & Stern 2018, "Adafactor: adaptive learning rates with sublinear
memory cost"): RMSprop's second moment stored factored for a matrix (a row average and
a column average instead of one value per weight: r + c numbers instead of r·c), the
update clipped by its own root mean square, and a step size relative to the weight's
own scale:

    rho = min(lr, 1/sqrt(t))                           the relative step
    alpha = max(eps2, RMS(w))·rho                      RMS(x) = sqrt(mean(x²)) over the tensor
    weight = t^beta2_decay                             (1 - beta2_t: 1 at t = 1, then decaying)
    for a tensor of two or more dimensions (the last two factored, the others a batch):
        R ← R + weight·(mean(g², over columns) - R)    one value per row
        C ← C + weight·(mean(g², over rows) - C)       one value per column
        v̂ = (R / mean(R))·Cᵀ                           the rank-one estimate of E[g²]
    for a vector or a scalar:
        v ← v + weight·(g² - v);   v̂ = v
    u = g / sqrt(v̂)
    w ← w - alpha · u / max(1, RMS(u)/d)               d: the clipping threshold

The paper's optional first moment is in neither PyTorch's nor Keras' rule, nor here.
Where eps1 (the floor under v̂) sits is the two libraries' difference:

- Keras 3.15 (`keras.optimizers.Adafactor`, the default preset) adds it to g² in both
  averages: g² + eps1 with eps1 = 1e-30, lr 0.001; its decoupled weight decay
  (w ← w - lr·weight_decay·w) comes first and RMS(w) is taken after it.
- PyTorch 2.13 (`torch.optim.Adafactor`, preset "torch"; `eps1_clamp=True`) clamps
  instead: mean(R) at eps1 and v̂ at eps1², with eps1 = None meaning the dtype's machine
  epsilon (2.2e-16 in float64, 1.2e-7 in float32), lr 0.01; RMS(w) is taken before its
  decoupled weight decay (`rms_before_decay=True`).

One difference from both, in the rounding only: sqrt(v̂) is computed factor by factor,
sqrt(R/mean(R))·sqrt(C)ᵀ (and the floor as max(sqrt(v̂), eps1)). In float32, Keras'
v̂ = (R/mean(R))·Cᵀ underflows to 0 where a row and a column of a matrix both had
gradients near 0 (R and C near eps1 = 1e-30), and its u = 0/0 there makes RMS(u), and
so the whole matrix, NaN (Keras 3.15 does so: a (50, 40) float32 matrix whose gradient
has five zero rows and five zero columns comes back all NaN after one step; the fixture
script records it and tests/test_conventions.py checks that this rule stays finite on
the same input). The square roots of the factors stay in float32's range. PyTorch
computes the interpolations as torch.lerp does (for a weight of 0.5 or more, as
b - (b - a)·(1 - weight)); so does this rule in both forms. tests/test_conventions.py
follows both libraries' trajectories. Keras' `relative_step=False` is not an option
here: its rho takes the minimum with 1/sqrt(t) either way (a Keras run with it off
gives the same trajectory; the conventions test replays it).

The kernel does the factored case in three passes over the tensor (row and column
averages, the update and its sum of squares row by row, the step); a vector's in two.
State: R and C (`row_var`, `col_var`) for a tensor of two or more dimensions, v
(`variance`) otherwise; flushed to 0 where they underflow (underflow.py).
"""
import math

import numpy as np

from ..jit import prange, serial_or_parallel
from . import hyper as H
from .hyper import pair
from .lerp import lerp, lerp_one
from .optimizer import Optimizer
from .underflow import flush, flushed, threshold
from .weight_decay import apply_weight_decay, decoupled_decay_reference


def rms(x):
    """sqrt(mean(x²)) over the whole tensor (numpy's sum, for both paths)."""
    return math.sqrt(float(np.sum(x * x)) / max(x.size, 1))


def eps1_of(eps1, dtype):
    """eps1, or the dtype's machine epsilon where it is None (PyTorch's default)."""
    return float(np.finfo(dtype).eps) if eps1 is None else eps1


def adafactor_reference(w, g, state, t, lr, beta2_decay, eps1, eps2, d, weight_decay,
                        eps1_clamp, rms_before_decay):
    """The rule in numpy, one line per formula line (in place); the decoupled weight
    decay inside, since where RMS(w) is taken depends on it."""
    rho = min(lr, 1 / math.sqrt(t))
    if not rms_before_decay:
        decoupled_decay_reference(w, lr, weight_decay)  # Keras: decay, then RMS(w)
    alpha = max(eps2, rms(w)) * rho
    if rms_before_decay:
        decoupled_decay_reference(w, lr, weight_decay)  # PyTorch: RMS(w), then decay
    weight = t ** beta2_decay
    g2 = g * g if eps1_clamp else g * g + eps1
    if "variance" in state:
        v = state["variance"]
        v[...] = lerp(v, g2, weight)
        flush(v)                                       # underflow.py: subnormals to 0
        root = np.sqrt(v)
    else:
        R, C = state["row_var"], state["col_var"]
        R[...] = lerp(R, g2.mean(axis=-1), weight)
        C[...] = lerp(C, g2.mean(axis=-2), weight)
        flush(R)
        flush(C)
        mean_r = R.mean(axis=-1)[..., None]
        if eps1_clamp:
            mean_r = np.maximum(mean_r, eps1)
        root = np.sqrt(R / mean_r)[..., :, None] * np.sqrt(C)[..., None, :]   # sqrt(v̂)
    if eps1_clamp:
        root = np.maximum(root, eps1)                  # sqrt(max(v̂, eps1²))
    u = g / root
    w -= alpha / max(1.0, rms(u) / d) * u


def _averages_loops(g, R, C, weight, eps_add, tiny):
    """g: (batch, rows, cols); R: (batch, rows), C: (batch, cols). Each average of g² (+
    eps_add) into its running value, torch.lerp's rounding. The column sums run over
    blocks of 64 columns, row after row, so that each pass reads g in memory order."""
    n_batch, n_rows, n_cols = g.shape
    for k in prange(n_batch * n_rows):
        b, i = k // n_rows, k % n_rows
        s = 0.0
        for j in range(n_cols):
            s += g[b, i, j] * g[b, i, j] + eps_add
        R[b, i] = flushed(lerp_one(R[b, i], s / n_cols, weight, weight < 0.5), tiny)
    n_blocks = (n_cols + 63) // 64
    for k in prange(n_batch * n_blocks):
        b, start = k // n_blocks, (k % n_blocks) * 64
        end = min(start + 64, n_cols)
        sums = np.zeros(end - start, g.dtype)
        for i in range(n_rows):
            for j in range(start, end):
                sums[j - start] += g[b, i, j] * g[b, i, j] + eps_add
        for j in range(start, end):
            mean = sums[j - start] / n_rows
            C[b, j] = flushed(lerp_one(C[b, j], mean, weight, weight < 0.5), tiny)


def _sum_squares_loops(x, partial):
    """Blocks of 4,096 values: each block's sum of squares into partial."""
    for k in prange(partial.size):
        s = 0.0
        for i in range(k * 4096, min((k + 1) * 4096, x.size)):
            s += x[i] * x[i]
        partial[k] = s


def _factored_update_loops(g, row_root, col_root, floor, u, row_sums):
    """u = g / max(sqrt(R/mean(R))·sqrt(C)ᵀ, floor); each row's sum of u² into row_sums."""
    n_batch, n_rows, n_cols = g.shape
    for k in prange(n_batch * n_rows):
        b, i = k // n_rows, k % n_rows
        s = 0.0
        for j in range(n_cols):
            root = row_root[b, i] * col_root[b, j]
            x = g[b, i, j] / (floor if root < floor else root)
            u[b, i, j] = x
            s += x * x
        row_sums[k] = s


def _vector_update_loops(g, v, u, weight, eps_add, floor, tiny):
    for i in prange(g.size):
        g2 = g[i] * g[i] + eps_add
        v[i] = flushed(lerp_one(v[i], g2, weight, weight < 0.5), tiny)
        root = np.sqrt(v[i])
        u[i] = g[i] / (floor if root < floor else root)       # NaN stays NaN


def _step_loops(w, u, step):
    for i in prange(w.size):
        w[i] -= step * u[i]


# the sums may be reordered (jit.py's policy): they differ from numpy's in the last bits
_averages_kernel = serial_or_parallel(_averages_loops, reassociate=True)
_sum_squares_kernel = serial_or_parallel(_sum_squares_loops, reassociate=True)
_factored_update_kernel = serial_or_parallel(_factored_update_loops, reassociate=True)
_vector_update_kernel = serial_or_parallel(_vector_update_loops)
_step_kernel = serial_or_parallel(_step_loops)


class Adafactor(Optimizer):
    """Adafactor: a factored second moment, a clipped update, a step relative to RMS(w)."""

    presets = {"keras": dict(lr=0.001, beta2_decay=-0.8, eps1=1e-30, eps2=1e-3, d=1.0,
                             eps1_clamp=False, rms_before_decay=False),
               "torch": dict(lr=0.01, beta2_decay=-0.8, eps1=None, eps2=1e-3, d=1.0,
                             eps1_clamp=True, rms_before_decay=True,
                             decoupled_weight_decay=True)}
    no_preset = {"paper": "the paper's defaults are the two libraries' (beta2_decay -0.8, "
                          "d 1, eps2 1e-3); use preset 'keras' or 'torch'"}

    def __init__(self, params, lr=None, beta2_decay=None, eps1=None, eps2=None, d=None,
                 eps1_clamp=None, rms_before_decay=None, preset=None, nonfinite="raise",
                 learning_rate=None, eps=None, **decay):
        eps1, eps2 = pair("Adafactor", eps, eps1, eps2, what="eps", parts=("eps1", "eps2"))
        super().__init__(params, preset, nonfinite, learning_rate, lr=lr,
                         beta2_decay=beta2_decay, eps1=eps1, eps2=eps2, d=d,
                         eps1_clamp=eps1_clamp, rms_before_decay=rms_before_decay, **decay)

    def validate(self, lr, beta2_decay, eps1, eps2, d, eps1_clamp, rms_before_decay,
                 **decay):
        super().validate(lr=lr, **decay)
        if not beta2_decay <= 0:
            raise ValueError(f"Adafactor: beta2_decay must be <= 0, got {beta2_decay}")
        if eps1 is not None:
            if isinstance(eps1, bool) or not isinstance(eps1, (int, float)) \
                    or not 0 <= eps1 < math.inf:
                raise ValueError(f"Adafactor: eps1 must be a finite number >= 0 or None "
                                 f"(the dtype's machine epsilon), got {eps1!r}")
        H.check_nonnegative("Adafactor", "eps2", eps2)
        if not 1 <= d < math.inf:
            raise ValueError(f"Adafactor: d (the clipping threshold) must be >= 1, got {d}")

    def init_state(self, w, h):
        if w.ndim < 2:
            return {"variance": np.zeros_like(w)}
        return {"row_var": np.zeros(w.shape[:-1], w.dtype),
                "col_var": np.zeros(w.shape[:-2] + w.shape[-1:], w.dtype)}

    def weight_decay_of(self, w, h):
        """The decoupled decay is the rule's own (RMS(w) is taken before or after it);
        the coupled form goes through the gradient as for every rule."""
        return 0.0 if h["decoupled_weight_decay"] else h["weight_decay"]

    def _decay(self, h):
        return h["weight_decay"] if h["decoupled_weight_decay"] else 0.0

    def reference_update(self, w, g, state, h):
        adafactor_reference(w, g, state, self.t, h["lr"], h["beta2_decay"],
                            eps1_of(h["eps1"], w.dtype), h["eps2"], h["d"], self._decay(h),
                            h["eps1_clamp"], h["rms_before_decay"])

    @staticmethod
    def _rms(x):
        """rms(x), the sum of squares by the kernel."""
        partial = np.empty((x.size + 4095) // 4096, x.dtype)
        _sum_squares_kernel(x.reshape(-1), partial)
        return math.sqrt(float(np.sum(partial)) / max(x.size, 1))

    def kernel_update(self, w, g, state, h):
        f, t, decay = w.dtype.type, self.t, self._decay(h)
        eps1 = eps1_of(h["eps1"], w.dtype)
        eps_add, floor = (0.0, eps1) if h["eps1_clamp"] else (eps1, 0.0)
        rho = min(h["lr"], 1 / math.sqrt(t))
        if not h["rms_before_decay"]:
            apply_weight_decay(w, g, h["lr"], decay, True, False)
        alpha = max(h["eps2"], self._rms(w)) * rho
        if h["rms_before_decay"]:
            apply_weight_decay(w, g, h["lr"], decay, True, False)
        weight, u = t ** h["beta2_decay"], np.empty_like(w)
        if "variance" in state:
            _vector_update_kernel(g.reshape(-1), state["variance"].reshape(-1),
                                  u.reshape(-1), f(weight), f(eps_add), f(floor),
                                  threshold(w.dtype))
            rms_u = self._rms(u)
        else:
            shape = (-1,) + w.shape[-2:]
            g3, u3 = g.reshape(shape), u.reshape(shape)
            R = state["row_var"].reshape(shape[:2])
            C = state["col_var"].reshape((-1, w.shape[-1]))
            _averages_kernel(g3, R, C, f(weight), f(eps_add), threshold(w.dtype))
            mean_r = R.mean(axis=-1)[..., None]
            if h["eps1_clamp"]:
                mean_r = np.maximum(mean_r, f(eps1))
            row_sums = np.empty(R.size, w.dtype)
            _factored_update_kernel(g3, np.sqrt(R / mean_r), np.sqrt(C), f(floor), u3,
                                    row_sums)
            rms_u = math.sqrt(float(np.sum(row_sums)) / max(u.size, 1))
        _step_kernel(w.reshape(-1), u.reshape(-1), f(alpha / max(1.0, rms_u / h["d"])))
